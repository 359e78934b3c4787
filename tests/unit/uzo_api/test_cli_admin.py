"""`uzo admin create-subscription` and `uzo db downgrade`: input checked before the database.

What they do to a database is tested in tests/integration/test_cli_conventions.py.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from uzo_api.cli import app

runner = CliRunner()
CREATE = ["admin", "create-subscription", "--email", "owner@example.com", "--company", "Acme"]


def test_create_subscription_needs_a_terminal_or_password_stdin() -> None:
    result = runner.invoke(app, CREATE)  # the runner's stdin is no terminal
    assert result.exit_code == 2
    assert "--password-stdin" in result.stderr
    assert result.stdout == ""


def test_create_subscription_rejects_bad_input_naming_the_option() -> None:
    bad_email = [*CREATE[:3], "not-an-email", *CREATE[4:], "--password-stdin"]
    result = runner.invoke(app, bad_email, input="a-long-enough-password\n")
    assert result.exit_code == 2
    assert "--email" in result.stderr
    short = runner.invoke(app, [*CREATE, "--password-stdin", "--json"], input="short\n")
    assert short.exit_code == 2
    doc = json.loads(short.stdout)
    assert doc["ok"] is False
    assert doc["errors"][0]["code"] == "invalid_input"
    assert "password" in doc["errors"][0]["message"]
    empty = runner.invoke(app, [*CREATE, "--password-stdin"], input="")
    assert empty.exit_code == 2
    assert "no password on stdin" in empty.stderr


def test_downgrade_without_yes_and_without_terminal_refuses() -> None:
    result = runner.invoke(app, ["db", "downgrade", "base"])
    assert result.exit_code == 1
    assert "drops data" in result.stderr
    assert "--yes" in result.stderr
    assert result.stdout == ""

"""uzo_engine.cli.output: JSON values, the --json document, stdout kept for it."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
import uuid

import pytest
import typer
from typer.testing import CliRunner

from uzo_engine.cli.output import Output, issue, jsonable

runner = CliRunner()


def test_jsonable_turns_engine_values_into_plain_json() -> None:
    value = {
        "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "at": dt.time(8, 15),
        "took": dt.timedelta(seconds=90),
        "price": decimal.Decimal("12.3400"),
        "blob": b"\x00\xff",
        "id": uuid.UUID(int=1),
        "nan": float("nan"),
        "inf": float("inf"),
        "-inf": float("-inf"),
        "nested": [(1, 2.5, None, True)],
        3: "int key",
    }
    doc = jsonable(value)
    assert json.loads(json.dumps(doc, allow_nan=False)) == {
        "when": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "at": "08:15:00",
        "took": 90.0,
        "price": "12.3400",
        "blob": "AP8=",
        "id": "00000000-0000-0000-0000-000000000001",
        "nan": "NaN",
        "inf": "Infinity",
        "-inf": "-Infinity",
        "nested": [[1, 2.5, None, True]],
        "3": "int key",
    }


def _command(as_json: bool, mode: str) -> None:
    out = Output(as_json, {"answer": None})
    with out.document_only():
        sys.stdout.write("a library's chatter\n")  # as a library would print
        if mode == "crash":
            raise RuntimeError("boom")
        if mode == "fail":
            out.fail(2, "bad [input]", "invalid_input", field="x")
    out.emit(ok=True, answer=42)
    if not as_json:
        out.console.print("answer: 42")


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def main(as_json: bool = typer.Option(False, "--json"), mode: str = "ok") -> None:
        _command(as_json, mode)

    return app


@pytest.mark.parametrize("mode", ["ok", "fail", "crash"])
def test_json_stdout_holds_the_document_and_nothing_else(mode: str) -> None:
    result = runner.invoke(_app(), ["--json", "--mode", mode])
    doc = json.loads(result.stdout)
    assert list(doc) == ["ok", "answer", "errors"]
    assert "a library's chatter" in result.stderr
    if mode == "ok":
        assert result.exit_code == 0
        assert doc == {"ok": True, "answer": 42, "errors": []}
    elif mode == "fail":
        assert result.exit_code == 2
        assert doc["ok"] is False
        assert doc["errors"] == [issue("invalid_input", "bad [input]", field="x")]
    else:  # an unexpected exception: exit 1 as without --json, the traceback on stderr
        assert result.exit_code == 1
        assert doc["errors"][0]["code"] == "internal_error"
        assert "boom" in doc["errors"][0]["message"]
        assert "Traceback" in result.stderr


def test_human_errors_go_to_stderr_verbatim() -> None:
    ok = runner.invoke(_app(), [])
    assert ok.exit_code == 0
    assert ok.stdout == "a library's chatter\nanswer: 42\n"
    failed = runner.invoke(_app(), ["--mode", "fail"])
    assert failed.exit_code == 2
    assert "error: bad [input]" in failed.stderr  # not eaten as rich markup
    assert "bad" not in failed.stdout

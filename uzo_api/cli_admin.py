"""``uzo admin``: what whoever runs the server may do that the API offers nobody.

``create-subscription`` makes a subscription and its owner whatever
``UZO_AUTH_REGISTRATION`` says, so a server with registration closed (or by
invitation) still gets its accounts. ``create`` makes a platform admin (ADR 0013),
which no API request can: it writes with the database owner's credentials.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from uzo_engine.cli.output import USAGE_ERROR, JsonFlag, Output, UzoCommand, sub_app

if TYPE_CHECKING:
    from uzo_api.background import BackgroundWork
    from uzo_api.db.session import Database
    from uzo_api.schemas.auth import RegisterRequest
    from uzo_api.services.auth import AuthService
    from uzo_api.settings import Settings

# RegisterRequest's fields, as the options that set them
_OPTION_OF = {
    "email": "--email",
    "company_name": "--company",
    "username": "--username",
    "full_name": "--full-name",
    "password": "password",
}
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin instead of asking twice.",
    ),
]


def register(app: typer.Typer) -> None:
    admin_app = sub_app("Server administration: platform admins, subscriptions and owners.")
    admin_app.command("create", cls=UzoCommand)(create_admin)
    admin_app.command("create-subscription", cls=UzoCommand)(create_subscription)
    app.add_typer(admin_app, name="admin")


def create_subscription(
    email: Annotated[
        str, typer.Option("--email", help="The owner's email (their login).", show_default=False)
    ],
    company: Annotated[
        str, typer.Option("--company", help="The subscription's company name.", show_default=False)
    ],
    username: Annotated[
        str | None,
        typer.Option("--username", help="The owner's username. Default: the email's local part."),
    ] = None,
    full_name: Annotated[
        str | None, typer.Option("--full-name", help="The owner's full name.")
    ] = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a subscription and its owner, whatever UZO_AUTH_REGISTRATION says."""
    from uzo_api.errors import Problem

    out = Output(as_json, {"subscription_id": None, "email": email, "plan": None})
    req = _register_request(
        out, email, _read_password(password_stdin, out), company, username, full_name
    )
    with out.document_only():
        settings, db = _migrated_database(out)
        service, background = _auth_service(settings, db)
        try:
            account = service.register(req, ip="cli", enforce_policy=False)
        except Problem as exc:
            out.fail(1, f"{exc.detail}: {req.email}" if exc.field else exc.detail, exc.slug)
        finally:
            background.shutdown()
    out.emit(
        ok=True,
        subscription_id=str(account.subscription.id),
        email=account.user.email,
        plan=account.plan_key,
    )
    if not as_json:
        print(f"subscription {account.subscription.id}")
        print(f"owner        {account.user.email}")


def create_admin(
    email: Annotated[
        str, typer.Option("--email", help="The admin's email (their login).", show_default=False)
    ],
    company: Annotated[
        str, typer.Option("--company", help="The company name of the admin's own subscription.")
    ] = "UZO platform",
    username: Annotated[
        str | None,
        typer.Option("--username", help="The admin's username. Default: the email's local part."),
    ] = None,
    full_name: Annotated[
        str | None, typer.Option("--full-name", help="The admin's full name.")
    ] = None,
    password_stdin: PasswordStdin = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a platform admin: a user who manages every subscription (/api/subscriptions)."""
    from uzo_api.errors import Problem
    from uzo_api.services.platform_admins import create_platform_admin

    out = Output(as_json, {"user_id": None, "subscription_id": None, "email": email})
    req = _register_request(
        out, email, _read_password(password_stdin, out), company, username, full_name
    )
    with out.document_only():
        _, db = _migrated_database(out)
        try:
            created = create_platform_admin(db, req)
        except Problem as exc:
            out.fail(1, f"{exc.detail}: {req.email}" if exc.field else exc.detail, exc.slug)
        finally:
            db.dispose()
    out.emit(
        ok=True,
        user_id=str(created.user_id),
        subscription_id=str(created.subscription_id),
        email=created.email,
    )
    if not as_json:
        print(f"platform admin {created.email}")
        print(f"user           {created.user_id}")
        print(f"subscription   {created.subscription_id}")


def _register_request(
    out: Output,
    email: str,
    password: str,
    company: str,
    username: str | None,
    full_name: str | None,
) -> RegisterRequest:
    """The options as a RegisterRequest, or exit 2 naming the options that are wrong."""
    from pydantic import ValidationError

    from uzo_api.schemas.auth import RegisterRequest

    try:
        return RegisterRequest(
            email=email,
            password=password,
            company_name=company,
            username=username,
            full_name=full_name,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{_OPTION_OF.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'input'}: {e['msg']}"
            for e in exc.errors()
        )
        out.fail(USAGE_ERROR, problems, "invalid_input")


def _migrated_database(out: Output) -> tuple[Settings, Database]:
    """The server's settings and database, or exit 1 if the schema is behind the code."""
    from uzo_api.cli import bootstrap
    from uzo_api.db import migrate

    settings, db = bootstrap()
    current, head = migrate.current_revision(db.owner_engine), migrate.head_revision(settings)
    if current != head:
        db.dispose()
        out.fail(
            1,
            f"the database is at revision {current or 'base'}, the code at {head}: "
            "run `uzo db upgrade` first",
            "database_not_migrated",
        )
    return settings, db


def _read_password(from_stdin: bool, out: Output) -> str:
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            out.fail(USAGE_ERROR, "no password on stdin (--password-stdin reads its first line)")
        return password
    if not sys.stdin.isatty():
        out.fail(
            USAGE_ERROR,
            "there is no terminal to ask the password on: give it on stdin with --password-stdin",
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _auth_service(settings: Settings, db: Database) -> tuple[AuthService, BackgroundWork]:
    """The AuthService exactly as the API builds it (one construction: build_services)."""
    from uzo_api.services.container import build_services

    services = build_services(settings, db)
    services.remote_calls.shutdown()
    return services.auth, services.background

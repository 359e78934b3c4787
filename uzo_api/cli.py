"""The ``uzo`` command line.

Conventions (see docs/cli.md): ``-h`` is ``--help`` everywhere, boolean options
are flags, results go to stdout and errors to stderr, ``--json`` gives one JSON
document. Heavy modules are imported inside the commands: ``uzo --version`` and
``uzo -h`` must start fast.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from uzo_api import __version__
from uzo_api.cli_admin import register as register_admin_commands
from uzo_api.cli_purge import register as register_purge_command
from uzo_api.cli_retention import register as register_retention_commands
from uzo_api.cli_tenant import register as register_tenant_commands
from uzo_engine.cli.output import HELP_CONTEXT, Output, UzoCommand, UzoGroup, sub_app
from uzo_engine.cli.workflows import register as register_workflow_commands

if TYPE_CHECKING:
    from uzo_api.db.session import Database
    from uzo_api.settings import Settings
    from uzo_engine.runtime.prefect_server import PrefectApi

app = typer.Typer(
    name="uzo",
    help="UZO: workflow automation and ETL/ELT.",
    no_args_is_help=True,
    cls=UzoGroup,
    context_settings=HELP_CONTEXT,
)
db_app = sub_app("The metadata database.")
app.add_typer(db_app, name="db")
register_purge_command(db_app)
register_retention_commands(db_app)
secrets_app = sub_app("Connector credentials at rest.")
app.add_typer(secrets_app, name="secrets")
register_workflow_commands(app)
register_admin_commands(app)
register_tenant_commands(app)


def bootstrap() -> tuple[Settings, Database]:
    """Settings, logging and the metadata database, for commands that need them."""
    from uzo_api.app import open_database
    from uzo_api.db.embedded import EmbeddedPostgresError
    from uzo_api.observability import configure_logging
    from uzo_api.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        return settings, open_database(settings)
    except EmbeddedPostgresError as exc:
        print(f"uzo: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _print_version(value: bool) -> None:
    if value:
        print(f"uzo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            expose_value=False,
            callback=_print_version,
            help="Print UZO's version and exit.",
        ),
    ] = False,
) -> None:
    """UZO: workflow automation and ETL/ELT."""


@app.command(cls=UzoCommand)
def version() -> None:
    """Print UZO's version."""
    print(f"uzo {__version__}")


@app.command(cls=UzoCommand)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (UZO_SERVER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (UZO_SERVER_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="API processes (UZO_SERVER_WORKERS).")
    ] = None,
) -> None:
    """Run the API with everything it needs (embedded PostgreSQL unless configured)."""
    import uvicorn

    from uzo_api.app import create_app
    from uzo_api.db import migrate
    from uzo_api.db.embedded import stop_embedded
    from uzo_api.serving import serve_workers, uvicorn_config
    from uzo_api.settings import get_settings

    workers = workers or get_settings().server.workers
    if workers > 1 and get_settings().redis.url is None:
        # each process would keep its own login counts: N times the attempts allowed
        print(
            f"uzo: {workers} workers need UZO_REDIS_URL, so that login and register "
            "throttling is shared by the processes (or run one worker)",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    started = time.perf_counter()
    settings, db = bootstrap()
    migrate.upgrade(db.owner_engine, settings)
    # a dedicated database that cannot be migrated leaves that tenant answered 503, not the rest
    _upgrade_dedicated(settings, db)
    host = host or settings.server.host
    port = port or settings.server.port
    base = f"http://{host}:{port}"
    where = (
        "embedded PostgreSQL in " + str(settings.home / "pg") if db.urls.embedded else "external"
    )
    print(f"UZO {__version__}: database {where}, migrated in {time.perf_counter() - started:.1f} s")
    print(f"  API docs  {base}/docs")
    print(f"  OpenAPI   {base}/openapi.json")
    print(f"  ready?    {base}/readyz")
    prefect = _start_prefect()
    if prefect is not None:
        from uzo_engine.runtime.prefect_server import ui_url

        # where operators see every run, mirrored (ADR 0005); the server may still be starting
        where = ui_url(prefect) if prefect.pid is not None else f"{prefect.url} (external)"
        print(f"  Prefect   {where}")
    if workers > 1:
        print(f"  workers   {workers} processes")
    # uvicorn re-raises the signal that stopped it; turn SIGTERM into a normal exit so
    # the embedded PostgreSQL is stopped below instead of the process dying on the spot
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if workers > 1:
            serve_workers(host, port, workers)
        else:
            uvicorn.Server(uvicorn_config(create_app(settings, db), host, port)).run()
    finally:
        db.dispose()
        if db.urls.embedded:
            stop_embedded(settings)
        if prefect is not None and prefect.pid is not None:
            from uzo_engine.runtime.prefect_server import release_prefect_server
            from uzo_engine.settings import get_engine_settings

            # stops it unless a `uzo run` or another process of this UZO_HOME still uses it
            release_prefect_server(get_engine_settings())


def _start_prefect() -> PrefectApi | None:
    """The Prefect server runs are mirrored to, with its UI: UZO's local one (started, not
    waited for; shared with every UZO process of this UZO_HOME), or the external API.
    None when the mirror is off (UZO_PREFECT_MIRROR=false) or the server cannot start."""
    from uzo_engine.runtime import prefect_server
    from uzo_engine.settings import get_engine_settings

    engine = get_engine_settings()
    if not engine.prefect_mirror:
        return None
    try:
        return prefect_server.ensure_prefect_api(engine, wait=False)
    except Exception as exc:  # the API serves anyway; runs are not mirrored
        print(f"uzo: the Prefect server did not start: {exc}", file=sys.stderr)
        return None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


@db_app.command("upgrade", cls=UzoCommand)
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Migrate the metadata schema up (to the latest revision by default)."""
    from uzo_api.db import migrate

    settings, db = bootstrap()
    migrate.upgrade(db.owner_engine, settings, revision)
    print(f"database at {migrate.current_revision(db.owner_engine)}")
    if revision == "head" and not _upgrade_dedicated(settings, db):
        raise typer.Exit(1)


def _upgrade_dedicated(settings: Settings, db: Database) -> bool:
    """Migrate every active dedicated tenant database too; False if one failed."""
    from uzo_api.services.tenants import upgrade_dedicated
    from uzo_connectors.credentials import CredentialVault

    vault = CredentialVault(settings.credential_keys())
    ok = True
    for tenant, rev, error in upgrade_dedicated(settings, db, vault):
        if error is None:
            print(f"tenant {tenant.subscription_id} ({tenant.database}) at {rev}")
        else:
            ok = False
            print(f"uzo: tenant {tenant.subscription_id}: not migrated: {error}", file=sys.stderr)
    return ok


@db_app.command("downgrade", cls=UzoCommand)
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target, e.g. -1 or base.", show_default=False)],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts).")
    ] = False,
) -> None:
    """Migrate the metadata schema down. This drops data: asks first unless --yes."""
    from uzo_api.db import migrate

    out = Output(as_json=False)
    if not yes and not sys.stdin.isatty():
        out.fail(
            1,
            f"not downgrading to {revision}: this drops data (the tables and columns of the "
            "revisions undone) and there is no terminal to confirm on; pass --yes to confirm",
        )
    settings, db = bootstrap()
    if not yes:
        current = migrate.current_revision(db.owner_engine) or "base"
        typer.confirm(
            f"Downgrading the database from {current} to {revision} drops data (the tables "
            "and columns of the revisions undone). Continue?",
            abort=True,
        )
    migrate.downgrade(db.owner_engine, settings, revision)
    print(f"database at {migrate.current_revision(db.owner_engine) or 'base'}")


@db_app.command("current", cls=UzoCommand)
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    from uzo_api.db import migrate

    settings, db = bootstrap()
    print(f"database: {migrate.current_revision(db.owner_engine) or 'base'}")
    print(f"code:     {migrate.head_revision(settings)}")


@secrets_app.command("rotate", cls=UzoCommand)
def secrets_rotate() -> None:
    """Re-encrypt every stored credential with the first key of UZO_SECRET_KEYS."""
    from uzo_api.services.secrets import rotate_credentials
    from uzo_connectors.credentials import CredentialVault

    settings, db = bootstrap()
    vault = CredentialVault(settings.credential_keys())
    count = rotate_credentials(db.owner_engine, vault)
    print(f"re-encrypted {count} connector credential(s) with the current key")

"""``uzo tenant``: dedicated infrastructure for a subscription (uzo_api.services.tenants)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from uzo_engine.cli.output import USAGE_ERROR, JsonFlag, Output, UzoCommand, sub_app

if TYPE_CHECKING:
    from uzo_api.services.tenants import TenantInfo

SubscriptionOpt = Annotated[
    str, typer.Option("--subscription", help="The subscription's id.", show_default=False)
]


def register(app: typer.Typer) -> None:
    tenant_app = sub_app("Tenants: dedicated databases, shutdown.")
    tenant_app.command("provision", cls=UzoCommand)(provision)
    tenant_app.command("shutdown", cls=UzoCommand)(shutdown)
    tenant_app.command("list", cls=UzoCommand)(list_tenants)
    app.add_typer(tenant_app, name="tenant")


def _tenant_doc(t: TenantInfo) -> dict[str, Any]:
    return {
        "subscription_id": str(t.subscription_id),
        "company_name": t.company_name,
        "status": t.status,
        "infrastructure_type": t.infrastructure_type,
        "database": t.database,
    }


def _subscription_id(value: str, out: Output) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        out.fail(USAGE_ERROR, f"--subscription: not a subscription id: {value!r}", "usage_error")


def _migrated(out: Output) -> Any:
    """Settings, the control database and the credential vault, at the code's revision."""
    from uzo_api.cli import bootstrap
    from uzo_api.db import migrate
    from uzo_connectors.credentials import CredentialVault

    settings, db = bootstrap()
    current, head = migrate.current_revision(db.owner_engine), migrate.head_revision(settings)
    if current != head:
        out.fail(
            1,
            f"the database is at revision {current or 'base'}, the code at {head}: "
            "run `uzo db upgrade` first",
            "database_not_migrated",
        )
    return settings, db, CredentialVault(settings.credential_keys())


def provision(
    subscription: SubscriptionOpt,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="An empty database for the tenant (owner URL). Default: a new database "
            "uzo_t_<id> on the metadata database's server.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give a subscription a database of its own: create, migrate, register."""
    from uzo_api.services import tenants

    out = Output(
        as_json,
        {"tenant": None, "created_database": False, "already_dedicated": False,
         "revision": None, "users_copied": 0},
    )  # fmt: skip
    sid = _subscription_id(subscription, out)
    with out.document_only():
        settings, db, vault = _migrated(out)
        try:
            done = tenants.provision(settings, db, vault, sid, database_url)
        except tenants.TenantError as exc:
            out.fail(1, str(exc), exc.code)
        finally:
            db.dispose()
    out.emit(
        ok=True,
        tenant=_tenant_doc(done.tenant),
        created_database=done.created_database,
        already_dedicated=done.already_dedicated,
        revision=done.revision,
        users_copied=done.users_copied,
    )
    if not as_json:
        verb = "migrated again" if done.already_dedicated else "provisioned"
        print(f"subscription {done.tenant.subscription_id} {verb}")
        print(f"database     {done.tenant.database} (at {done.revision})")
        print(f"users copied {done.users_copied}")


def shutdown(subscription: SubscriptionOpt, as_json: JsonFlag = False) -> None:
    """Suspend a subscription: no login, token or API key works; its data stays."""
    from uzo_api.services import tenants

    out = Output(as_json, {"tenant": None, "was": None, "sessions_revoked": 0,
                           "api_keys_revoked": 0})  # fmt: skip
    sid = _subscription_id(subscription, out)
    with out.document_only():
        settings, db, vault = _migrated(out)
        try:
            done = tenants.shutdown(settings, db, vault, sid)
        except tenants.TenantError as exc:
            out.fail(1, str(exc), exc.code)
        finally:
            db.dispose()
    for warning in done.warnings:
        out.warning(warning)
    out.emit(
        ok=True,
        tenant=_tenant_doc(done.tenant),
        was=done.was,
        sessions_revoked=done.sessions_revoked,
        api_keys_revoked=done.api_keys_revoked,
    )
    if not as_json:
        print(f"subscription {done.tenant.subscription_id} {done.tenant.status} (was {done.was})")
        revoked = f"{done.sessions_revoked} session(s), {done.api_keys_revoked} API key(s)"
        print(f"revoked      {revoked}")


def list_tenants(as_json: JsonFlag = False) -> None:
    """List the subscriptions: status, infrastructure and dedicated database."""
    from uzo_api.services import tenants

    out = Output(as_json, {"tenants": []})
    with out.document_only():
        _, db, vault = _migrated(out)
        try:
            found = tenants.list_tenants(db, vault)
        finally:
            db.dispose()
    out.emit(ok=True, tenants=[_tenant_doc(t) for t in found])
    if not as_json:
        for t in found:
            where = t.database or "shared"
            print(f"{t.subscription_id}  {t.status:<10} {where:<24} {t.company_name}")

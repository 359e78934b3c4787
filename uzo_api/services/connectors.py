"""Tenant connectors: validated configs, encrypted secrets, test and discover.

Secrets are split from the config by the connector type's model, encrypted
with the credential vault, and decrypted only at the moment a connector is
built to test or discover. Nothing here returns or logs a secret.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from uzo_api.authz import Authorizer
from uzo_api.db.models import Connector
from uzo_api.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from uzo_api.pagination import keyset
from uzo_api.services import audit
from uzo_connectors import registry
from uzo_connectors.credentials import (
    MASK,
    CredentialError,
    merge_secrets,
    redact,
    split_secrets,
)
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectorError,
    HostNotFoundError,
    MissingDependencyError,
)

if TYPE_CHECKING:
    import uuid
    from pathlib import Path

    from sqlalchemy.orm import Session

    from uzo_api.auth.principal import Principal
    from uzo_api.context import RequestContext
    from uzo_api.db.router import DatabaseRouter
    from uzo_api.pagination import PageRequest
    from uzo_api.services.limits import LimitsService
    from uzo_connectors.base import BaseConnector, ConnectorContext, DatasetInfo
    from uzo_connectors.credentials import CredentialVault
    from uzo_connectors.registry import ConnectorTypeInfo
    from uzo_connectors.settings import ConnectorSettings

# UZO's own refusals (422), as opposed to the remote side failing (a failed test result)
REFUSALS = (BlockedEndpointError, ConfigError, MissingDependencyError)

log = structlog.get_logger("uzo.connectors")


@dataclass(frozen=True)
class ConnectorView:
    row: Connector
    config: dict[str, Any]
    secrets_set: list[str]


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    detail: str
    duration_ms: float


class ConnectorService:
    def __init__(
        self,
        router: DatabaseRouter,
        vault: CredentialVault,
        connector_settings: ConnectorSettings,
        files_root: Path,
        limits: LimitsService,
    ) -> None:
        self.router = router
        self.vault = vault
        self.connector_settings = connector_settings
        self.files_root = files_root
        self.limits = limits

    def context_for(self, principal: Principal) -> ConnectorContext:
        """The subscription's connector context: its own file root (created 0700 on first
        use) plus the shared roots the operator opted it into, the endpoint policy, and the
        connector types allowed ambient credentials."""
        return self.connector_settings.tenant_context(
            str(principal.subscription_id), self.files_root
        )

    # -- catalogue ------------------------------------------------------------------------------

    @staticmethod
    def list_types() -> list[ConnectorTypeInfo]:
        return registry.list_connector_types()

    @staticmethod
    def get_type(type_key: str) -> ConnectorTypeInfo:
        try:
            return registry.type_info(type_key)
        except MissingDependencyError as exc:
            raise NotFound(str(exc)) from exc
        except ConnectorError as exc:
            raise NotFound(str(exc)) from exc

    # -- CRUD -----------------------------------------------------------------------------------

    def create(
        self,
        ctx: RequestContext,
        *,
        name: str,
        type_key: str,
        config: dict[str, Any],
        description: str | None,
        workspace_id: uuid.UUID | None,
    ) -> ConnectorView:
        """A workspace's connector needs read_write on the workspace; a subscription-wide
        one (no workspace) read_write on every connector (the owner, or a role)."""
        principal, s = ctx.principal, ctx.session
        if workspace_id is not None:
            ctx.authz.require("read_write", "workspace", workspace_id)
        else:
            ctx.authz.require_subscription("read_write", "connector")
        model = self._config_model(type_key)
        self._validate(type_key, config)
        public, secret = split_secrets(model, config)
        self.limits.reserve(s, principal.subscription_id, "connectors")
        row = Connector(
            subscription_id=principal.subscription_id,
            connector_name=name,
            connector_type=type_key,
            description=description,
            connection_config=public,
            encrypted_credentials=self.vault.encrypt(secret) if secret else None,
            secret_fields=sorted(secret),
            workspace_id=workspace_id,
            created_by=principal.user_id,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError as exc:
            raise Conflict(f"a connector named {name!r} already exists", field="name") from exc
        s.refresh(row)
        audit.record(ctx, "connector.create", "connector", row.id, after=self.image(row))
        log.info("connector created", connector_id=str(row.id), connector_type=type_key)
        return self._view(row, secret_names=sorted(secret))

    def page(self, ctx: RequestContext, page: PageRequest) -> list[ConnectorView]:
        """Up to ``page.limit + 1`` connectors the caller may read, by name then id."""
        query = select(Connector).where(self.readable(ctx))
        query = keyset(query, page, Connector.connector_name, Connector.id)
        rows = list(ctx.session.scalars(query))
        return [self._view(r, self._secret_names(r)) for r in rows]

    @staticmethod
    def readable(ctx: RequestContext) -> Any:
        """Subscription-wide connectors are readable by every member; a workspace's by
        whoever may read the connector or its workspace (one EXISTS, in SQL)."""
        own = ctx.authz.readable_children("connector", Connector.id, None)
        via_workspace = ctx.authz.readable_children("workspace", Connector.workspace_id, None)
        # a deleted workspace's connectors are gone with it (until it is restored)
        live = ctx.authz.live_workspace(Connector.workspace_id)
        return or_(Connector.workspace_id.is_(None), and_(live, or_(own, via_workspace)))

    def get(self, ctx: RequestContext, connector_id: uuid.UUID) -> ConnectorView:
        row = ctx.authz.require("read", "connector", connector_id)
        return self._view(row, self._secret_names(row))

    def update(
        self,
        ctx: RequestContext,
        connector_id: uuid.UUID,
        *,
        name: str | None,
        description: str | None,
        config: dict[str, Any] | None,
        keep_secrets: bool = False,
    ) -> ConnectorView:
        s = ctx.session
        ctx.authz.require("read_write", "connector", connector_id)
        row = self._row(s, connector_id, lock=True)
        before = self.image(row)
        if config is not None:
            model = self._config_model(row.connector_type)
            stored_secrets = self._secrets(row)
            old = {**row.connection_config, **stored_secrets}
            # a secret left out (or sent back masked) keeps its stored value...
            changes = {k: v for k, v in config.items() if v != MASK}
            # ...unless the connector is pointed somewhere else: then it must be given
            # again, or kept on purpose (audited), so no stored password follows a
            # changed host to a server its owner never chose for it
            moved = sorted(
                f for f in model.endpoint_fields if f in changes and changes[f] != old.get(f)
            )
            kept = sorted(n for n in stored_secrets if n not in changes)
            if moved and kept and not keep_secrets:
                raise InvalidInput(
                    f"changing {', '.join(moved)} would send the stored "
                    f"{', '.join(kept)} to a different endpoint: enter "
                    f"{'it' if len(kept) == 1 else 'them'} again, or set "
                    "keep_secrets: true to keep the stored value",
                    field=f"config.{kept[0]}",
                )
            merged = {**old, **changes}
            self._validate(row.connector_type, merged)
            public, secret = split_secrets(model, merged)
            row.connection_config = public
            row.encrypted_credentials = self.vault.encrypt(secret) if secret else None
            row.secret_fields = sorted(secret)
            if moved and kept:
                audit.record(
                    ctx,
                    "connector.keep_secrets",
                    "connector",
                    row.id,
                    {"endpoint_fields": moved, "kept_secrets": kept},
                )
                log.warning(
                    "connector endpoint changed with its stored secrets kept",
                    connector_id=str(row.id),
                    fields=moved,
                )
        if name is not None:
            row.connector_name = name
        if description is not None:
            row.description = description
        try:
            s.flush()
        except IntegrityError as exc:
            raise Conflict(f"a connector named {name!r} already exists", field="name") from exc
        s.refresh(row)
        fields = [f for f, v in (("name", name), ("description", description)) if v is not None]
        if config is not None:
            fields.append("config")
        audit.record(
            ctx,
            "connector.update",
            "connector",
            row.id,
            {"fields": fields},
            before=before,
            after=self.image(row),
        )
        return self._view(row, self._secret_names(row))

    def delete(self, ctx: RequestContext, connector_id: uuid.UUID) -> None:
        row = ctx.authz.require("admin", "connector", connector_id)
        audit.record(ctx, "connector.delete", "connector", row.id, before=self.image(row))
        ctx.session.delete(row)

    @classmethod
    def image(cls, row: Connector) -> dict[str, Any]:
        """The connector's audit image: its columns without the encrypted credentials
        (``audit.snapshot``), its config without any secret: the model's secret fields and
        anything that looks secret are left out altogether (not even masked), the names of
        the stored secrets are kept (``secret_fields``)."""
        image = audit.snapshot(row)
        shown = cls._view(row, cls._secret_names(row)).config
        image["connection_config"] = audit.without_masked(shown, MASK)
        return image

    # -- using a connector ----------------------------------------------------------------------

    def test(self, principal: Principal, connector_id: uuid.UUID) -> TestOutcome:
        """Try the connection. UZO's own refusals (an internal endpoint, an option that is
        not allowed, a missing driver) raise InvalidInput; the remote side's failures are
        a failed outcome."""
        started = time.perf_counter()
        connector, type_key = self._build(principal, connector_id)
        try:
            connector.test_connection()
            outcome = TestOutcome(True, "connection succeeded", _ms(started))
        except HostNotFoundError as exc:  # the name does not resolve: the remote side failed
            outcome = TestOutcome(False, str(exc), _ms(started))
        except REFUSALS as exc:
            raise InvalidInput(str(exc), field="config") from exc
        except ConnectorError as exc:
            outcome = TestOutcome(False, str(exc), _ms(started))
        except Exception as exc:  # a driver's own exception type: name it, not its text
            log.warning("connector test failed unexpectedly", connector_type=type_key,
                        error=type(exc).__name__)  # fmt: skip
            outcome = TestOutcome(False, _unexpected(type_key, exc), _ms(started))
        finally:
            connector.close()
        self.record_test(principal, connector_id, ok=outcome.ok)
        return outcome

    def record_test(self, principal: Principal, connector_id: uuid.UUID, *, ok: bool) -> None:
        with self.router.tenant(principal) as s:
            row = s.get(Connector, connector_id)
            if row is not None:
                row.last_tested_at = dt.datetime.now(dt.UTC)
                row.last_test_status = "ok" if ok else "failed"

    def discover(self, principal: Principal, connector_id: uuid.UUID) -> list[DatasetInfo]:
        connector, type_key = self._build(principal, connector_id)
        try:
            return connector.discover()
        except REFUSALS as exc:
            raise InvalidInput(str(exc), field="config") from exc
        except ConnectorError as exc:
            raise InvalidInput(f"discovery failed: {exc}") from exc
        except Exception as exc:
            log.warning("connector discovery failed unexpectedly", connector_type=type_key,
                        error=type(exc).__name__)  # fmt: skip
            raise UpstreamError(f"discovery failed: {_unexpected(type_key, exc)}") from exc
        finally:
            connector.close()

    def _build(
        self, principal: Principal, connector_id: uuid.UUID
    ) -> tuple[BaseConnector[Any], str]:
        with self.router.tenant(principal) as s:
            row = Authorizer(s, principal).require("read", "connector", connector_id)
            try:
                config = merge_secrets(row.connection_config, self._secrets(row))
            except CredentialError as exc:
                log.error("stored credentials cannot be decrypted", connector_id=str(row.id))
                raise ServiceUnavailable(
                    "this connector's stored credentials cannot be decrypted on this server; "
                    "an administrator must restore the key (UZO_SECRET_KEYS)"
                ) from exc
            type_key = row.connector_type
        try:
            return registry.create_connector(
                type_key, config, self.context_for(principal)
            ), type_key
        except ConfigError as exc:
            raise InvalidInput(str(exc), field="config") from exc
        except ConnectorError as exc:  # its plugin is gone or broken
            raise InvalidInput(str(exc), field="connector_type") from exc

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _row(s: Session, connector_id: uuid.UUID, lock: bool = False) -> Connector:
        row = s.get(Connector, connector_id, with_for_update=lock)
        if row is None:  # another tenant's connector is invisible under RLS: also a 404
            raise NotFound("no such connector")
        return row

    def _secrets(self, row: Connector) -> dict[str, Any]:
        return self.vault.decrypt(row.encrypted_credentials) if row.encrypted_credentials else {}

    @staticmethod
    def _secret_names(row: Connector) -> list[str]:
        return [str(name) for name in row.secret_fields]

    @staticmethod
    def _config_model(type_key: str) -> Any:
        try:
            return registry.get_connector_class(type_key).config_model
        except ConnectorError as exc:
            raise InvalidInput(str(exc), field="connector_type") from exc

    @staticmethod
    def _validate(type_key: str, config: dict[str, Any]) -> None:
        cls = registry.get_connector_class(type_key)
        try:
            registry.validate_config(cls, config)
        except ConfigError as exc:
            raise InvalidInput(str(exc), field="config") from exc

    @staticmethod
    def _view(row: Connector, secret_names: list[str]) -> ConnectorView:
        try:
            model = registry.get_connector_class(row.connector_type).config_model
        except ConnectorError:  # its plugin is gone: mask anything that looks secret
            model = None
        shown = redact(row.connection_config, model)
        shown.update(dict.fromkeys(secret_names, MASK))
        return ConnectorView(row=row, config=shown, secrets_set=secret_names)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _unexpected(type_key: str, exc: BaseException) -> str:
    # the text of a driver's own exception may quote the config (a DSN, a URL with a key):
    # only its type is shown; the request id finds the log line
    return f"the {type_key!r} connector failed unexpectedly ({type(exc).__name__})"

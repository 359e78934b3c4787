"""Every service of the API process, built once at start-up.

Services hold configuration and shared machinery (the database, the credential
vault, throttles, pools); a request's data work happens in the request's own tenant
session (:class:`uzo_api.context.RequestContext`), which routes pass to them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uzo_api.auth.mail import build_sender
from uzo_api.auth.throttle import Throttle
from uzo_api.background import BackgroundWork
from uzo_api.db.router import DatabaseRouter
from uzo_api.services.auth import AuthService
from uzo_api.services.connectors import ConnectorService
from uzo_api.services.deletions import DeletionService
from uzo_api.services.features import FeatureService
from uzo_api.services.jobs import JobPackageService, JobService
from uzo_api.services.limits import LimitsService
from uzo_api.services.remote_calls import RemoteCalls
from uzo_api.services.subscriptions import SubscriptionService
from uzo_api.services.transfer import TransferService
from uzo_api.services.versions import VersionService
from uzo_api.services.workflows import WorkflowService
from uzo_connectors.credentials import CredentialVault
from uzo_connectors.settings import ConnectorSettings

if TYPE_CHECKING:
    from uzo_api.db.session import Database
    from uzo_api.settings import Settings


@dataclass(frozen=True)
class Services:
    auth: AuthService
    connectors: ConnectorService
    limits: LimitsService
    features: FeatureService
    subscriptions: SubscriptionService
    jobs: JobService
    jobpackages: JobPackageService
    workflows: WorkflowService
    transfer: TransferService
    deletions: DeletionService
    versions: VersionService
    remote_calls: RemoteCalls
    background: BackgroundWork
    router: DatabaseRouter

    def shutdown(self) -> None:
        self.remote_calls.shutdown()
        self.background.shutdown()
        self.router.dispose()


def limits_storage_uri(redis_url: str | None) -> str:
    if redis_url is None:
        return "memory://"
    if redis_url.startswith(("redis://", "rediss://", "redis+unix://")):
        return redis_url
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    raise ValueError(
        f"UZO_REDIS_URL must be a redis://, rediss:// or unix:// URL, not {redis_url!r}"
    )


def build_throttle(settings: Settings) -> Throttle:
    redis_url = settings.redis.url.get_secret_value() if settings.redis.url else None
    return Throttle(limits_storage_uri(redis_url))


def build_services(
    settings: Settings,
    db: Database,
    *,
    throttle: Throttle | None = None,
    connector_settings: ConnectorSettings | None = None,
) -> Services:
    """The services as `uzo serve` runs them; the CLI's admin commands use the same."""
    server = settings.server
    files_root = settings.home / "files"
    files_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    background = BackgroundWork()
    limits = LimitsService()
    versions = VersionService(dt.timedelta(minutes=settings.versions.checkout_ttl_minutes))
    vault = CredentialVault(settings.credential_keys())
    router = DatabaseRouter(db, settings, vault)
    connectors = ConnectorService(
        router, vault, connector_settings or ConnectorSettings(), files_root, limits
    )
    jobs, workflows = JobService(), WorkflowService(limits, versions)
    return Services(
        auth=AuthService(
            db,
            settings,
            throttle or build_throttle(settings),
            build_sender(settings.auth.mail_sender, settings.home),
            background,
        ),
        connectors=connectors,
        limits=limits,
        features=FeatureService(limits),
        subscriptions=SubscriptionService(),
        jobs=jobs,
        jobpackages=JobPackageService(),
        workflows=workflows,
        versions=versions,
        transfer=TransferService(jobs, workflows, versions, connectors),
        deletions=DeletionService(limits, settings.history.restore_days),
        remote_calls=RemoteCalls(
            max_total=server.connector_calls_max,
            per_tenant=server.connector_calls_per_tenant,
            timeout=server.connector_call_timeout_seconds,
        ),
        background=background,
        router=router,
    )

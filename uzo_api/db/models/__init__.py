"""Every table of the metadata schema (importing this registers them on Base.metadata)."""

from uzo_api.db.models.base import Base, tenant_tables
from uzo_api.db.models.connectors import Connector, ConnectorType
from uzo_api.db.models.executions import NodeExecution, PrefectFlowRun, WorkflowExecution
from uzo_api.db.models.lineage import DataAsset, LineageEdge, LineageImpactCache, TableProfile
from uzo_api.db.models.logs import AuditLog, DataChangeHistory, ExecutionLog, ServerLog
from uzo_api.db.models.rbac import (
    Group,
    GroupRole,
    ObjectPermission,
    Permission,
    Role,
    UserGroup,
    UserRole,
)
from uzo_api.db.models.tenancy import (
    ApiKey,
    Feature,
    PasswordResetToken,
    PlanFeature,
    PlatformAdmin,
    RefreshToken,
    Subscription,
    SubscriptionFeatureOverride,
    SubscriptionPlan,
    UsageCounter,
    User,
)
from uzo_api.db.models.versioning import DeletionLog, Version, VersionComment
from uzo_api.db.models.workspace import Folder, Job, JobPackage, JobPackageJob, Workflow, Workspace

__all__ = [
    "ApiKey",
    "AuditLog",
    "Base",
    "Connector",
    "ConnectorType",
    "DataAsset",
    "DataChangeHistory",
    "DeletionLog",
    "ExecutionLog",
    "Feature",
    "Folder",
    "Group",
    "GroupRole",
    "Job",
    "JobPackage",
    "JobPackageJob",
    "LineageEdge",
    "LineageImpactCache",
    "NodeExecution",
    "ObjectPermission",
    "PasswordResetToken",
    "Permission",
    "PlanFeature",
    "PlatformAdmin",
    "PrefectFlowRun",
    "RefreshToken",
    "Role",
    "ServerLog",
    "Subscription",
    "SubscriptionFeatureOverride",
    "SubscriptionPlan",
    "TableProfile",
    "UsageCounter",
    "User",
    "UserGroup",
    "UserRole",
    "Version",
    "VersionComment",
    "Workflow",
    "WorkflowExecution",
    "Workspace",
    "tenant_tables",
]

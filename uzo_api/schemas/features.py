"""Feature flags, usage limits and plan changes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from uzo_api.schemas.common import RequestModel, ResponseModel


class FeatureRead(ResponseModel):
    feature_key: str
    name: str
    enabled: bool
    source: Literal["override", "plan", "default"] = Field(
        description="What decided: a subscription override, the plan, or the default."
    )
    limit_value: int | None


class EnabledFeaturesResult(ResponseModel):
    plan_key: str
    features: list[str] = Field(description="Keys of the enabled features, sorted.")


class UsageResult(ResponseModel):
    name: str = Field(description="The plan limit, e.g. `max_connectors`.")
    allowed: int | None = Field(description="Null: unlimited on this plan.")
    used: int
    plan_key: str


class UpgradeRequest(RequestModel):
    plan_key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class UpgradeResult(ResponseModel):
    plan_key: str
    max_workflows: int | None
    max_connectors: int | None
    max_executions_per_month: int | None
    max_users: int | None

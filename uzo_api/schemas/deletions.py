"""The deletion log: one entry per delete, with what it cascaded to."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field

from uzo_api.pagination import Page
from uzo_api.schemas.common import ResponseModel

ResourceType = Literal["workspace", "folder", "job", "workflow", "jobpackage"]
Action = Literal["soft", "restored", "hard"]
Status = Literal["restorable", "expired", "restored", "purged"]


class DeletionRead(ResponseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    resource_type: str = Field(description="What was deleted: workspace, folder, job, ...")
    resource_id: uuid.UUID
    name: str | None = Field(description="The object's name when it was deleted.")
    status: Status = Field(
        description="`restorable` until `restore_deadline`; `expired` after it (the rows "
        "are still there until `uzo db purge` runs); `restored`; `purged` (removed for good)."
    )
    cascaded_counts: dict[str, int] = Field(
        description="How many objects under it the delete took, per type (`folders`, "
        "`jobs`, `workflows`); the object itself is not counted."
    )
    cascaded_ids: dict[str, list[uuid.UUID]] = Field(
        description="Exactly which ones: what a restore brings back. Objects deleted on "
        "their own before are not in it and stay deleted."
    )
    deleted_by: uuid.UUID | None
    deleted_at: dt.datetime
    restore_deadline: dt.datetime | None
    restored_at: dt.datetime | None
    restored_by: uuid.UUID | None
    purged_at: dt.datetime | None
    purged_by: uuid.UUID | None = Field(description="Null after `uzo db purge`.")


class DeletionPage(Page[DeletionRead]):
    pass

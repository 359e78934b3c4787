"""Workspaces and folders.

A PATCH changes only the fields it names (``null`` clears a description, and moves a
folder to the top of its workspace as ``parent_folder_id``); unknown fields, such as
``id``, ``subscription_id``, ``created_by`` or ``deleted_at``, are refused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Sort = Literal["name", "-name", "created_at", "-created_at"]


class _Renaming(RequestModel):
    name: Name | None = Field(default=None, description="A new name; it cannot be null.")
    description: Description | None = Field(default=None, description="`null` clears it.")

    @field_validator("name", mode="after")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        # only a value sent is validated: null is refused, leaving it out keeps the name
        if value is None:
            raise ValueError("name cannot be null; leave it out to keep the current name")
        return value


class WorkspaceCreate(RequestModel):
    name: Name
    description: Description | None = None


class WorkspaceUpdate(_Renaming):
    pass


class WorkspaceRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class WorkspacePage(Page[WorkspaceRead]):
    pass


class FolderCreate(RequestModel):
    name: Name
    description: Description | None = None
    parent_folder_id: uuid.UUID | None = Field(
        default=None,
        description="The folder to create it in (of the same workspace); null or left out: "
        "the top level of the workspace.",
    )


class FolderUpdate(_Renaming):
    parent_folder_id: uuid.UUID | None = Field(
        default=None,
        description="Move the folder, with everything in it, under this folder of the same "
        "workspace; `null` moves it to the top level; left out, it stays where it is. "
        "Moving needs admin on the folder and read_write on where it goes.",
    )


class FolderRead(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None
    workspace_id: uuid.UUID
    parent_folder_id: uuid.UUID | None = Field(description="Null for a top-level folder.")
    ancestor_ids: list[uuid.UUID] = Field(
        description="Every folder above this one, from the top level down (its parent last)."
    )
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FolderPage(Page[FolderRead]):
    pass

"""Workflow versions, check-outs, comments and diffs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from uzo_api.pagination import Page
from uzo_api.schemas.common import RequestModel, ResponseModel

Comment = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Tag = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][\w.\-+ ]*$")
]
TAG_DESCRIPTION = "A label unique within the workflow's versions, e.g. `v1.2` or `release 2026-03`."


class VersionCreate(RequestModel):
    comment: Comment | None = Field(
        default=None, description="Becomes the version's first comment."
    )
    tag: Tag | None = Field(default=None, description=TAG_DESCRIPTION)


class VersionCheckinRequest(RequestModel):
    comment: Comment = Field(description="What changed; becomes the version's first comment.")
    tag: Tag | None = Field(default=None, description=TAG_DESCRIPTION)


class VersionSummaryRead(ResponseModel):
    """A version in the history: everything but its diagram."""

    id: uuid.UUID
    workflow_id: uuid.UUID
    version_number: int = Field(description="1, 2, 3... per workflow, without gaps.")
    status: Literal["draft", "checked_in", "published"] = Field(
        description="`draft`: the diagram was saved with `draft=true` and can be neither "
        "published nor run; `published`: the version that runs by default (one per "
        "workflow); `checked_in` otherwise."
    )
    tag: str | None
    source: str = Field(
        description="What made it: `save` (a diagram saved), `create` (POST .../versions), "
        "`checkin` or `rollback`."
    )
    comment: str | None = Field(description="The comment it was made with, if any.")
    rolled_back_from: int | None = Field(
        description="For a rollback, the number of the version whose diagram it restored."
    )
    digest: str = Field(description="SHA-256 of the canonical diagram and draft state.")
    created_by: uuid.UUID | None
    created_at: dt.datetime
    published_at: dt.datetime | None = Field(description="When it was last published.")
    checked_out_by: uuid.UUID | None = Field(
        description="Who checked the workflow out starting from this version."
    )
    checked_out_at: dt.datetime | None


class VersionRead(VersionSummaryRead):
    diagram: dict[str, Any] = Field(description="The workflow's diagram as this version holds it.")


class VersionPage(Page[VersionSummaryRead]):
    pass


class WorkflowCheckoutRead(ResponseModel):
    """A workflow's check-out: who holds it, since and until when."""

    workflow_id: uuid.UUID
    checked_out: bool = Field(description="True while a check-out holds (not expired).")
    holder_id: uuid.UUID | None
    holder_email: str | None
    holder_name: str | None
    checked_out_at: dt.datetime | None
    expires_at: dt.datetime | None
    expired: bool = Field(
        description="A check-out whose time ran out: it binds nobody any more; anyone may "
        "save or check out the workflow."
    )
    version_id: uuid.UUID | None = Field(description="The version the check-out started from.")


class VersionCommentCreate(RequestModel):
    text: Comment


class VersionCommentRead(ResponseModel):
    id: uuid.UUID
    version_id: uuid.UUID
    text: str
    commented_by: uuid.UUID | None
    created_at: dt.datetime


class VersionCommentPage(Page[VersionCommentRead]):
    pass


# -- diffs ---------------------------------------------------------------------------------------


class VersionFieldChangeRead(ResponseModel):
    path: str = Field(description="Dotted path in the node or edge, e.g. `data.config.condition`.")
    kind: Literal["added", "removed", "changed"]
    old: Any = Field(default=None, description="The older value (null when added).")
    new: Any = Field(default=None, description="The newer value (null when removed).")


class VersionItemChangeRead(ResponseModel):
    id: str = Field(description="The node's or edge's id.")
    changes: list[VersionFieldChangeRead]


class VersionNodesDiffRead(ResponseModel):
    added: list[dict[str, Any]] = Field(description="Nodes only in the newer version, whole.")
    removed: list[dict[str, Any]] = Field(description="Nodes only in the older version, whole.")
    changed: list[VersionItemChangeRead] = Field(
        description="Nodes in both whose logic changed (config, settings, node type, ...)."
    )


class VersionEdgesDiffRead(ResponseModel):
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[VersionItemChangeRead] = Field(
        description="Edges in both whose source, target, handles or data changed."
    )


class VersionLayoutDiffRead(ResponseModel):
    """Changes that only move or restyle things on the canvas (position, size, selection,
    style, label, viewport...)."""

    nodes: list[VersionItemChangeRead]
    edges: list[VersionItemChangeRead]
    viewport: list[VersionFieldChangeRead]


class VersionDiffResult(ResponseModel):
    workflow_id: uuid.UUID
    from_version: int
    to_version: int
    identical: bool = Field(description="The two diagrams are the same.")
    layout_only: bool = Field(
        description="Something changed, but only on the canvas: what runs is the same."
    )
    nodes: VersionNodesDiffRead
    edges: VersionEdgesDiffRead
    layout: VersionLayoutDiffRead

"""/api/workflows/{id}/versions, /api/workflows/{id}/checkout and /api/versions/{id}.

A version is a numbered snapshot of a workflow's diagram (see ``services/versions.py``
for the rules). Reading needs read on the workflow; saving, check-out, check-in, rollback
and comments read_write; publishing, and breaking someone else's check-out, admin.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.versions import (
    VersionCheckinRequest,
    VersionCommentCreate,
    VersionCommentPage,
    VersionCommentRead,
    VersionCreate,
    VersionDiffResult,
    VersionEdgesDiffRead,
    VersionFieldChangeRead,
    VersionItemChangeRead,
    VersionLayoutDiffRead,
    VersionNodesDiffRead,
    VersionPage,
    VersionRead,
    VersionSummaryRead,
    WorkflowCheckoutRead,
)
from uzo_api.services.versions import diagram_of

if TYPE_CHECKING:
    from uzo_api.db.models import Version, VersionComment
    from uzo_api.services.version_diff import FieldChange, ItemChange, Section
    from uzo_api.services.versions import CheckoutState

router = APIRouter(tags=["versions"], dependencies=[Depends(refuse_unknown_query)])


def _summary(row: Version) -> VersionSummaryRead:
    data = row.version_data
    return VersionSummaryRead(
        id=row.id,
        workflow_id=row.resource_id,
        version_number=row.version_number,
        status=row.status,  # type: ignore[arg-type]  # the table's check constraint
        tag=row.tag,
        source=str(data.get("source", "save")),
        comment=data.get("comment"),
        rolled_back_from=data.get("rolled_back_from"),
        digest=str(data.get("digest", "")),
        created_by=row.created_by,
        created_at=row.created_at,
        published_at=row.published_at,
        checked_out_by=row.checked_out_by,
        checked_out_at=row.checked_out_at,
    )


def _version(row: Version) -> VersionRead:
    return VersionRead(**_summary(row).model_dump(), diagram=diagram_of(row))


def _checkout(state: CheckoutState) -> WorkflowCheckoutRead:
    holder = state.holder
    return WorkflowCheckoutRead(
        workflow_id=state.workflow_id,
        checked_out=state.holder_id is not None and not state.expired,
        holder_id=state.holder_id,
        holder_email=holder.email if holder else None,
        holder_name=(holder.full_name or holder.username) if holder else None,
        checked_out_at=state.since,
        expires_at=state.expires_at,
        expired=state.expired,
        version_id=state.version_id,
    )


def _comment(row: VersionComment) -> VersionCommentRead:
    return VersionCommentRead(
        id=row.id,
        version_id=row.version_id,
        text=row.comment_text,
        commented_by=row.commented_by,
        created_at=row.created_at,
    )


def _changes(changes: list[FieldChange]) -> list[VersionFieldChangeRead]:
    return [VersionFieldChangeRead(path=c.path, kind=c.kind, old=c.old, new=c.new) for c in changes]


def _items(items: list[ItemChange]) -> list[VersionItemChangeRead]:
    return [VersionItemChangeRead(id=i.id, changes=_changes(i.changes)) for i in items]


def _section(section: Section) -> dict[str, object]:
    return {
        "added": section.added,
        "removed": section.removed,
        "changed": _items(section.changed),
    }


# -- a workflow's history -------------------------------------------------------------------------


@router.get(
    "/api/workflows/{workflow_id}/versions",
    responses=problem_responses(403, 404),
    summary="The workflow's versions, newest first (without their diagrams)",
    openapi_extra=permission("read on workflow"),
)
def list_workflow_versions(
    workflow_id: uuid.UUID, ctx: ContextDep, services: ServicesDep, page: PageParams
) -> VersionPage:
    rows = services.versions.page(ctx, workflow_id, page)
    cursor, link = page.finish([(str(r.version_number), r.id) for r in rows])
    return VersionPage(
        items=[_summary(r) for r in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/workflows/{workflow_id}/versions",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Make a version of the workflow's current diagram, with a comment or tag",
    openapi_extra=permission("read_write on workflow"),
    description="Always makes a version (an explicit snapshot, e.g. to tag a release), even "
    "if the diagram equals the latest version's. 409 while someone else has the workflow "
    "checked out, or when the tag already names another version.",
)
def create_workflow_version(
    workflow_id: uuid.UUID,
    body: VersionCreate,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
) -> VersionRead:
    row = services.versions.create(ctx, workflow_id, comment=body.comment, tag=body.tag)
    response.headers["Location"] = f"/api/versions/{row.id}"
    return _version(row)


@router.get(
    "/api/workflows/{workflow_id}/versions/diff",
    responses=problem_responses(403, 404),
    summary="What changed between two versions of the workflow",
    openapi_extra=permission("read on workflow"),
    description="Nodes and edges are matched by id. `nodes`/`edges` list what was added, "
    "removed and logically changed (for a changed node, every changed path with its old "
    "and new value); `layout` holds the changes that only affect the canvas (position, "
    "size, selection, style, labels, viewport). `layout_only` is true when something "
    "changed but nothing that runs did.",
)
def diff_workflow_versions(
    workflow_id: uuid.UUID,
    ctx: ContextDep,
    services: ServicesDep,
    from_version: Annotated[
        int, Query(alias="from", ge=1, le=2**31 - 1, description="The older version's number.")
    ],
    to_version: Annotated[
        int | None,
        Query(
            alias="to", ge=1, le=2**31 - 1, description="The newer version's number (the latest)."
        ),
    ] = None,
) -> VersionDiffResult:
    old, new, diff = services.versions.diff(ctx, workflow_id, from_version, to_version)
    return VersionDiffResult(
        workflow_id=workflow_id,
        from_version=old.version_number,
        to_version=new.version_number,
        identical=diff.identical,
        layout_only=diff.layout_only,
        nodes=VersionNodesDiffRead.model_validate(_section(diff.nodes)),
        edges=VersionEdgesDiffRead.model_validate(_section(diff.edges)),
        layout=VersionLayoutDiffRead(
            nodes=_items(diff.layout.nodes),
            edges=_items(diff.layout.edges),
            viewport=_changes(diff.layout.viewport),
        ),
    )


@router.get(
    "/api/workflows/{workflow_id}/checkout",
    responses=problem_responses(403, 404),
    summary="Who has the workflow checked out, since and until when",
    openapi_extra=permission("read on workflow"),
)
def get_workflow_checkout(
    workflow_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> WorkflowCheckoutRead:
    return _checkout(services.versions.checkout_state(ctx, workflow_id))


@router.delete(
    "/api/workflows/{workflow_id}/checkout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="End the workflow's check-out without checking in (audited)",
    openapi_extra=permission(
        "read_write on workflow for one's own or an expired check-out; admin on workflow "
        "to break someone else's"
    ),
    description="No version is made. Answers 204 also when nothing was checked out.",
)
def release_workflow_checkout(
    workflow_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> Response:
    services.versions.release(ctx, workflow_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- one version ----------------------------------------------------------------------------------


@router.get(
    "/api/versions/{version_id}",
    responses=problem_responses(403, 404),
    summary="One version, with its diagram",
    openapi_extra=permission("read on the version's workflow"),
)
def get_version(version_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> VersionRead:
    return _version(services.versions.get(ctx, version_id))


@router.post(
    "/api/versions/{version_id}/checkout",
    responses=problem_responses(403, 404, 409),
    summary="Check the workflow out for yourself, starting from this (its latest) version",
    openapi_extra=permission("read_write on the version's workflow"),
    description="Until you check in, release it or it expires (`UZO_VERSIONS_CHECKOUT_TTL_"
    "MINUTES`), others' saves, check-outs and rollbacks are refused with 409 naming you. "
    "Checking out again restarts the time. 409 if someone else holds it, or if this is not "
    "the workflow's latest version.",
)
def checkout_version(
    version_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> WorkflowCheckoutRead:
    return _checkout(services.versions.checkout(ctx, version_id))


@router.post(
    "/api/versions/{version_id}/checkin",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Check in: a new version of the current diagram with a comment; the lock ends",
    openapi_extra=permission("read_write on the version's workflow"),
    description="Names any version of the workflow you have checked out. 409 if you do "
    "not hold the check-out (someone else took it after yours expired, or none).",
)
def checkin_version(
    version_id: uuid.UUID,
    body: VersionCheckinRequest,
    ctx: ContextDep,
    services: ServicesDep,
    response: Response,
) -> VersionRead:
    row = services.versions.checkin(ctx, version_id, comment=body.comment, tag=body.tag)
    response.headers["Location"] = f"/api/versions/{row.id}"
    return _version(row)


@router.post(
    "/api/versions/{version_id}/publish",
    responses=problem_responses(403, 404, 409),
    summary="Make this the version that runs by default",
    openapi_extra=permission("admin on the version's workflow"),
    description="The previously published version goes back to `checked_in`. A run that "
    "names no version runs the published one (without one, the latest non-draft version). "
    "A draft version cannot be published (409).",
)
def publish_version(
    version_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> VersionSummaryRead:
    return _summary(services.versions.publish(ctx, version_id))


@router.post(
    "/api/versions/{version_id}/rollback",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Restore this version's diagram as the workflow's, as a new version",
    openapi_extra=permission("read_write on the version's workflow"),
    description="History is kept: the restored diagram becomes a new, latest version "
    "(`source: rollback`, `rolled_back_from`). 409 while someone else has the workflow "
    "checked out.",
)
def rollback_version(
    version_id: uuid.UUID, ctx: ContextDep, services: ServicesDep, response: Response
) -> VersionRead:
    row = services.versions.rollback(ctx, version_id)
    response.headers["Location"] = f"/api/versions/{row.id}"
    return _version(row)


@router.get(
    "/api/versions/{version_id}/comments",
    responses=problem_responses(403, 404),
    summary="The version's comments, oldest first",
    openapi_extra=permission("read on the version's workflow"),
)
def list_version_comments(
    version_id: uuid.UUID, ctx: ContextDep, services: ServicesDep, page: PageParams
) -> VersionCommentPage:
    rows = services.versions.comments(ctx, version_id, page)
    cursor, link = page.finish([(r.created_at, r.id) for r in rows])
    return VersionCommentPage(
        items=[_comment(r) for r in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/versions/{version_id}/comments",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404),
    summary="Comment on a version",
    openapi_extra=permission("read_write on the version's workflow"),
)
def create_version_comment(
    version_id: uuid.UUID, body: VersionCommentCreate, ctx: ContextDep, services: ServicesDep
) -> VersionCommentRead:
    return _comment(services.versions.add_comment(ctx, version_id, body.text))

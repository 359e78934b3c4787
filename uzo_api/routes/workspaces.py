"""/api/workspaces and /api/folders: the top of the object tree."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from uzo_api.authz import permission
from uzo_api.deps import ContextDep, ServicesDep, refuse_unknown_query
from uzo_api.errors import problem_responses
from uzo_api.pagination import PageParams
from uzo_api.schemas.workspaces import (
    FolderCreate,
    FolderPage,
    FolderRead,
    FolderUpdate,
    Sort,
    WorkspaceCreate,
    WorkspacePage,
    WorkspaceRead,
    WorkspaceUpdate,
)
from uzo_api.services.workspaces import WorkspaceService, sort_key

if TYPE_CHECKING:
    from uzo_api.db.models import Folder, Workspace

router = APIRouter(tags=["workspaces"], dependencies=[Depends(refuse_unknown_query)])

# stateless (it works in each request's session); the lead may move it to the Services
# container (`services.workspaces`) without changing anything else here
service = WorkspaceService()

NameFilter = Annotated[
    str | None,
    Query(max_length=200, description="Only names containing this text (case-insensitive)."),
]
SortParam = Annotated[
    Sort, Query(description="Sort key; `-` for descending. Ties are broken by id.")
]


def _workspace(row: Workspace) -> WorkspaceRead:
    return WorkspaceRead(
        id=row.id,
        name=row.workspace_name,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _folder(row: Folder) -> FolderRead:
    return FolderRead(
        id=row.id,
        name=row.folder_name,
        description=row.description,
        workspace_id=row.workspace_id,
        parent_folder_id=row.parent_folder_id,
        ancestor_ids=list(row.ancestor_ids or []),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# -- workspaces -----------------------------------------------------------------------------------


@router.get(
    "/api/workspaces",
    summary="The workspaces you may read",
    openapi_extra=permission("read on workspace (listed only where held)"),
)
def list_workspaces(
    ctx: ContextDep, page: PageParams, name: NameFilter = None, sort: SortParam = "name"
) -> WorkspacePage:
    rows = service.page_workspaces(ctx, page, name=name, sort=sort)
    cursor, link = page.finish([sort_key(r, sort) for r in rows])
    return WorkspacePage(
        items=[_workspace(r) for r in rows[: page.limit]], next_cursor=cursor, next=link
    )


@router.post(
    "/api/workspaces",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 409),
    summary="Create a workspace; you become its owner",
    openapi_extra=permission("admin on every workspace (the subscription's owner, or a role)"),
)
def create_workspace(body: WorkspaceCreate, ctx: ContextDep) -> WorkspaceRead:
    return _workspace(service.create_workspace(ctx, name=body.name, description=body.description))


@router.get(
    "/api/workspaces/{workspace_id}",
    responses=problem_responses(403, 404),
    summary="One workspace",
    openapi_extra=permission("read on workspace"),
)
def get_workspace(workspace_id: uuid.UUID, ctx: ContextDep) -> WorkspaceRead:
    return _workspace(service.get_workspace(ctx, workspace_id))


@router.patch(
    "/api/workspaces/{workspace_id}",
    responses=problem_responses(403, 404, 409),
    summary="Rename or describe a workspace",
    openapi_extra=permission("read_write on workspace"),
)
def update_workspace(
    workspace_id: uuid.UUID, body: WorkspaceUpdate, ctx: ContextDep
) -> WorkspaceRead:
    changes = body.model_dump(exclude_unset=True)
    return _workspace(service.update_workspace(ctx, workspace_id, changes))


@router.delete(
    "/api/workspaces/{workspace_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Delete a workspace with its folders, jobs and workflows (restorable)",
    openapi_extra=permission("admin on workspace"),
    description="A soft delete, logged in `/api/audit/deletions` with what it took.",
)
def delete_workspace(workspace_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    services.deletions.delete(ctx, "workspace", workspace_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/workspaces/{workspace_id}/restore",
    responses=problem_responses(403, 404, 409, 410),
    summary="Restore a deleted workspace and what its deletion removed",
    openapi_extra=permission("admin on workspace"),
    description="Its latest deletion, as `POST /api/deletions/{id}/restore` does: folders, "
    "jobs and workflows deleted earlier on their own stay deleted. 404 if the workspace "
    "is not deleted; 409 if its name is taken; 410 past the restore window.",
)
def restore_workspace(
    workspace_id: uuid.UUID, ctx: ContextDep, services: ServicesDep
) -> WorkspaceRead:
    return _workspace(services.deletions.restore_object(ctx, "workspace", workspace_id))


# -- folders --------------------------------------------------------------------------------------


@router.get(
    "/api/workspaces/{workspace_id}/folders",
    responses=problem_responses(404),
    summary="The folders of a workspace's top level, or of one folder, that you may read",
    openapi_extra=permission("read on folder (listed only where held or inherited)"),
)
def list_folders(
    workspace_id: uuid.UUID,
    ctx: ContextDep,
    page: PageParams,
    parent_folder_id: Annotated[
        uuid.UUID | None,
        Query(description="List this folder's sub-folders; left out: the top level."),
    ] = None,
    name: NameFilter = None,
    sort: SortParam = "name",
) -> FolderPage:
    rows = service.page_folders(
        ctx, workspace_id, page, parent_folder_id=parent_folder_id, name=name, sort=sort
    )
    cursor, link = page.finish([sort_key(r, sort) for r in rows])
    return FolderPage(items=[_folder(r) for r in rows[: page.limit]], next_cursor=cursor, next=link)


@router.post(
    "/api/workspaces/{workspace_id}/folders",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409),
    summary="Create a folder at the top of a workspace or in a folder",
    openapi_extra=permission("read_write on the workspace or the parent folder"),
)
def create_folder(workspace_id: uuid.UUID, body: FolderCreate, ctx: ContextDep) -> FolderRead:
    row = service.create_folder(
        ctx,
        workspace_id,
        name=body.name,
        description=body.description,
        parent_folder_id=body.parent_folder_id,
    )
    return _folder(row)


@router.get(
    "/api/folders/{folder_id}",
    responses=problem_responses(403, 404),
    summary="One folder",
    openapi_extra=permission("read on folder"),
)
def get_folder(folder_id: uuid.UUID, ctx: ContextDep) -> FolderRead:
    return _folder(service.get_folder(ctx, folder_id))


@router.patch(
    "/api/folders/{folder_id}",
    responses=problem_responses(403, 404, 409),
    summary="Rename, describe or move a folder (with everything in it)",
    openapi_extra=permission(
        "read_write on folder; to move it, admin on folder and read_write on the new parent"
    ),
    description="A move stays within the workspace and never puts a folder under itself "
    "(422 naming `parent_folder_id`).",
)
def update_folder(folder_id: uuid.UUID, body: FolderUpdate, ctx: ContextDep) -> FolderRead:
    changes = body.model_dump(exclude_unset=True)
    return _folder(service.update_folder(ctx, folder_id, changes))


@router.delete(
    "/api/folders/{folder_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
    summary="Delete a folder with its sub-folders, jobs and workflows (restorable)",
    openapi_extra=permission("admin on folder"),
    description="A soft delete, logged in `/api/audit/deletions` with what it took.",
)
def delete_folder(folder_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> Response:
    services.deletions.delete(ctx, "folder", folder_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/folders/{folder_id}/restore",
    responses=problem_responses(403, 404, 409, 410),
    summary="Restore a deleted folder and what its deletion removed",
    openapi_extra=permission("admin on folder"),
    description="409 while its workspace or parent folder is deleted (restore that first), "
    "when it was deleted with a folder above it (restore that deletion), or when its name "
    "is taken; 404 if the folder is not deleted; 410 past the restore window.",
)
def restore_folder(folder_id: uuid.UUID, ctx: ContextDep, services: ServicesDep) -> FolderRead:
    return _folder(services.deletions.restore_object(ctx, "folder", folder_id))

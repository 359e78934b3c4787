"""The API's conventions, applied to every route so later ones inherit them.

- Operation ids are the handler's name in camelCase (``list_connectors`` ->
  ``listConnectors``): short, stable, and what client generators name methods after.
- Error responses are documented per route with the statuses it can really return,
  under ``application/problem+json`` (the media type the server sends): 401 where the
  route needs credentials, 413 and 422 where it takes a body, 422 where it takes
  parameters (unknown query parameters are refused on every ``/api`` route), plus the
  statuses the route declares itself (404, 409, 429, ...).
- Unknown query parameters are refused with a 422 naming them, rather than ignored
  (``?limt=5`` would otherwise silently return the default page).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi

from uzo_api.errors import PROBLEM_MEDIA_TYPE, problem_responses

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

API_PREFIX = "/api/"
TAGS: list[dict[str, str]] = [
    {
        "name": "audit",
        "description": "The audit trail: who changed what (with before/after images and the "
        "request id), request logs, change history; a platform admin reads every tenant's.",
    },
    {"name": "health", "description": "Liveness, readiness and the problem-type catalogue."},
    {
        "name": "auth",
        "description": "Registration, login, token refresh, password reset and API keys.",
    },
    {
        "name": "connectors",
        "description": "Connector types and the subscription's connectors: create, test, "
        "discover. Secrets are encrypted at rest and never returned.",
    },
    {
        "name": "features",
        "description": "The subscription's edition: feature flags (override, then plan, then "
        "default), usage against plan limits, and plan changes.",
    },
    {
        "name": "subscriptions",
        "description": "Every subscription of the server, for platform admins (`uzo admin "
        "create`): create with an owner, rename, change plan, suspend, cancel, delete. A "
        "member reads their own.",
    },
    {
        "name": "workspaces",
        "description": "Workspaces and their nested folders: create, rename, move, "
        "soft-delete and restore. Grants on a workspace or folder inherit downwards.",
    },
    {
        "name": "users",
        "description": "The subscription's users: create or invite (a set-password link is "
        "mailed), change, deactivate, delete. The last active owner always stays.",
    },
    {
        "name": "groups",
        "description": "Groups of users and their members; grants and roles given to a group "
        "apply to every member.",
    },
    {
        "name": "permissions",
        "description": "Roles (a level on every object of a type), per-object grants to a user "
        "or a group (read < execute < read_write < admin < owner, inherited workspace -> "
        "folder -> job -> workflow), and the check of who may do what.",
    },
    {
        "name": "jobs",
        "description": "Jobs (a folder's units that hold workflows) and job packages "
        "(ordered sets of jobs). Each object answers its version in `ETag`; a change with a "
        "stale `If-Match` is refused (412).",
    },
    {
        "name": "workflows",
        "description": "A job's workflows: the ReactFlow document as drawn, returned as "
        "sent. It is validated on save (every error at once, by node and field) unless "
        "saved as a draft, which cannot run; it holds no secrets (nodes name a connector).",
    },
    {
        "name": "deletions",
        "description": "The deletion log: what each soft delete cascaded to (ids and counts "
        "per type), restoring exactly that within the restore window, and hard deletes.",
    },
    {
        "name": "versions",
        "description": "A workflow's numbered versions: every save that changes the diagram "
        "makes one. Check-out locks a workflow for one user (others' saves get 409) until "
        "check-in or expiry; publish picks the version that runs; rollback restores an old "
        "diagram as a new version; diff separates logic from layout changes.",
    },
]


def operation_id(route: APIRoute) -> str:
    """``list_connector_types`` -> ``listConnectorTypes``."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _all_dependants(dependant: Any) -> list[Any]:
    out = [dependant]
    for sub in dependant.dependencies:
        out.extend(_all_dependants(sub))
    return out


def route_params(route: APIRoute, kind: str) -> frozenset[str]:
    """Aliases of the route's parameters of one kind (query, path, header, cookie)."""
    return frozenset(
        field.alias
        for dependant in _all_dependants(route.dependant)
        for field in getattr(dependant, f"{kind}_params")
    )


def _statuses(path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses every route of this shape can return, besides its own."""
    statuses: set[int] = set()
    if operation.get("security"):
        statuses.add(401)
    if "requestBody" in operation:
        statuses.update({400, 413, 422})  # 400: a body that is not JSON at all
    if operation.get("parameters") or path.startswith(API_PREFIX):
        statuses.add(422)  # parameters are validated; unknown query parameters refused
    if path.startswith(API_PREFIX):
        statuses.add(503)  # no admission slot came free in time (uzo_api.admission)
    return statuses


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, with problem bodies under the media type actually sent."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, operation):
                described = problem_responses(status)[status]["description"]
                responses.setdefault(str(status), {"description": described})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = dict(problem)
                    if code == "422":
                        response["description"] = "Invalid input"
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    app.openapi = functools.partial(custom_openapi, app)  # type: ignore[method-assign]

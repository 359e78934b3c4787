"""Liveness, readiness and the problem-type catalogue."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from uzo_api.authz import permission
from uzo_api.db.migrate import current_revision, head_revision
from uzo_api.deps import DatabaseDep, SettingsDep
from uzo_api.errors import PROBLEM_TYPES, NotFound, ServiceUnavailable, problem_responses

router = APIRouter(tags=["health"])


class HealthRead(BaseModel):
    status: Literal["ok"]


class ReadinessRead(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]
    schema_revision: str


class ProblemTypeRead(BaseModel):
    type: str
    title: str


@router.get("/healthz", summary="The process is up", openapi_extra=permission("public"))
def get_health() -> HealthRead:
    return HealthRead(status="ok")


@router.get(
    "/readyz",
    responses=problem_responses(503),
    summary="The database is reachable and migrated to the code's revision",
    openapi_extra=permission("public"),
)
def get_readiness(db: DatabaseDep, settings: SettingsDep) -> ReadinessRead:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = current_revision(db.engine)
    except Exception as exc:
        raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc
    head = head_revision(settings)
    if current != head:
        raise ServiceUnavailable(
            f"database schema at {current or 'nothing'}, code expects {head}: run `uzo db upgrade`"
        )
    return ReadinessRead(status="ready", database="ok", schema_revision=current or "")


@router.get(
    "/problems/{slug}",
    responses=problem_responses(404),
    summary="What a problem `type` means",
    openapi_extra=permission("public"),
)
def get_problem_type(slug: str) -> ProblemTypeRead:
    if slug not in PROBLEM_TYPES:
        raise NotFound(f"no problem type {slug!r}")
    return ProblemTypeRead(type=f"/problems/{slug}", title=PROBLEM_TYPES[slug])

"""Every error is ``application/problem+json`` (RFC 9457) with a stable ``type``.

Services raise :class:`Problem` subclasses; the handlers here turn them, and
FastAPI's validation errors, into problem documents. Unexpected exceptions
become a 500 problem without any trace in the body (the log has it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

PROBLEM_MEDIA_TYPE = "application/problem+json"
# FastAPI's 400 for a body it cannot even decode (bytes that are not UTF-8)
_UNDECODABLE_BODY = "There was an error parsing the body"
log = structlog.get_logger("uzo.api")


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Dotted location of the value, e.g. `body.email`.")
    message: str
    code: str
    node_id: str | None = Field(
        default=None, description="The workflow node the error is about (workflow diagrams)."
    )
    edge_id: str | None = Field(
        default=None, description="The workflow edge the error is about (workflow diagrams)."
    )


class LimitDetail(BaseModel):
    """Which plan limit a request ran into, how much of it is used, and what lifts it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The limit, e.g. `max_connectors`.")
    allowed: int
    used: int
    plan: str = Field(description="The subscription's plan.")
    upgrade_to: str | None = Field(description="The nearest plan with a higher limit.")


class ProblemDetail(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Stable identifier of the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    field: str | None = Field(default=None, description="The offending field, when there is one.")
    errors: list[FieldError] | None = None
    limit: LimitDetail | None = Field(default=None, description="Set on `plan-limit` problems.")


class Problem(Exception):
    """An error with a stable type, shown to the client as problem+json."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers or {}


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "missing or invalid credentials", **kw: Any):
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class PlanLimitReached(Problem):
    status, slug, title = 403, "plan-limit", "Plan limit reached"

    def __init__(self, detail: str, *, limit: LimitDetail, **kw: Any):
        super().__init__(detail, **kw)
        self.limit = limit


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(Problem):
    """Something that existed and cannot come back (a deletion past its restore window)."""

    status, slug, title = 410, "gone", "Gone"


class InvalidInput(Problem):
    status, slug, title = 422, "validation-error", "Invalid input"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, **kw: Any):
        super().__init__(detail, **kw)
        self.errors = errors


class PreconditionFailed(Problem):
    """An ``If-Match`` naming a version the object is no longer at."""

    status, slug, title = 412, "precondition-failed", "Precondition failed"


class TooManyRequests(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "unavailable", "Service unavailable"


class UpstreamError(Problem):
    """A tenant's endpoint (database, store, API) failed in a way UZO cannot describe."""

    status, slug, title = 502, "upstream-error", "Upstream failure"


class UpstreamTimeout(Problem):
    status, slug, title = 504, "upstream-timeout", "Upstream timeout"


PROBLEM_TYPES: dict[str, str] = {
    cls.slug: cls.title
    for cls in (
        Problem,
        Unauthorized,
        Forbidden,
        PlanLimitReached,
        NotFound,
        Conflict,
        Gone,
        InvalidInput,
        PreconditionFailed,
        TooManyRequests,
        ServiceUnavailable,
        UpstreamError,
        UpstreamTimeout,
    )
}
PROBLEM_TYPES.update(
    {
        "method-not-allowed": "Method not allowed",
        "internal-error": "Internal error",
        "unsupported-media-type": "Unsupported media type",
        "payload-too-large": "Payload too large",
    }
)


#: unique index on live names -> what its rows are, and where a name must be unique
LIVE_NAME_INDEXES = {
    "uq_workspaces_live_name": "workspace (in this subscription)",
    "uq_folders_live_name": "folder (in the same parent)",
    "uq_jobs_live_name": "job (in the same folder)",
    "uq_workflows_live_name": "workflow (in the same job)",
    "uq_jobpackages_live_name": "job package (in this subscription)",
}


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name else None


def problem_type(slug: str) -> str:
    return f"/problems/{slug}"


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    field: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    limit: LimitDetail | None = None,
) -> JSONResponse:
    body = ProblemDetail(
        type=problem_type(slug),
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        field=field,
        errors=errors,
        limit=limit,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = err.get("loc", ())
        msg = str(err.get("msg", "invalid value"))
        code = str(err.get("type", "invalid"))
        if code == "extra_forbidden" and loc[:1] != ("query",):
            msg = "unknown field"
        out.append(FieldError(field=_location(loc), message=msg, code=code))
    return out


_HTTP_SLUGS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "gone",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request,
            status=exc.status,
            slug=exc.slug,
            title=exc.title,
            detail=exc.detail,
            field=exc.field,
            headers=exc.headers,
            limit=getattr(exc, "limit", None),
            errors=getattr(exc, "errors", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        first = errors[0] if errors else None
        detail = f"{first.field}: {first.message}" if first else "invalid request"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(
            request,
            status=422,
            slug="validation-error",
            title="Invalid input",
            detail=detail,
            field=first.field if first else None,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNDECODABLE_BODY:
            # JSON that does not parse is a documented 422; bytes that do not decode are
            # the same mistake and get the same answer, not an undocumented 400
            error = FieldError(field="body", message="not a JSON document", code="json_invalid")
            return problem_response(
                request,
                status=422,
                slug="validation-error",
                title="Invalid input",
                detail=f"{error.field}: {error.message}",
                field=error.field,
                errors=[error],
            )
        slug = _HTTP_SLUGS.get(exc.status_code, "bad-request")
        title = PROBLEM_TYPES.get(slug, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            request,
            status=exc.status_code,
            slug=slug,
            title=title,
            detail=detail,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # the database refused a value that passed validation (a safety net, not the rule)
        log.warning(
            "database refused a value", path=request.url.path, error=type(exc.orig).__name__
        )
        return problem_response(
            request,
            status=422,
            slug="validation-error",
            title="Invalid input",
            detail="a value in the request cannot be stored",
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # a live name taken in its scope (the partial unique indexes of migration 0006),
        # met by a create, a rename or a move: the caller's mistake, never a 5xx
        taken = LIVE_NAME_INDEXES.get(_constraint(exc) or "")
        if taken is None:
            return await _unexpected(request, exc)
        return problem_response(
            request,
            status=409,
            slug=Conflict.slug,
            title=Conflict.title,
            detail=f"a {taken} of this name already exists there: names are unique among "
            "live objects of the same parent; pick another name",
            field="body.name",
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not exc.connection_invalidated:
            return await _unexpected(request, exc)
        # the database dropped the connection (restarted, or failed over): the pool has
        # been discarded, so a retry gets a fresh connection
        log.warning("database connection lost", path=request.url.path)
        return problem_response(
            request,
            status=503,
            slug=ServiceUnavailable.slug,
            title=ServiceUnavailable.title,
            detail="the connection to the database was lost; retry the request",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # runs outside the request-id middleware (Starlette's server-error layer)
        request_id = getattr(request.state, "request_id", None)
        log.exception("unhandled error", path=request.url.path, request_id=request_id)
        return problem_response(
            request,
            status=500,
            slug="internal-error",
            title="Internal error",
            detail="an unexpected error occurred; quote the request id when reporting it",
            headers={"x-request-id": request_id} if request_id else None,
        )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json bodies."""
    return {
        status: {
            "model": ProblemDetail,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": PROBLEM_TYPES.get(_HTTP_SLUGS.get(status, "bad-request"), "Error"),
        }
        for status in statuses
    }

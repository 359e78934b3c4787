"""Workflows: a job's ReactFlow documents, stored exactly as drawn.

A diagram is saved as sent (the canvas's UI fields included) once it passes the
checks the engine makes before a run (``uzo validate``: types, configs, ports,
cycles, column schemas), every error listed at once and attributed to its node or
edge. ``draft=True`` saves one that does not validate yet; a draft does not run.
Schema inference stays off storage here (no connector context is given to the
validator): saving a workflow never makes the API read a file a node names.

No diagram holds a secret, draft or not: a node refers to a saved connector by
``connector_id``. A secret field of a connector config written inline in a node
(by the connector type's model), or a secret field of the node type's own config,
is refused naming the node and the field.

Every save that changes the diagram adds a version (``services/versions.py``), and a
workflow checked out by someone else cannot be changed (409 naming the holder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select

from uzo_api.db.models import Workflow
from uzo_api.db.models.workspace import empty_diagram
from uzo_api.errors import FieldError, InvalidInput
from uzo_api.pagination import keyset
from uzo_api.services import audit
from uzo_api.services.jobs import (
    apply_changes,
    check_if_match,
    entity_tag,
    lock,
    name_filter,
    touch,
)
from uzo_connectors import registry
from uzo_connectors.credentials import MASK, redact
from uzo_connectors.errors import ConnectorError

if TYPE_CHECKING:
    import uuid
    from collections.abc import Mapping

    from uzo_api.context import RequestContext
    from uzo_api.pagination import PageRequest
    from uzo_api.services.limits import LimitsService
    from uzo_api.services.versions import VersionService
    from uzo_engine.nodes.base import NodeType
    from uzo_engine.validation import ValidationIssue

DOCUMENT_KEYS = frozenset({"nodes", "edges", "viewport"})
WORKFLOW_COLUMNS = {"name": "workflow_name", "description": "description"}


class WorkflowService:
    def __init__(self, limits: LimitsService, versions: VersionService) -> None:
        self.limits = limits
        self.versions = versions

    def create(
        self,
        ctx: RequestContext,
        job_id: uuid.UUID,
        *,
        name: str,
        description: str | None,
        diagram: dict[str, Any] | None,
        draft: bool = False,
    ) -> Workflow:
        """A workflow of a job: needs read_write on the job, and a free workflow slot in
        the plan (reserved race-free, in this transaction)."""
        job = ctx.authz.require("read_write", "job", job_id)
        document = empty_diagram() if diagram is None else diagram
        check_diagram(document, draft=draft)
        self.limits.reserve(ctx.session, ctx.principal.subscription_id, "workflows")
        row = Workflow(
            subscription_id=ctx.principal.subscription_id,
            job_id=job.id,
            workflow_name=name,
            description=description,
            workflow_diagram=document,
            is_draft=draft,
            created_by=ctx.principal.user_id,
        )
        ctx.session.add(row)
        ctx.session.flush()
        self.versions.record_save(ctx, row)  # version 1
        ctx.session.refresh(row)
        audit.record(ctx, "workflow.create", "workflow", row.id, after=_image(row))
        return row

    def page(
        self, ctx: RequestContext, job_id: uuid.UUID, page: PageRequest, name: str | None
    ) -> list[Workflow]:
        """Up to ``page.limit + 1`` of the job's workflows the caller may read, by name."""
        job = ctx.authz.load("job", job_id)
        parent = ctx.authz.decide("job", job)
        query = select(Workflow).where(
            Workflow.job_id == job.id,
            Workflow.deleted_at.is_(None),
            name_filter(Workflow.workflow_name, name),
            ctx.authz.readable_children("workflow", Workflow.id, parent),
        )
        return list(ctx.session.scalars(keyset(query, page, Workflow.workflow_name, Workflow.id)))

    def get(self, ctx: RequestContext, workflow_id: uuid.UUID) -> Workflow:
        row: Workflow = ctx.authz.require("read", "workflow", workflow_id)
        return row

    def update(
        self,
        ctx: RequestContext,
        workflow_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        draft: bool = False,
        if_match: str | None = None,
    ) -> Workflow:
        """Change name, description or diagram. A diagram is checked as on creation and
        sets ``is_draft`` (``draft``); without a diagram the draft state stays."""
        ctx.authz.require("read_write", "workflow", workflow_id)
        s = ctx.session
        row: Workflow = lock(s, Workflow, workflow_id, "workflow")
        check_if_match(if_match, entity_tag(row.updated_at), "workflow")
        self.versions.check_editable(ctx, row)  # 409 while someone else has it checked out
        before = _image(row)
        fields = {k: v for k, v in changes.items() if k != "diagram"}
        changed = apply_changes(row, fields, WORKFLOW_COLUMNS)
        if "diagram" in changes:
            check_diagram(changes["diagram"], draft=draft)
            if row.workflow_diagram != changes["diagram"] or bool(row.is_draft) != draft:
                row.workflow_diagram = changes["diagram"]
                row.is_draft = draft
                changed = True
                self.versions.record_save(ctx, row)
        if changed:
            touch(s, row)
            audit.record(
                ctx, "workflow.update", "workflow", row.id, {"fields": sorted(changes)},
                before=before, after=_image(row),
            )  # fmt: skip
        return row

    def runnable_diagram(
        self, ctx: RequestContext, workflow_id: uuid.UUID, version: int | None = None
    ) -> dict[str, Any]:
        """The diagram to run (needs execute on the workflow): version ``version``, else the
        published version, else the latest non-draft one; a draft is refused (409)."""
        row: Workflow = ctx.authz.require("execute", "workflow", workflow_id)
        return self.versions.runnable(ctx, row, version)


def _image(row: Workflow) -> dict[str, Any]:
    """A workflow's audit image without its diagram: every diagram saved is a version
    (uzo_api.services.versions), audited with it."""
    image = audit.snapshot(row)
    image.pop("workflow_diagram", None)
    return image


# -- diagram checks -------------------------------------------------------------------------


def check_diagram(document: Mapping[str, Any], *, draft: bool) -> None:
    """Refuse (422, every error at once) a diagram that is not a workflow document, holds
    a secret, or, unless it is a draft, does not validate."""
    # the engine (Polars, DuckDB, sqlglot) is imported on the first save, not at start-up
    from uzo_engine.validation import validation_errors

    errors = shape_errors(document)
    if not errors:
        errors = secret_errors(document)
        if not draft:
            errors += [
                issue_error(issue, document)
                for issue in validation_errors(document)  # no context: reads no file
            ]
    if errors:
        first = errors[0]
        where = f"node {first.node_id!r}: " if first.node_id else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(
            f"the diagram has {len(errors)} error(s): {where}{first.message}{more}",
            field=first.field,
            errors=errors,
        )


def shape_errors(document: Mapping[str, Any]) -> list[FieldError]:
    """What even a draft must be: ``{nodes: [...], edges: [...], viewport}`` of objects."""
    errors = [
        FieldError(
            field=f"body.diagram.{key}",
            message="unknown field (a workflow is {nodes, edges, viewport})",
            code="extra_forbidden",
        )
        for key in document
        if key not in DOCUMENT_KEYS
    ]
    for key in ("nodes", "edges"):
        items = document.get(key, [])
        if not isinstance(items, list):
            errors.append(_shape(key, "must be a list", "list_type"))
            continue
        errors += [
            _shape(f"{key}.{i}", "must be an object", "dict_type")
            for i, item in enumerate(items)
            if not isinstance(item, dict)
        ]
    if "viewport" in document and not isinstance(document["viewport"], dict):
        errors.append(_shape("viewport", "must be an object", "dict_type"))
    errors += [
        _shape(where, "must not contain NUL characters", "string_nul")
        for where in _nul_paths(document)
    ]
    return errors


def _nul_paths(document: Mapping[str, Any]) -> list[str]:
    """Where a string (key or value) holds U+0000, which PostgreSQL's JSONB cannot store
    (the first ten). Iterative: a deeply nested document cannot exhaust the stack."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack and len(found) < 10:
        where, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(where)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    found.append(f"{where}.{key!r}".lstrip("."))
                stack.append((f"{where}.{key}".lstrip("."), item))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}".lstrip("."), item) for i, item in enumerate(value))
    return sorted(found)


def _shape(where: str, message: str, code: str) -> FieldError:
    return FieldError(field=f"body.diagram.{where}", message=message, code=code)


def _node_type(data: Mapping[str, Any]) -> NodeType[Any] | None:
    from uzo_engine.nodes.registry import UnknownNodeTypeError, get_node_type

    name = data.get("nodeType")
    if not isinstance(name, str):
        return None
    try:
        return get_node_type(name)
    except (UnknownNodeTypeError, ImportError):
        return None


def _secret_keys(model: Any, config: Mapping[str, Any]) -> list[str]:
    """Keys of ``config`` that hold a value for a secret field of ``model`` (its names
    and aliases); with no model, the keys that look secret (password, token, ..._key)."""
    if model is None:
        shown = redact(config, None)
        return [k for k, v in config.items() if shown.get(k) == MASK and v not in (None, "", MASK)]
    names = set(registry.secret_fields(model))
    names |= {model.model_fields[n].alias for n in names} - {None}
    return [k for k, v in config.items() if k in names and v not in (None, "")]


def _connector_model(connector_type: str | None) -> Any:
    if connector_type is None:
        return None
    try:
        return registry.get_connector_class(connector_type).config_model
    except ConnectorError:  # unknown, or its optional package is missing: guess by name
        return None


def secret_errors(document: Mapping[str, Any]) -> list[FieldError]:
    """Every secret a node's config carries inline (draft or not)."""
    errors: list[FieldError] = []
    for i, node in enumerate(document.get("nodes", [])):
        data = node.get("data")
        config = data.get("config") if isinstance(data, dict) else None
        if not isinstance(config, dict):
            continue
        node_id = node.get("id") if isinstance(node.get("id"), str) else None
        base = f"body.diagram.nodes.{i}.data.config"
        found: list[tuple[str, str]] = []  # (field, what it is)
        node_type = _node_type(cast("dict[str, Any]", data))
        if node_type is not None:
            for key in _secret_keys(node_type.Params, config):
                found.append((key, f"{key} is a secret"))
            for inline in node_type.inline_connectors(config):
                model = _connector_model(inline.connector_type)
                what = f"a {inline.connector_type} connector" if model else "a connector"
                for key in _secret_keys(model, inline.config):
                    found.append((f"{inline.field}.{key}", f"{key} is a secret of {what}"))
        elif isinstance(config.get("config"), dict):  # an unknown type: the usual place
            for key in _secret_keys(None, config["config"]):
                found.append((f"config.{key}", f"{key} looks like a secret"))
        errors += [
            FieldError(
                field=f"{base}.{field}",
                message=f"{what}: a workflow holds no secrets; save it in a connector and "
                "refer to it with `connector_id`",
                code="secret_in_diagram",
                node_id=node_id,
            )
            for field, what in found
        ]
    return errors


def _index(items: Any, item_id: str | None) -> int | None:
    if item_id is None or not isinstance(items, list):
        return None
    return next(
        (i for i, it in enumerate(items) if isinstance(it, dict) and it.get("id") == item_id), None
    )


def issue_error(issue: ValidationIssue, document: Mapping[str, Any]) -> FieldError:
    """An engine validation issue located in the request body: the node's (or edge's)
    position in the document, then the field the engine names, where it names one."""
    where = "body.diagram"
    node_at = _index(document.get("nodes"), issue.node_id)
    edge_at = _index(document.get("edges"), issue.edge_id)
    if issue.code in {"extra_input", "unknown_output_port"} and edge_at is not None:
        handle = "targetHandle" if issue.code == "extra_input" else "sourceHandle"
        where += f".edges.{edge_at}.{handle}"
    elif node_at is not None:
        where += f".nodes.{node_at}"
        if issue.code == "invalid_config":  # the engine names it from the node's data
            where += f".data.{issue.field}"
        elif issue.code in {"invalid_document", "unknown_node_type"} and issue.field:
            where += f".{issue.field}"
        elif issue.code == "duplicate_node_id":
            where += ".id"
        elif issue.column:
            where += ".data.config"
    elif edge_at is not None:
        where += f".edges.{edge_at}"
        if issue.code == "invalid_document" and issue.field:
            where += f".{issue.field}"
    elif issue.field:
        where += f".{issue.field}"
    message = issue.message
    if issue.column and issue.column not in message:
        message += f" (column {issue.column!r})"
    return FieldError(
        field=where,
        message=message,
        code=issue.code,
        node_id=issue.node_id,
        edge_id=issue.edge_id,
    )

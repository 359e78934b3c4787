"""Read filters: a JSON filter document, checked so that it cannot run JavaScript.

A filter is a dict or a JSON text in MongoDB Extended JSON (``{"_id": {"$oid":
"..."}}``, ``{"at": {"$gt": {"$date": "2024-01-01T00:00:00Z"}}}``). Operators
that execute server-side JavaScript are refused anywhere in it (at any depth,
inside ``$and``/``$or``/``$expr``/arrays): ``$where``, ``$function``,
``$accumulator`` and the legacy ``$eval``/``$mapReduce``/``$code`` spellings, as
are BSON JavaScript values (``{"$code": ...}`` in Extended JSON).
"""

from __future__ import annotations

from typing import Any

from uzo_connectors.errors import ConfigError
from uzo_connectors.registry import import_optional

JS_OPERATORS = frozenset(
    {"$where", "$function", "$accumulator", "$eval", "$mapreduce", "$code", "$scope"}
)
MAX_DEPTH = 100


def _check(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ConfigError(f"filter: nested deeper than {MAX_DEPTH} levels")
    code_type = import_optional("bson.code", "mongodb").Code
    if isinstance(value, code_type):
        raise ConfigError(f"filter: JavaScript code at {path} is not allowed")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"filter: keys must be strings (at {path})")
            if key.strip().lower() in JS_OPERATORS:
                raise ConfigError(
                    f"filter: the operator {key!r} (at {path}) runs JavaScript on the server"
                    " and is not allowed"
                )
            _check(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]", depth + 1)


def parse_filter(raw: Any) -> dict[str, Any]:
    """A validated filter document from a dict, a JSON text, or None (everything)."""
    if raw is None or raw == "":
        return {}
    json_util = import_optional("bson.json_util", "mongodb")
    try:
        text = raw if isinstance(raw, str) else json_util.dumps(raw)
        doc = json_util.loads(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"filter: not a JSON document: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError("filter: must be a JSON object (a MongoDB query document)")
    _check(doc, "filter", 0)
    return doc

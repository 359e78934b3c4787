"""JSONPath for the ``http`` connector (``records_path``, ``cursor_path``, ``has_more_path``).

Standard JSONPath, RFC 9535, evaluated by python-jsonpath in strict mode:
``$.data.items[*].id``, ``$.meta['next-cursor']``, ``$..id``, ``$.items[0:10]``,
``$.items[?@.active == true]``, ``$.items[?length(@.tags) > 1]``. ``$`` (or ``""``)
is the document itself. Two filter functions are left out on purpose: ``match()``
and ``search()`` would run a tenant's regular expression on UZO's workers with no
time limit (catastrophic backtracking); comparisons, ``length()``, ``count()`` and
``value()`` are there.

The small dialect UZO read before is a subset, so saved configs keep reading the
same records. Two spellings of it are not RFC 9535 and are still accepted: the
leading ``$`` may be left out (``data.items`` is ``$.data.items``, ``[*]`` is
``$[*]``), and a dotted name may start with ``$`` or ``@`` or follow ``$`` without
a dot (``$.@id``, ``$data``), which is rewritten to the bracket form
(``$['@id']``) before it is compiled. Names with ``-`` (``$.meta.next-cursor``)
are read as python-jsonpath reads them, as one name.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonpath import JSONPath, JSONPathEnvironment, JSONPathError
from jsonpath.segments import JSONPathChildSegment
from jsonpath.selectors import IndexSelector, NameSelector

_LEGACY_TOKEN = re.compile(
    r"""
    \.?(?P<name>[A-Za-z_$@][\w$@\-]*)       # .name (a leading dot is optional)
    | \[(?P<index>-?\d+)\]                    # [3]
    | \[(?P<star>\*)\]                        # [*]
    | \[(?P<q>['"])(?P<quoted>.*?)(?P=q)\]    # ['odd key'] (no escapes)
    """,
    re.VERBOSE,
)


class _Environment(JSONPathEnvironment):
    """RFC 9535 (strict), without the regular-expression functions."""

    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        for name in ("match", "search"):
            self.function_extensions.pop(name, None)


@functools.cache
def _environment() -> _Environment:
    return _Environment(strict=True)


def _from_legacy(path: str) -> str | None:
    """``path`` (``$`` first) of UZO's earlier dialect in RFC 9535 form, or None."""
    text = path[1:]
    parts = ["$"]
    pos = 0
    while pos < len(text):
        match = _LEGACY_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            return None
        if match.group("name") is not None:
            parts.append(f"[{json.dumps(match.group('name'))}]")
        elif match.group("index") is not None:
            parts.append(f"[{int(match.group('index'))}]")
        elif match.group("star") is not None:
            parts.append("[*]")
        else:
            parts.append(f"[{json.dumps(match.group('quoted'))}]")
        pos = match.end()
    return "".join(parts)


@functools.lru_cache(maxsize=1024)
def compile_path(path: str) -> JSONPath:
    """The compiled query; ValueError says what is wrong with ``path``."""
    text = path.strip()
    if not text.startswith("$"):  # as before, the root may be left out
        text = "$" + ("" if not text or text.startswith("[") else ".") + text
    env = _environment()
    try:
        query = env.compile(text)
    except JSONPathError as exc:
        legacy = _from_legacy(text)
        try:
            if legacy is None:
                raise
            query = env.compile(legacy)
        except JSONPathError:
            reason = str(exc.args[0]) if exc.args else type(exc).__name__
            raise ValueError(f"invalid JSONPath {path!r} (RFC 9535): {reason}") from None
    if not isinstance(query, JSONPath):  # a union or intersection (not RFC 9535)
        raise ValueError(f"invalid JSONPath {path!r} (RFC 9535): one query, please")
    return query


def check_path(path: str) -> str:
    """``path`` if it is a valid JSONPath (ValueError otherwise): for config validators."""
    compile_path(path)
    return path


def extract(document: Any, path: str) -> list[Any]:
    """Every value at ``path``, in document order (a missing member yields nothing)."""
    return list(compile_path(path).findall(document))


def extract_one(document: Any, path: str) -> Any:
    """The first value at ``path``, or None."""
    found = extract(document, path)
    return found[0] if found else None


def _picks_one(query: JSONPath) -> bool:
    """The query ends by naming one member or index (or is ``$``): its value is a unit."""
    if not query.segments:
        return True
    last = query.segments[-1]
    return isinstance(last, JSONPathChildSegment) and all(
        isinstance(s, NameSelector | IndexSelector) for s in last.selectors
    )


def records_at(document: Any, path: str) -> list[dict[str, Any]]:
    """The records at ``path``: a list is the records, an object is one record.

    When the path ends by naming one member or index (``$.data``, ``$``) and finds a
    list, the list's items are the records; when it ends with a wildcard, slice,
    filter or descendant segment (``$.data[*]``), every value it selects is one.
    Scalars become ``{"value": x}`` so every record is an object.
    """
    query = compile_path(path)
    found = list(query.findall(document))
    if len(found) == 1 and isinstance(found[0], list) and _picks_one(query):
        found = found[0]
    elif len(found) == 1 and found[0] is None:
        found = []
    return [item if isinstance(item, dict) else {"value": item} for item in found]

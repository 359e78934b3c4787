"""A small JSON path extractor: dotted names, ``[n]`` indexes and ``[*]`` wildcards.

No expressions and no ``eval``: ``$.data.items[*].id``, ``results``, ``[*]``,
``meta['next-cursor']`` and ``""`` (the document itself) are the whole language.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

Step = str | int | None  # a key, an index, or None for the wildcard [*]

_TOKEN = re.compile(
    r"""
    \.?(?P<name>[A-Za-z_$@][\w$@\-]*)       # .name (a leading dot is optional)
    | \[(?P<index>-?\d+)\]                    # [3]
    | \[(?P<star>\*)\]                        # [*]
    | \[(?P<q>['"])(?P<quoted>.*?)(?P=q)\]    # ['odd key']
    """,
    re.VERBOSE,
)


@lru_cache(maxsize=256)
def parse_path(path: str) -> tuple[Step, ...]:
    """The steps of ``path``; ValueError names the position of a syntax error."""
    text = path.strip()
    if text in {"", "$"}:
        return ()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"invalid JSON path {path!r} at position {pos}")
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        elif match.group("star") is not None:
            steps.append(None)
        else:
            steps.append(match.group("quoted"))
        pos = match.end()
    return tuple(steps)


def extract(document: Any, path: str) -> list[Any]:
    """Every value at ``path`` (a wildcard fans out; a missing step yields nothing)."""
    current = [document]
    for step in parse_path(path):
        nxt: list[Any] = []
        for value in current:
            if step is None:
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            elif isinstance(step, int):
                if isinstance(value, list) and -len(value) <= step < len(value):
                    nxt.append(value[step])
            elif isinstance(value, dict) and step in value:
                nxt.append(value[step])
        current = nxt
    return current


def extract_one(document: Any, path: str) -> Any:
    """The first value at ``path``, or None."""
    found = extract(document, path)
    return found[0] if found else None


def records_at(document: Any, path: str) -> list[dict[str, Any]]:
    """The records at ``path``: a list is the records, an object is one record.

    Scalars become ``{"value": x}`` so every record is an object.
    """
    found = extract(document, path)
    if len(found) == 1 and isinstance(found[0], list) and not _ends_with_wildcard(path):
        found = found[0]
    elif len(found) == 1 and found[0] is None:
        found = []
    return [item if isinstance(item, dict) else {"value": item} for item in found]


def _ends_with_wildcard(path: str) -> bool:
    steps = parse_path(path)
    return bool(steps) and steps[-1] is None

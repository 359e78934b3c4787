"""Prompt templates of the ``llm`` node: ``str.format`` syntax restricted to plain field names.

``"Summarise: {text}"`` works; attribute and index access (``{row.__class__}``,
``{x[0]}``), positional fields (``{}``, ``{0}``), conversions (``{x!r}``) and nested
specs (``{x:{width}}``) are refused, so a template cannot reach into Python objects
(template injection). A format spec may pad or round to at most 999 characters
(``{x:>999999999}`` would make one field a gigabyte).

The ``http`` connector's URL and body templates are Jinja instead
(:mod:`uzo_connectors.http.templates`).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

_FORMATTER = string.Formatter()
_BIG_NUMBER = re.compile(r"\d{4,}")  # a width or precision of 1000 or more

Part = tuple[str, str | None, str]  # literal text, field name (None: none), format spec


@lru_cache(maxsize=512)
def parse_template(template: str) -> tuple[Part, ...]:
    """The parts of ``template``; ValueError says what is not allowed."""
    parts: list[Part] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid template: {exc}") from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None, ""))
            continue
        if not name.isidentifier():
            raise ValueError(
                f"template field {{{name}}} is not allowed: use a plain field name"
                " (no attribute or index access, no positional fields)"
            )
        if conversion is not None:
            raise ValueError(f"template field {{{name}!{conversion}}}: conversions are not allowed")
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(f"template field {{{name}}}: nested format specs are not allowed")
        if spec and (len(spec) > 32 or _BIG_NUMBER.search(spec)):
            raise ValueError(
                f"template field {{{name}:{spec}}}: format spec not allowed (width and "
                "precision are limited to 3 digits)"
            )
        parts.append((literal, name, spec or ""))
    return tuple(parts)


def template_fields(template: str) -> list[str]:
    """The field names used by ``template``, in order, without duplicates."""
    seen: dict[str, None] = {}
    for _, name, _ in parse_template(template):
        if name is not None:
            seen.setdefault(name, None)
    return list(seen)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values`` (KeyError names a missing field)."""
    out: list[str] = []
    for literal, name, spec in parse_template(template):
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            raise KeyError(name)
        out.append(format(values[name], spec))
    return "".join(out)

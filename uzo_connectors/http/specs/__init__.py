"""Declarative specs for public REST APIs: the catalog grows by adding a JSON file here.

Each ``<name>.json`` holds ``{"name", "title", "description", "docs_url", "config"}``
where ``config`` is an :class:`~uzo_connectors.http.config.HttpConfig`.
:func:`load_spec` validates it, merging the caller's overrides (credentials, a
different base URL...) into it::

    config = load_spec("github", {"auth": {"type": "bearer", "token": token}})
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import ValidationError

from uzo_connectors.errors import ConfigError
from uzo_connectors.http.config import HttpConfig


@dataclass(frozen=True)
class SpecInfo:
    name: str
    title: str
    description: str
    docs_url: str


def _files() -> dict[str, Any]:
    root = resources.files(__name__)
    return {
        entry.name.removesuffix(".json"): entry
        for entry in root.iterdir()
        if entry.name.endswith(".json")
    }


def list_specs() -> list[SpecInfo]:
    """Every shipped spec, by name."""
    return [spec_info(name) for name in sorted(_files())]


def _raw(name: str) -> dict[str, Any]:
    files = _files()
    if name not in files:
        raise ConfigError(f"no HTTP spec named {name!r} (available: {', '.join(sorted(files))})")
    data: dict[str, Any] = json.loads(files[name].read_text(encoding="utf-8"))
    return data


def spec_info(name: str) -> SpecInfo:
    raw = _raw(name)
    return SpecInfo(
        name=raw.get("name", name),
        title=raw.get("title", name),
        description=raw.get("description", ""),
        docs_url=raw.get("docs_url", ""),
    )


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts merge; any other value (lists included) replaces."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "auth":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def spec_config(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec's config as a plain dict (what a stored connector's config looks like)."""
    return _merge(_raw(name)["config"], overrides or {})


def load_spec(name: str, overrides: dict[str, Any] | None = None) -> HttpConfig:
    """The validated config of spec ``name``; ConfigError names the field at fault."""
    try:
        return HttpConfig.model_validate(spec_config(name, overrides))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"HTTP spec {name!r} is invalid: {problems}") from None

"""Rules every connector config obeys, checked over the whole registry (plugins included).

- every number, at any depth (nested auth, retry, pagination models...), has a maximum:
  a tenant cannot ask for a 1e308-second timeout or a billion-row page;
- a field that chooses where the connector connects is declared in ``endpoint_fields``
  (the API then asks for the secrets again when it changes);
- free-form mappings that reach a client are the reviewed ones only.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel

from uzo_connectors import registry
from uzo_connectors.errors import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic.fields import FieldInfo

# Field names that always choose an endpoint (or the local file) of a connector.
ENDPOINT_NAMES = frozenset(
    {"host", "port", "url", "uri", "base_url", "endpoint_url", "root", "path", "account_name"}
)
# ...except where the name means something else: a directory on the same login server
NOT_ENDPOINTS = {("sftp", "root"), ("ftp", "root")}
# dict-typed fields, by type: each is checked by its connector (allow-list or templates)
REVIEWED_MAPPINGS = {
    ("file", "storage_options"),  # allow-list per protocol
    ("http", "headers"),  # no credential or routing headers
    ("http", "resources.params"),  # template values, quoted into the path/query
    ("http", "resources.query"),  # no credential-looking names
    ("http", "resources.headers"),
    ("http", "resources.body"),  # a JSON body template
    ("http", "resources.columns"),  # declared schema
    ("http", "resources.write.headers"),
    ("openai", "headers"),
    ("openai", "deployments"),  # model -> deployment name, plain text
}


def _configs() -> list[tuple[str, type[BaseModel]]]:
    out = []
    for key in sorted(registry.available_types()):
        try:
            out.append((key, registry.get_connector_class(key).config_model))
        except MissingDependencyError:  # an extra that is not installed
            continue
    return out


CONFIGS = _configs()


def _leaves(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType) or (origin is not None and origin is not dict):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _walk(
    model: type[BaseModel], prefix: str = "", seen: frozenset[type] = frozenset()
) -> Iterator[tuple[str, FieldInfo]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        yield path, info
        for leaf in _leaves(info.annotation):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel) and leaf not in seen:
                yield from _walk(leaf, f"{path}.", seen | {model})


def _is_number(annotation: Any) -> bool:
    return any(leaf in (int, float) for leaf in _leaves(annotation)) and not any(
        leaf is bool for leaf in _leaves(annotation)
    )


def test_the_registry_is_checked() -> None:
    assert {"file", "s3", "postgres", "http", "openai", "mongodb"} <= {k for k, _ in CONFIGS}


@pytest.mark.parametrize(("type_key", "model"), CONFIGS, ids=[k for k, _ in CONFIGS])
def test_every_number_has_a_maximum(type_key: str, model: type[BaseModel]) -> None:
    unbounded = [
        path
        for path, info in _walk(model)
        if _is_number(info.annotation)
        and get_origin(info.annotation) not in (tuple, list)
        and not any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in info.metadata)
    ]
    assert unbounded == [], f"{type_key}: no maximum on {unbounded}"


@pytest.mark.parametrize(("type_key", "model"), CONFIGS, ids=[k for k, _ in CONFIGS])
def test_endpoint_fields_are_declared(type_key: str, model: type[BaseModel]) -> None:
    declared = getattr(model, "endpoint_fields", frozenset())
    assert declared <= set(model.model_fields), f"{type_key}: unknown {declared}"
    names = {
        n for n in set(model.model_fields) & ENDPOINT_NAMES if (type_key, n) not in NOT_ENDPOINTS
    }
    missing = sorted(names - declared)
    assert missing == [], f"{type_key}: {missing} choose an endpoint but are not declared"


@pytest.mark.parametrize(("type_key", "model"), CONFIGS, ids=[k for k, _ in CONFIGS])
def test_free_form_mappings_are_reviewed(type_key: str, model: type[BaseModel]) -> None:
    mappings = {
        (type_key, path)
        for path, info in _walk(model)
        if any(get_origin(leaf) is dict or leaf is dict for leaf in _leaves(info.annotation))
    }
    assert mappings <= REVIEWED_MAPPINGS, (
        f"unreviewed free-form fields: {mappings - REVIEWED_MAPPINGS}"
    )

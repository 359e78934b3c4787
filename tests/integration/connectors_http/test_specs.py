"""Shipped API specs validate against the config model; config validation catches mistakes.

No network: nothing here sends a request.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from uzo_connectors.errors import ConfigError
from uzo_connectors.http.config import HttpConfig
from uzo_connectors.http.jsonpath import extract, parse_path, records_at
from uzo_connectors.http.records import infer_schema, to_batch
from uzo_connectors.http.specs import list_specs, load_spec, spec_config
from uzo_connectors.http.templates import render, render_json
from uzo_connectors.http.transport import parse_retry_after, scrub_url

SPECS = [s.name for s in list_specs()]


def test_a_handful_of_specs_ship() -> None:
    assert len(SPECS) >= 5
    assert {"github", "jsonplaceholder", "open_meteo", "pokeapi", "stripe"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_validates(name: str) -> None:
    config = load_spec(name)
    assert config.resources, f"{name} declares no resource"
    assert config.base_url.startswith("https://")
    info = next(s for s in list_specs() if s.name == name)
    assert info.title
    assert info.docs_url.startswith("https://")
    pickle.loads(pickle.dumps(config))  # configs travel to Ray workers


def test_overrides_merge_into_a_spec() -> None:
    config = load_spec(
        "stripe", {"auth": {"type": "bearer", "token": "sk_test_123"}, "rate_limit": 2}
    )
    assert config.auth.type == "bearer"
    assert config.rate_limit == 2
    assert spec_config("github", {"headers": {"X-Extra": "1"}})["headers"]["Accept"]


def test_unknown_spec_and_invalid_override_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"available: .*github"):
        load_spec("nope")
    with pytest.raises(ConfigError, match="base_url"):
        load_spec("pokeapi", {"base_url": "ftp://example.com"})


def _config(**resource: Any) -> HttpConfig:
    return HttpConfig.model_validate(
        {"base_url": "https://api.example.com", "resources": [{"name": "r", **resource}]}
    )


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ({"path": "/a/{missing}"}, "missing"),
        ({"path": "https://evil.example/x"}, "relative"),
        ({"path": "/x", "records_path": "a..b"}, "invalid JSON path"),
        ({"path": "/x", "pagination": {"type": "cursor"}}, "exactly one"),
        ({"path": "/x", "columns": {"a": "no-such-type"}}, "unknown column type"),
        ({"path": "/x", "readable": False}, "write settings"),
        ({"path": "/x", "query": {"q": "{x.__class__}"}}, "not allowed"),
        ({"path": "/x", "surprise": 1}, "surprise"),
    ],
)
def test_config_mistakes_are_caught(resource: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _config(**resource)


def test_duplicate_resources_and_bad_base_url() -> None:
    with pytest.raises(ValidationError, match="duplicate"):
        HttpConfig.model_validate(
            {"base_url": "https://a.example", "resources": [{"name": "r", "path": "/"}] * 2}
        )
    with pytest.raises(ValidationError, match="query"):
        HttpConfig.model_validate({"base_url": "https://a.example/?key=secret"})


def test_json_path_extractor() -> None:
    doc = {"data": {"items": [{"id": 1}, {"id": 2}]}, "meta": {"next-cursor": "c"}}
    assert extract(doc, "$.data.items[*].id") == [1, 2]
    assert extract(doc, "data.items[-1].id") == [2]
    assert extract(doc, "meta['next-cursor']") == ["c"]
    assert extract(doc, "nothing.here") == []
    assert records_at(doc, "data.items") == [{"id": 1}, {"id": 2}]
    assert records_at([1, 2], "") == [{"value": 1}, {"value": 2}]
    assert records_at({"one": {"a": 1}}, "one") == [{"a": 1}]
    with pytest.raises(ValueError, match="invalid JSON path"):
        parse_path("a[(@.x)]")


def test_templates_render_values_only() -> None:
    assert render("/repos/{owner}", {"owner": "a/b"}, escape=lambda s: s.replace("/", "%2F")) == (
        "/repos/a%2Fb"
    )
    assert render_json({"n": "{n}", "s": "x{n}", "l": ["{n}"]}, {"n": 5}) == {
        "n": 5,
        "s": "x5",
        "l": [5],
    }


def test_records_to_arrow() -> None:
    records = [{"a": 1, "b": {"c": "x"}, "mixed": 1}, {"a": 2, "mixed": "two", "new": True}]
    schema = infer_schema(records)
    assert str(schema.field("b").type) == "struct<c: string>"
    assert str(schema.field("mixed").type) == "string"  # mixed types: JSON text
    batch = to_batch(records, schema)
    assert batch.column("mixed").to_pylist() == ["1", "two"]
    assert batch.column("new").to_pylist() == [None, True]


def test_scrub_and_retry_after() -> None:
    url = "https://u:p@api.example.com/x?api_key=SECRET&q=1&token=T0K"
    scrubbed = scrub_url(url)
    assert "SECRET" not in scrubbed
    assert "T0K" not in scrubbed
    assert "u:p" not in scrubbed
    assert "q=1" in scrubbed
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past

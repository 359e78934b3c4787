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
from uzo_connectors.http.jsonpath import check_path, extract, records_at
from uzo_connectors.http.records import infer_schema, to_batch
from uzo_connectors.http.specs import list_specs, load_spec, spec_config
from uzo_connectors.http.templates import TemplateProblem, render, render_json, template_fields
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
        ({"path": "/a/{{ missing }}"}, "'missing' has no default value"),
        ({"path": "//{{ host }}/x", "params": {"host": "evil.example"}}, "relative"),
        ({"path": "/x", "records_path": "a[(@.x)]"}, r"records_path\n.*invalid JSONPath"),
        ({"path": "/x", "records_path": "$.a | $.b"}, r"records_path\n.*invalid JSONPath"),
        (
            {"path": "/x", "pagination": {"type": "cursor", "cursor_path": "$.next["}},
            r"cursor_path\n.*invalid JSONPath",
        ),
        (
            {
                "path": "/x",
                "pagination": {
                    "type": "cursor",
                    "cursor_field": "id",
                    "has_more_path": "$.more[?match(@, 'y.*')]",
                },
            },
            r"has_more_path\n.*'match' is not defined",
        ),
        ({"path": "/x", "pagination": {"type": "cursor"}}, "exactly one"),
        ({"path": "/x", "columns": {"a": "no-such-type"}}, "unknown column type"),
        ({"path": "/x", "readable": False}, "write settings"),
        ({"path": "/x", "query": {"q": "{{ x.__class__ }}"}}, r"query\n.*'q'.*unsafe"),
        ({"path": "/x", "body": {"a": ["{{ x"]}}, r"body\n.*a\[0\]: invalid template"),
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
    assert extract(doc, "$.data.items[-1].id") == [2]
    assert extract(doc, "$.meta['next-cursor']") == ["c"]
    assert extract(doc, "$.nothing.here") == []
    assert records_at(doc, "$.data.items") == [{"id": 1}, {"id": 2}]
    assert records_at([1, 2], "$") == [{"value": 1}, {"value": 2}]
    assert records_at({"one": {"a": 1}}, "$.one") == [{"a": 1}]
    with pytest.raises(ValueError, match="invalid JSONPath"):
        check_path("a[(@.x)]")


# the dialect UZO read before RFC 9535, as saved configs spell it -> what it reads
OLD_PATHS = [
    ("", None),
    ("$", None),
    ("data.items", [{"id": 1}, {"id": 2}, {"id": 3, "tags": ["x"]}]),
    ("$.data.items", [{"id": 1}, {"id": 2}, {"id": 3, "tags": ["x"]}]),
    ("$data.items[0]", {"id": 1}),
    ("data.items[-1].id", 3),
    ("data.items[*].id", [1, 2, 3]),
    ("[*]", None),
    ("meta['next-cursor']", "c"),
    ('meta["next-cursor"]', "c"),
    ("meta.next-cursor", "c"),
    ("meta.@id", "m1"),
    ("$.meta.$ref", "#/x"),
    ("results[*]", None),
    ("nothing.here", None),
]


@pytest.mark.parametrize(("path", "expected"), OLD_PATHS)
def test_paths_of_the_old_dialect_read_the_same_values(path: str, expected: Any) -> None:
    doc = {
        "data": {"items": [{"id": 1}, {"id": 2}, {"id": 3, "tags": ["x"]}]},
        "meta": {"next-cursor": "c", "@id": "m1", "$ref": "#/x"},
    }
    found = extract(doc, path)
    if path in {"", "$"}:
        assert found == [doc]
    elif path == "[*]":
        assert found == list(doc.values())
    elif expected is None:
        assert found == []
    elif path.endswith("[*].id"):
        assert found == expected
    else:
        assert found == [expected]
    _config(path="/x", records_path=path)  # and every one of them validates


def test_records_at_keeps_the_old_list_rules() -> None:
    doc = {"data": [{"id": 1}, {"id": 2}], "one": {"id": 9}, "nested": [[1, 2]], "n": None}
    assert records_at(doc, "data") == [{"id": 1}, {"id": 2}]  # a list: its items
    assert records_at(doc, "data[*]") == [{"id": 1}, {"id": 2}]
    assert records_at(doc, "one") == [{"id": 9}]  # an object: one record
    assert records_at(doc, "nested[*]") == [{"value": [1, 2]}]  # a wildcard: each value
    assert records_at(doc, "n") == []
    assert records_at(doc, "nothing") == []


def test_standard_jsonpath_beyond_the_old_dialect() -> None:
    books: list[dict[str, Any]] = [
        {"id": 1, "price": 8.95, "tags": ["a"]},
        {"id": 2, "price": 22.99, "tags": ["a", "b"]},
        {"id": 3, "price": 12.0, "tags": []},
    ]
    doc = {"store": {"books": books, "owner": {"id": 99}}}
    assert records_at(doc, "$.store.books[?@.price < 13]") == [books[0], books[2]]
    assert extract(doc, "$.store.books[?length(@.tags) > 1].id") == [2]
    assert extract(doc, "$..id") == [1, 2, 3, 99]
    assert extract(doc, "$.store.books[0:2].id") == [1, 2]
    assert extract(doc, "$.store.books[-1:].id") == [3]
    assert records_at(doc, "$.store.books[1:]") == books[1:]


def test_templates_render_values_only() -> None:
    assert render("/repos/{{ owner }}", {"owner": "a/b"}, url_path=True) == "/repos/a%2Fb"
    assert render("/repos/{owner}", {"owner": "a/b"}, url_path=True) == "/repos/a%2Fb"  # old
    assert render("{{ state | upper }}-{{ n + 1 }}", {"state": "open", "n": 1}) == "OPEN-2"
    assert render("{% if all %}all{% else %}open{% endif %}", {"all": False}) == "open"
    assert render_json(
        {"n": "{{ n }}", "s": "x{{ n }}", "l": ["{{ n }}"], "old": "{n}", "t": "{{ n > 1 }}"},
        {"n": 5},
    ) == {"n": 5, "s": "x5", "l": [5], "old": 5, "t": True}
    assert render_json({"text": '{"a": 1}'}, {}) == {"text": '{"a": 1}'}  # braces as text
    assert template_fields("/{{ a }}/{% if b %}{{ c | lower }}{% endif %}") == ["a", "b", "c"]
    with pytest.raises(TemplateProblem, match="'x' is undefined"):
        render("/{{ x }}", {})  # StrictUndefined: never an empty string
    with pytest.raises(TemplateProblem, match="undefined"):
        render_json({"n": "{{ x }}"}, {})


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

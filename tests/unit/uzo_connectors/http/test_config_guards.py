"""What a hostile tenant can put in an ``http`` or ``openai`` config, refused at validation.

Each refusal is a pydantic error on the field (the API's 422 names it), raised as
``ConfigError`` by ``registry.validate_config`` without echoing the value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from uzo_connectors.errors import ConfigError
from uzo_connectors.genai.config import OpenAIConfig
from uzo_connectors.genai.connector import OpenAIConnector
from uzo_connectors.genai.prompts import parse_template
from uzo_connectors.http.config import HttpConfig
from uzo_connectors.http.connector import HttpConnector
from uzo_connectors.http.templates import TemplateProblem, render
from uzo_connectors.registry import validate_config

BASE = "https://api.example.com"
SECRET = "s3cr3t-value-123"


def _http(**config: Any) -> dict[str, Any]:
    return {"base_url": BASE, **config}


def _resource(**resource: Any) -> dict[str, Any]:
    return _http(resources=[{"name": "r", "path": "/x", **resource}])


def _refused(cls: Any, config: dict[str, Any], field: str, words: str) -> str:
    """The ConfigError message for ``config``; it names ``field`` and ``words``, not SECRET."""
    with pytest.raises(ConfigError) as info:
        validate_config(cls, config)
    message = str(info.value)
    assert field in message, message
    assert words in message, message
    assert SECRET not in message
    return message


# --- credentials in headers --------------------------------------------------------------

CREDENTIAL_HEADERS = [
    "Authorization", "proxy-authorization", "Cookie", "X-API-Key", "api-key", "X-Auth-Token",
    "X-Session-Id", "X-Amz-Signature", "Client-Secret", "X-Password", "PRIVATE-TOKEN",
]  # fmt: skip


@pytest.mark.parametrize("name", CREDENTIAL_HEADERS)
def test_credential_headers_are_refused_in_every_headers_field(name: str) -> None:
    headers = {name: SECRET}
    use_auth = "use auth (type bearer"
    _refused(HttpConnector, _http(headers=headers), "headers", use_auth)
    _refused(HttpConnector, _resource(headers=headers), "resources.0.headers", use_auth)
    write = {"write": {"headers": headers}}
    _refused(HttpConnector, _resource(**write), "resources.0.write.headers", use_auth)
    _refused(OpenAIConnector, {"headers": headers}, "headers", "use api_key")


@pytest.mark.parametrize(
    "name",
    ["Host", "content-length", "Transfer-Encoding", "Connection", "Forwarded",
     "X-Forwarded-For", "X-Forwarded-Host", "Proxy-Connection", "Upgrade", "TE"],
)  # fmt: skip
def test_routing_and_hop_by_hop_headers_are_refused(name: str) -> None:
    _refused(HttpConnector, _http(headers={name: "x"}), "headers", "routed or framed")
    _refused(OpenAIConnector, {"headers": {name: "x"}}, "headers", "routed or framed")
    auth = {"type": "api_key", "name": name, "value": SECRET}
    _refused(HttpConnector, _http(auth=auth), "auth.api_key", "routed or framed")


def test_header_syntax_and_line_breaks_are_refused() -> None:
    _refused(HttpConnector, _http(headers={"X-A": "1\r\nHost: evil"}), "headers", "control")
    _refused(HttpConnector, _http(headers={"X A": "1"}), "headers", "not a valid header name")
    bad_token = {"type": "bearer", "token": SECRET + "\r\nX-Evil: 1"}
    _refused(HttpConnector, _http(auth=bad_token), "auth.bearer.token", "control")


def test_ordinary_headers_and_typed_auth_still_work() -> None:
    config = HttpConfig.model_validate(
        _http(
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022"},
            auth={"type": "api_key", "name": "Authorization", "prefix": "Token ", "value": SECRET},
            resources=[{"name": "r", "path": "/x", "write": {"headers": {"Content-Type": "a/b"}}}],
        )
    )
    assert config.headers["Accept"] == "application/vnd.github+json"
    openai = OpenAIConfig.model_validate({"api_key": SECRET, "headers": {"User-Agent": "uzo"}})
    assert openai.headers == {"User-Agent": "uzo"}


# --- credentials in query strings --------------------------------------------------------


@pytest.mark.parametrize("name", ["api_key", "access_token", "key", "API-KEY", "client_secret"])
def test_credential_query_parameters_are_refused(name: str) -> None:
    location = "auth with type api_key and location: query"
    _refused(HttpConnector, _resource(query={name: SECRET}), "resources.0.query", location)
    _refused(HttpConnector, _resource(path=f"/x?{name}={SECRET}"), "resources.0.path", location)
    write = {"write": {"path": f"/w?{name}={SECRET}"}}
    _refused(HttpConnector, _resource(**write), "resources.0.write.path", location)


def test_credential_template_values_are_refused_but_ordinary_names_are_not() -> None:
    config = _resource(path="/x/{token}", params={"token": SECRET})
    _refused(HttpConnector, config, "resources.0.params", "auth with type api_key")
    ok = HttpConfig.model_validate(_resource(path="/objects/{key}", params={"key": "a/b"}))
    assert ok.resources[0].params == {"key": "a/b"}  # an object key, not an API key


# --- URLs that could reach another host or carry credentials --------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://user:pw@api.example.com", "user name or password"),
        ("https://api.example.com@evil.example", "user name or password"),
        ("https://api.example.com\\@evil.example", "backslashes"),
        ("https://api.example.com /x", "spaces"),
        ("https://api.example.com/?key=x", "query"),
        ("https://api.example.com/#frag", "fragment"),
        ("ftp://api.example.com", "absolute http(s) URL"),
    ],
)
def test_base_urls_must_be_plain(url: str, words: str) -> None:
    _refused(HttpConnector, {"base_url": url}, "base_url", words)
    _refused(OpenAIConnector, {"base_url": url}, "base_url", words)


def test_token_url_is_a_plain_url() -> None:
    auth = {
        "type": "oauth2_client_credentials",
        "client_id": "c",
        "client_secret": SECRET,
        "token_url": "https://u:p@login.example.com/token",
    }
    _refused(HttpConnector, _http(auth=auth), "token_url", "user name or password")
    with_query = {**auth, "token_url": "https://login.example.com/token?tenant=t1"}
    config = HttpConfig.model_validate(_http(auth=with_query))
    assert config.auth.type == "oauth2_client_credentials"


@pytest.mark.parametrize(
    "path", ["//evil.example/x", "HTTPS://evil.example/x", "\\\\evil.example", "/x#y", "/a b"]
)
def test_paths_cannot_name_another_host(path: str) -> None:
    with pytest.raises(ValidationError, match=r"resources\.0\.path"):
        HttpConfig.model_validate(_resource(path=path))
    with pytest.raises(ValidationError, match=r"resources\.0\.write\.path"):
        HttpConfig.model_validate(_resource(write={"path": path}))


# --- bounds ------------------------------------------------------------------------------

HTTP_BOUNDS = [
    ({"timeout": 1e308}, "timeout"),
    ({"timeout": 301}, "timeout"),
    ({"rate_limit": 1e308}, "rate_limit"),
    ({"sample_size": 100_001}, "sample_size"),
    ({"retries": {"backoff_base": 1e308}}, "retries.backoff_base"),
    ({"retries": {"backoff_max": 1e308}}, "retries.backoff_max"),
    ({"retries": {"max_retry_after": 1e308}}, "retries.max_retry_after"),
    ({"retries": {"max_attempts": 21}}, "retries.max_attempts"),
    ({"retries": {"retry_statuses": [200]}}, "retries.retry_statuses"),
    ({"resources": [{"name": "r", "path": "/", "max_pages": 10**9}]}, "max_pages"),
    ({"resources": [{"name": "r", "path": "/", "write": {"batch_size": 10_001}}]}, "batch_size"),
    (
        {
            "auth": {
                "type": "oauth2_client_credentials", "token_url": "https://a.example/t",
                "client_id": "c", "client_secret": "s", "expiry_margin_seconds": 1e308,
            }
        },
        "expiry_margin_seconds",
    ),
] + [
    ({"resources": [{"name": "r", "path": "/", "pagination": pagination}]}, field)
    for pagination, field in [
        ({"type": "page", "page_size": 10_001}, "page_size"),
        ({"type": "page", "start_page": 10**12}, "start_page"),
        ({"type": "offset", "page_size": 10_001}, "page_size"),
        ({"type": "offset", "start_offset": 10**12}, "start_offset"),
        ({"type": "cursor", "cursor_path": "next", "page_size": 10_001}, "page_size"),
        ({"type": "link", "page_size": 10_001}, "page_size"),
    ]
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "field"), HTTP_BOUNDS)
def test_http_numbers_have_maximums(overrides: dict[str, Any], field: str) -> None:
    raw = json.dumps(_http(**overrides))  # as the API receives it: 1e308 is a JSON number
    with pytest.raises(ValidationError) as info:
        HttpConfig.model_validate_json(raw)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "field", ["timeout", "backoff_base", "backoff_max", "max_retry_after", "rate_limit"]
)
def test_openai_numbers_have_maximums(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        OpenAIConfig.model_validate_json(json.dumps({field: 1e308}))
    with pytest.raises(ValidationError, match="max_attempts"):
        OpenAIConfig.model_validate({"max_attempts": 21})


def test_prompt_format_specs_cannot_allocate_gigabytes() -> None:
    with pytest.raises(ValueError, match="3 digits"):
        parse_template("{x:>999999999}")
    assert parse_template("{x:>10}|{y:.2f}")  # ordinary specs still work


def test_old_style_format_specs_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"resources\.0\.query(.|\n)*format specs"):
        HttpConfig.model_validate(_resource(query={"q": "{x:.99999}"}, params={"x": 1}))
    with pytest.raises(ValidationError, match=r"resources\.0\.path(.|\n)*format specs"):
        HttpConfig.model_validate(_resource(path="/x/{x:>999999999}", params={"x": 1}))


@pytest.mark.parametrize(
    ("field", "template", "words"),
    [
        ("path", "/x/{{ range(10**9) }}", "a call"),
        ("path", "/x/{{ x.__class__.__mro__ }}", "unsafe"),
        ("path", "/x/{% for i in x %}{{ i }}{% endfor %}", "{% for %}"),
        ("path", "/x/{% set y = x %}{{ y }}", "{% set %}"),
        ("path", "/x/{% include 'secrets.txt' %}", "{% include %}"),
        ("path", "/x/{{ x | center(999999999) }}", "filter 'center'"),
        ("path", "/x/{{ 9 ** 9 ** 9 }}", "'**'"),
        ("path", "/x/{{ x", "invalid template"),
        ("path", "/x/{{ " + " ~ ".join(["x"] * 65) + " }}", "at most 64 times"),
        ("path", "/x/{{ " + "(" * 3000 + "x" + ")" * 3000 + " }}", "nested too deeply"),
        ("query", "{{ x.upper() }}", "a call"),
        ("body", "{{ lipsum() }}", "a call"),
        ("write.path", "/w/{{ cycler(x) }}", "a call"),
    ],
)
def test_jinja_templates_are_sandboxed_and_bounded(field: str, template: str, words: str) -> None:
    resource: dict[str, Any] = {"params": {"x": "ab"}}
    if field == "path":
        resource["path"] = template
    elif field == "query":
        resource["query"] = {"q": template}
    elif field == "body":
        resource["body"] = {"filter": {"name": template}}
    else:
        resource["write"] = {"path": template}
    with pytest.raises(ValidationError) as info:
        HttpConfig.model_validate(_resource(**resource))
    message = str(info.value)
    assert f"resources.0.{field}" in message
    assert words in message
    if field == "body":
        assert "filter.name" in message  # the leaf of the JSON body


@pytest.mark.parametrize(
    "template",
    [
        "{{ x * 999999999 }}",
        "{{ [x] * 100000 }}",  # (a list's text would repeat x as often)
        "{{ '%0999999999d' % 1 }}",
        "{{ x" + " | replace('', 'aaaaaaaaaaaaaaaa')" * 5 + " }}",  # x 17 each time
    ],
)
def test_jinja_templates_cannot_allocate_gigabytes(template: str) -> None:
    config = HttpConfig.model_validate(_resource(query={"q": template}, params={"x": "ab"}))
    with pytest.raises(TemplateProblem):
        render(config.resources[0].query["q"], {"x": "ab"})  # type: ignore[arg-type]


def test_missing_template_values_are_refused_at_validation() -> None:
    with pytest.raises(ValidationError, match="'owner' has no default value in params"):
        HttpConfig.model_validate(_resource(path="/repos/{{ owner }}/{{ repo }}"))
    with pytest.raises(ValidationError, match="'n' has no default value in params"):
        HttpConfig.model_validate(_resource(body={"limit": "{{ n }}"}))


def test_endpoint_fields_name_where_credentials_go() -> None:
    assert HttpConfig.endpoint_fields == {"base_url"}
    assert OpenAIConfig.endpoint_fields == {"base_url"}

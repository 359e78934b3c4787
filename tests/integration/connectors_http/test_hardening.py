"""A hostile tenant's tricks against the ``http`` and ``openai`` connectors, on loopback.

The rogue servers are :class:`Recorder` instances on 127.0.0.1: a redirect target
that must never see a credential, a "victim" an internal redirect points at, a token
endpoint that redirects. Policies resolve their own ``.test`` names (nothing goes to
the system resolver) and allow loopback only where a test says so, so that
127.0.0.1 can stand for "an internal address".
"""

from __future__ import annotations

import base64
import ipaddress
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors_http.helpers import connector, read_all
from tests.integration.connectors_http.recorder import Recorder, json_reply
from tests.integration.connectors_http.server import CLIENT_ID, CLIENT_SECRET
from uzo_connectors.base import ConnectorContext, ReadRequest
from uzo_connectors.errors import BlockedEndpointError, ConfigError, ConnectionTestError
from uzo_connectors.genai.client import OpenAIClient
from uzo_connectors.genai.config import OpenAIConfig
from uzo_connectors.genai.connector import OpenAIConnector
from uzo_connectors.http.config import HttpConfig, Resource
from uzo_connectors.http.connector import HttpConnector
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from tests.integration.connectors_http.conftest import LocalServer
    from tests.integration.connectors_http.recorder import Recorded, Reply

pytestmark = pytest.mark.integration

SECRET = "sk-tenant-secret-0123456789"
LOOPBACK = EndpointPolicy(allow_loopback=True)
MODELS = {"object": "list", "data": [{"id": "m1"}]}


def _named(*names: str) -> EndpointPolicy:
    """A policy knowing only ``names`` (all 127.0.0.1); loopback itself stays refused."""

    def resolve(host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]  # an address literal is itself
        except ValueError:
            pass
        if host not in names:
            raise BlockedEndpointError(f"cannot resolve host {host!r}")
        return ["127.0.0.1"]

    return EndpointPolicy(allowed=names, resolver=resolve)


def _redirect(location: str, status: int = 302) -> Any:
    def reply(_: Recorded) -> Reply:
        return status, {"Location": location}, b""

    return reply


# --- credentials never follow a redirect to another origin --------------------------------


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_the_api_key_does_not_follow_a_redirect_to_another_origin(provider: str) -> None:
    with (
        Recorder(handler=lambda _: json_reply(MODELS)) as other,
        Recorder(handler=_redirect(f"{other.url}/v1/models")) as endpoint,
    ):
        config = OpenAIConfig.model_validate(
            {
                "base_url": f"{endpoint.url}/v1",
                "api_key": SECRET,
                "provider": provider,
                "api_version": "2024-06-01" if provider == "azure" else None,
            }
        )
        with OpenAIClient(config, LOOPBACK) as client:
            assert client.list_models() == ["m1"]
    sent = endpoint.requests[0].headers
    assert SECRET in (sent.get("authorization", "") + sent.get("api-key", ""))
    leaked = other.requests[0].headers
    assert "authorization" not in leaked  # the old client sent its default headers along
    assert "api-key" not in leaked


@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_the_token_request_is_not_replayed_to_a_redirect(
    client_auth: str, loopback: ConnectorContext
) -> None:
    """A 307 from the token endpoint would resend the client secret (form or header)."""
    with Recorder() as other, Recorder(handler=_redirect(f"{other.url}/token", 307)) as tokens:
        auth = {
            "type": "oauth2_client_credentials",
            "token_url": f"{tokens.url}/token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "client_auth": client_auth,
        }
        conn = connector(loopback, tokens.url, auth=auth, resources=[{"name": "r", "path": "/"}])
        with pytest.raises(ConnectionTestError, match="redirect"):
            conn.test_connection()
        conn.close()
    assert len(tokens.requests) == 1
    assert other.requests == []  # the old client followed the 307 with the secret


# --- the token URL is checked and pinned like every URL --------------------------------------


def _oauth(token_url: str) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


def test_the_token_url_is_resolved_through_the_policy(http_server: LocalServer) -> None:
    """``tokens.test`` and ``api.test`` exist only in the policy: both requests are pinned."""
    port = http_server.url.rsplit(":", 1)[1]
    context = ConnectorContext(endpoint_policy=_named("api.test", "tokens.test"))
    conn = connector(
        context,
        f"http://api.test:{port}",
        auth=_oauth(f"http://tokens.test:{port}/oauth/token"),
        resources=[{"name": "r", "path": "/auth/oauth"}],
    )
    conn.test_connection()
    assert read_all(conn, "r").num_rows == 3
    conn.close()


# 127.0.0.1 is allowed by CIDR, ::1 (the "internal" victim) stays refused: no name to resolve
V4_ONLY = EndpointPolicy(allowed=("127.0.0.1/32",))


def test_an_internal_token_url_is_refused_not_a_failed_test() -> None:
    with Recorder(host="::1") as victim, Recorder() as api:
        conn = connector(
            ConnectorContext(endpoint_policy=V4_ONLY),
            api.url,
            auth=_oauth(f"{victim.url}/token"),
            resources=[{"name": "r", "path": "/x"}],
        )
        with pytest.raises(BlockedEndpointError, match="loopback"):
            conn.test_connection()  # the old connector said ConnectionTestError
        conn.close()
    assert victim.requests == []
    assert api.requests == []  # no token, so no API request either


# --- UZO's refusals are not remote failures ----------------------------------------------------


def test_http_redirect_to_an_internal_address_is_a_refusal() -> None:
    with (
        Recorder(host="::1") as victim,
        Recorder(handler=_redirect(f"{victim.url}/admin")) as api,
    ):
        context = ConnectorContext(endpoint_policy=V4_ONLY)
        conn = connector(context, api.url, resources=[{"name": "r", "path": "/x"}])
        with pytest.raises(BlockedEndpointError, match="loopback"):
            conn.test_connection()  # the old connector said ConnectionTestError
        bare = connector(context, api.url)  # no resource: GET base_url
        with pytest.raises(BlockedEndpointError, match="loopback"):
            bare.test_connection()
        conn.close()
        bare.close()
    assert len(api.requests) == 2
    assert victim.requests == []


def test_openai_redirect_to_an_internal_address_is_a_refusal() -> None:
    with (
        Recorder(host="::1") as victim,
        Recorder(handler=_redirect(f"{victim.url}/latest/meta-data/")) as endpoint,
    ):
        config = OpenAIConfig.model_validate({"base_url": f"{endpoint.url}/v1", "api_key": SECRET})
        conn = OpenAIConnector(config, ConnectorContext(endpoint_policy=V4_ONLY))
        with pytest.raises(BlockedEndpointError, match="loopback"):
            conn.test_connection()  # the old connector said ConnectionTestError
        with pytest.raises(BlockedEndpointError, match="loopback"):
            conn.discover()
        conn.close()
    assert victim.requests == []


def test_a_config_error_is_not_a_failed_test(loopback: ConnectorContext) -> None:
    """A template value missing at run time is UZO's refusal too (validation normally
    catches it; ``model_construct`` plays a config saved before that check existed)."""
    resource = Resource.model_construct(name="r", path="/x/{missing}", params={})
    config = HttpConfig.model_construct(base_url="http://127.0.0.1:9", resources=(resource,))
    conn = HttpConnector(config, loopback)
    with pytest.raises(ConfigError, match="missing"):
        conn.test_connection()  # no request is sent: the URL cannot be built


def test_a_remote_failure_is_still_a_failed_test() -> None:
    with Recorder(handler=lambda _: json_reply({"error": "down"}, status=500)) as api:
        config = {"retries": {"max_attempts": 1}}
        conn = connector(ConnectorContext(endpoint_policy=LOOPBACK), api.url, **config)
        with pytest.raises(ConnectionTestError, match="HTTP 500"):
            conn.test_connection()
        conn.close()


# --- paths and template values cannot leave base_url's host ------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("/@evil.test/x", None, "/@evil.test/x"),
        ("@evil.test/", None, "/@evil.test/"),
        ("/{p}", "//evil.test/x", "/%2F%2Fevil.test%2Fx"),
        ("/{p}", "@evil.test", "/%40evil.test"),
        ("{p}", "http://evil.test/", "/http%3A%2F%2Fevil.test%2F"),
        ("/a/{p}", "../../x", "/a/..%2F..%2Fx"),
        # the same in Jinja syntax; every value a template writes is quoted, and the
        # rendered URL is checked again
        ("/{{ p }}", "//evil.test/x", "/%2F%2Fevil.test%2Fx"),
        ("{{ p }}", "http://evil.test/", "/http%3A%2F%2Fevil.test%2F"),
        ("/{{ p ~ '/..' }}", "@evil.test", "/%40evil.test%2F.."),
        ("/{{ p | lower }}", "@EVIL.test:80", "/%40evil.test%3A80"),
        ("/{% if p == 'x' %}a{% else %}{{ p }}{% endif %}/c", "@evil.test", "/%40evil.test/c"),
    ],
)
def test_paths_and_values_stay_on_the_base_url(path: str, value: str | None, expected: str) -> None:
    """Only ``good.test`` resolves: a request that left it would fail, not reach evil.test."""
    with Recorder() as api:
        context = ConnectorContext(endpoint_policy=_named("good.test"))
        resource = {"name": "r", "path": path, "params": {"p": "x"}, "columns": {"id": "int64"}}
        conn = connector(context, f"http://good.test:{api.port}", resources=[resource])
        options = {"params": {"p": value}} if value is not None else {}
        plan = conn.plan_read(ReadRequest(dataset="r", options=options))
        assert sum(b.num_rows for task in plan.tasks for b in task.read()) == 1
        conn.close()
    assert [r.target for r in api.requests] == [expected]
    assert api.requests[0].headers["host"] == f"good.test:{api.port}"


def test_basic_auth_header_reaches_only_the_base_url(loopback: ConnectorContext) -> None:
    """A Link header to another origin is followed (checked), without the credentials."""
    with Recorder(handler=lambda _: json_reply([{"id": 2}])) as other:

        def first_page(_: Recorded) -> Reply:
            return json_reply([{"id": 1}], headers={"Link": f'<{other.url}/p2>; rel="next"'})

        with Recorder(handler=first_page) as api:
            auth = {"type": "basic", "username": "u", "password": SECRET}
            resource = {"name": "r", "path": "/p1", "pagination": {"type": "link"}, "max_pages": 2}
            conn = connector(loopback, api.url, auth=auth, resources=[resource])
            assert read_all(conn, "r", columns=("id",)).column("id").to_pylist() == [1, 2]
            conn.close()
    expected = "Basic " + base64.b64encode(f"u:{SECRET}".encode()).decode()
    assert {r.headers.get("authorization") for r in api.requests} == {expected}
    assert all("authorization" not in r.headers for r in other.requests)

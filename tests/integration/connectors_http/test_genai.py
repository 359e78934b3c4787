"""The OpenAI-compatible client, the prompt mapper and the ``openai`` connector, on the stub."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import stamina

from tests.integration.connectors_http.server import AZURE_KEY, OPENAI_KEY
from uzo_connectors.base import ConnectorContext, ReadRequest
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectionTestError,
    ConnectorError,
)
from uzo_connectors.genai.cache import ResponseCache
from uzo_connectors.genai.client import ModelError, OpenAIClient, Usage
from uzo_connectors.genai.config import OpenAIConfig
from uzo_connectors.genai.connector import OpenAIConnector
from uzo_connectors.genai.mapper import map_prompts
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.integration.connectors_http.conftest import LocalServer
    from tests.integration.connectors_http.server import ServerState

pytestmark = pytest.mark.integration

LOOPBACK = EndpointPolicy(allow_loopback=True)


def _config(url: str, **extra: Any) -> OpenAIConfig:
    return OpenAIConfig.model_validate(
        {"base_url": f"{url}/v1", "api_key": OPENAI_KEY, "default_model": "stub-chat", **extra}
    )


@pytest.fixture
def client(http_server: LocalServer, state: ServerState) -> Iterator[OpenAIClient]:
    with OpenAIClient(_config(http_server.url, backoff_base=0.01), LOOPBACK) as c:
        yield c


def test_chat_and_usage(client: OpenAIClient) -> None:
    response = client.complete("hello there world")
    assert response.text == "HELLO THERE WORLD"
    assert response.usage == Usage(prompt_tokens=3, completion_tokens=3, total_tokens=6)
    assert response.finish_reason == "stop"
    client.chat([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    assert client.usage.total == Usage(6, 4, 10)  # (3 + 3) in, (3 + 1) out
    assert client.usage.calls == 2


def test_embeddings(client: OpenAIClient) -> None:
    response = client.embed(["a b", "ccc"], model="stub-embed")
    assert response.vectors == [[3.0, 2.0], [3.0, 1.0]]
    assert response.usage.prompt_tokens == 3


def test_chat_retries_429_honouring_retry_after(client: OpenAIClient, state: ServerState) -> None:
    state.chat_failures = 1  # the stub says 429, Retry-After: 0.2
    started = time.monotonic()
    assert client.complete("again").text == "AGAIN"
    assert time.monotonic() - started >= 0.2
    assert state.calls["chat"] == 2


def test_wrong_key_is_an_error_without_the_key(http_server: LocalServer) -> None:
    secret = "sk-wrong-0123456789"
    config = _config(http_server.url, api_key=secret)
    conn = OpenAIConnector(config, ConnectorContext(endpoint_policy=LOOPBACK))
    with pytest.raises(ConnectionTestError, match="refused the API key") as info:
        conn.test_connection()
    assert secret not in str(info.value)
    with pytest.raises(ModelError) as model_error:
        conn.client().complete("x")
    assert model_error.value.status == 401
    assert secret not in str(model_error.value)


def test_connector_discovers_models(http_server: LocalServer) -> None:
    conn = OpenAIConnector(_config(http_server.url), ConnectorContext(endpoint_policy=LOOPBACK))
    conn.test_connection()
    assert [d.name for d in conn.discover()] == ["stub-chat", "stub-embed"]
    with pytest.raises(ConnectorError, match="not a table source"):
        conn.plan_read(ReadRequest(dataset="x"))
    conn.close()


def test_base_url_is_ssrf_checked() -> None:
    config = OpenAIConfig(base_url="http://169.254.169.254/v1")
    with pytest.raises(BlockedEndpointError, match="link-local"):
        OpenAIClient(config, EndpointPolicy())
    conn = OpenAIConnector(config, ConnectorContext(endpoint_policy=EndpointPolicy()))
    with pytest.raises(BlockedEndpointError, match=r"169\.254\.169\.254"):
        conn.test_connection()  # UZO's refusal, not a failed connection (the API: 422)


def test_azure_url_building_and_call(http_server: LocalServer, state: ServerState) -> None:
    config = OpenAIConfig(
        base_url=http_server.url,
        provider="azure",
        api_key=AZURE_KEY,
        api_version="2024-06-01",
        deployments={"gpt-4o": "prod-gpt4o"},
    )
    with OpenAIClient(config, LOOPBACK) as azure:
        assert azure.url("chat/completions", "gpt-4o") == (
            f"{http_server.url}/openai/deployments/prod-gpt4o/chat/completions"
            "?api-version=2024-06-01"
        )
        assert azure.url("embeddings", "text-embed").endswith(
            "/openai/deployments/text-embed/embeddings?api-version=2024-06-01"
        )
        assert azure.complete("hi azure", model="gpt-4o").text == "HI AZURE"
    assert state.calls["azure:prod-gpt4o"] == 1
    with pytest.raises(ValueError, match="api_version"):
        OpenAIConfig(base_url="https://x.openai.azure.com", provider="azure")


def test_mapper_preserves_order_counts_tokens_and_caches(
    client: OpenAIClient, state: ServerState, tmp_path: Path
) -> None:
    rows = [{"name": f"row {i}", "n": i} for i in range(50)]
    cache = ResponseCache(directory=tmp_path / "cache")
    first = map_prompts(
        client, "say {name} ({n})", rows, model="stub-chat", batch_size=16,
        max_concurrency=4, cache=cache,
    )  # fmt: skip
    assert first.texts == [f"SAY ROW {i} ({i})" for i in range(50)]
    assert state.calls["chat"] == 50
    assert first.calls == 50
    assert first.cache_hits == 0
    assert first.usage == Usage(200, 200, 400)  # 4 words in, 4 words out, per row
    assert first.usage == sum((r.usage for r in first.results), Usage())

    again = map_prompts(client, "say {name} ({n})", rows, model="stub-chat", cache=cache)
    assert again.texts == first.texts
    assert state.calls["chat"] == 50  # every answer came from the cache
    assert again.cache_hits == 50
    assert again.usage == Usage()

    on_disk = ResponseCache(directory=tmp_path / "cache")  # a new process, say
    third = map_prompts(client, "say {name} ({n})", rows[:5], model="stub-chat", cache=on_disk)
    assert third.cache_hits == 5
    assert state.calls["chat"] == 50
    on_disk.close()
    cache.close()


def test_mapper_limits_concurrency_and_dedupes(client: OpenAIClient, state: ServerState) -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    class Counting:
        def chat(self, messages: Any, *, model: str | None = None, **params: Any) -> Any:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                time.sleep(0.01)
                return client.chat(messages, model=model, **params)
            finally:
                with lock:
                    in_flight -= 1

    rows = [{"x": i % 10} for i in range(40)]  # 10 distinct prompts
    result = map_prompts(
        Counting(), "{x}", rows, model="stub-chat", batch_size=40, max_concurrency=3
    )
    assert peak <= 3
    assert state.calls["chat"] == 10
    assert result.texts == [str(i % 10) for i in range(40)]


def test_mapper_error_modes_and_no_retries_of_its_own(
    client: OpenAIClient, state: ServerState
) -> None:
    state.chat_failures = 1  # the client's transport retries the 429
    result = map_prompts(client, "{x}", [{"x": "a"}, {"x": "b"}], model="stub-chat")
    assert result.texts == ["A", "B"]
    assert result.errors == 0

    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def chat(self, messages: Any, *, model: str | None = None, **params: Any) -> Any:
            self.calls += 1
            raise ModelError("overloaded", 503)

    failing = Failing()
    nulls = map_prompts(failing, "{x}", [{"x": 1}], model="m", on_error="null")
    assert nulls.texts == [None]
    assert nulls.errors == 1
    assert failing.calls == 1  # retrying is the client's job, not the mapper's
    with pytest.raises(ModelError, match="overloaded"):
        map_prompts(failing, "{x}", [{"x": 1}], model="m")


def test_attempts_do_not_multiply_across_layers(
    http_server: LocalServer, state: ServerState
) -> None:
    """The transport is the one layer that retries: max_attempts calls per prompt, in all."""
    state.chat_failures = 100  # 429 on every call
    config = _config(http_server.url, max_attempts=3)
    with OpenAIClient(config, LOOPBACK) as c, stamina.set_testing(True, attempts=10, cap=True):
        result = map_prompts(c, "{x}", [{"x": "a"}], model="stub-chat", on_error="null")
    assert result.texts == [None]
    assert "HTTP 429" in (result.results[0].error or "")
    assert state.calls["chat"] == 3  # not 3 per mapper retry


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_model_calls_are_retried_on_transient_statuses(
    http_server: LocalServer, state: ServerState, status: int
) -> None:
    """A model call changes nothing on the server, so its POST is retried like a GET."""
    state.chat_failures, state.chat_failure_status = 2, status
    with (
        OpenAIClient(_config(http_server.url, max_attempts=3), LOOPBACK) as c,
        stamina.set_testing(True, attempts=10, cap=True),
    ):
        assert c.complete("hi").text == "HI"
    assert state.calls["chat"] == 3


@pytest.mark.parametrize("template", ["{row.__class__}", "{x[0]}", "{0}", "{}", "{x!r}", "{x:{y}}"])
def test_mapper_refuses_unsafe_templates(template: str) -> None:
    with pytest.raises(ConfigError, match="template"):
        map_prompts(object(), template, [{"x": 1, "y": 2}], model="m")  # type: ignore[arg-type]


def test_mapper_names_a_missing_field(client: OpenAIClient) -> None:
    with pytest.raises(ConfigError, match="row 1 has no field 'x'"):
        map_prompts(client, "{x}", [{"x": 1}, {"y": 2}], model="stub-chat")

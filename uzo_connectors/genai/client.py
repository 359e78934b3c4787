"""An OpenAI-compatible HTTP client: chat completions, embeddings, models.

Built on :class:`uzo_connectors.http.transport.SafeClient`, so the base URL (and
any redirect) is checked against the SSRF policy, and the API key never appears in
an error. The transport is the one layer that retries a model call: a transient
failure (network, 408, 409, 429, 5xx: :attr:`ModelError.transient`) is retried up
to ``max_attempts`` in all with UZO's backoff (:mod:`uzo_connectors.retry`),
``Retry-After`` winning; chat completions and embeddings have no side effects, so
their POSTs are retried like GETs. Token usage is read from each response and
summed in :attr:`OpenAIClient.usage`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from uzo_connectors.errors import BlockedEndpointError, ConnectorError
from uzo_connectors.http.auth import HeaderAuth
from uzo_connectors.http.transport import HttpRetry, SafeClient
from uzo_connectors.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import httpx

    from uzo_connectors.genai.config import OpenAIConfig
    from uzo_connectors.ssrf import EndpointPolicy

Message = dict[str, Any]  # {"role": "user", "content": "..."}

# the statuses a model call is retried on (with network failures: ModelError.transient)
TRANSIENT_STATUSES = frozenset({408, 409, 429, *range(500, 600)})


class ModelError(ConnectorError):
    """The model endpoint answered with an error; ``transient`` if retrying may help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.transient = status is None or status in TRANSIENT_STATUSES


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, or summed over many (``a + b``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> Usage:
        raw = body.get("usage") or {}
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        total = int(raw.get("total_tokens") or prompt + completion)
        return cls(prompt, completion, total)


@dataclass(frozen=True)
class ChatResponse:
    text: str
    model: str
    usage: Usage
    finish_reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class EmbeddingResponse:
    vectors: list[list[float]]
    model: str
    usage: Usage


class UsageMeter:
    """Thread-safe running totals of token usage and calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = Usage()
        self.calls = 0

    def add(self, usage: Usage) -> None:
        with self._lock:
            self.total = self.total + usage
            self.calls += 1


class OpenAIClient:
    """Chat completions and embeddings against any OpenAI-compatible endpoint. Thread-safe."""

    def __init__(self, config: OpenAIConfig, policy: EndpointPolicy, **transport: Any) -> None:
        self.config = config
        key = config.api_key.get_secret_value() if config.api_key else None
        headers = {"Accept": "application/json", **config.headers}
        if config.organization:
            headers["OpenAI-Organization"] = config.organization
        self._http = SafeClient(
            policy,
            timeout=config.timeout,
            verify=config.verify_tls,
            headers=headers,
            retry=HttpRetry(
                RetryPolicy(config.max_attempts, config.backoff_base, config.backoff_max),
                statuses=TRANSIENT_STATUSES,
                max_retry_after=config.max_retry_after,
            ),
            rate_limit=config.rate_limit,
            secrets=(key,) if key else (),
            sensitive_params=("api-key",),
            # the key goes to base_url's origin only, never to where a redirect points
            trusted_origin=config.base_url,
            **transport,
        )
        if key and config.provider == "azure":
            self._http.auth = HeaderAuth("api-key", key)
        elif key:
            self._http.auth = HeaderAuth("Authorization", f"Bearer {key}")
        try:
            self._http.check(config.base_url)  # fail early on an internal endpoint
        except BlockedEndpointError:
            self._http.close()
            raise
        self.usage = UsageMeter()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- URLs ------------------------------------------------------------------------

    def url(self, operation: str, model: str | None = None) -> str:
        """The URL of ``operation`` ("chat/completions", "embeddings", "models")."""
        cfg = self.config
        if cfg.provider != "azure":
            return f"{cfg.base_url}/{operation}"
        if operation == "models":
            return f"{cfg.base_url}/openai/models?api-version={quote(cfg.api_version or '')}"
        if model is None:
            raise ConnectorError(f"Azure OpenAI needs a model (deployment) for {operation}")
        deployment = quote(cfg.deployments.get(model, model), safe="")
        version = quote(cfg.api_version or "", safe="")
        return f"{cfg.base_url}/openai/deployments/{deployment}/{operation}?api-version={version}"

    def _send(self, method: str, url: str, payload: Any = None) -> httpx.Response:
        try:  # a model call changes nothing on the server: safe to repeat
            return self._http.request(method, url, json=payload, idempotent=True)
        except BlockedEndpointError:
            raise
        except ConnectorError as exc:  # the network failed even after retries
            raise ModelError(str(exc)) from None

    def _post(self, operation: str, model: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = self._send("POST", self.url(operation, model), payload)
        return self._body(response, operation)

    def _body(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        if not response.is_success:
            detail = ""
            try:
                error = response.json().get("error") or response.json().get("detail")
                if isinstance(error, dict):
                    error = error.get("message") or error.get("error")
                detail = f": {self._http.redact(str(error))[:300]}" if error else ""
            except (ValueError, AttributeError):
                pass
            raise ModelError(
                f"{operation}: HTTP {response.status_code}{detail}", response.status_code
            )
        try:
            body = response.json()
        except ValueError:
            raise ModelError(f"{operation}: the response is not JSON") from None
        if not isinstance(body, dict):
            raise ModelError(f"{operation}: unexpected response shape")
        return body

    # --- operations ------------------------------------------------------------------

    def _model(self, model: str | None, fallback: str | None) -> str:
        chosen = model or fallback or self.config.default_model
        if not chosen:
            raise ConnectorError("no model given and no default_model configured")
        return chosen

    def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        **params: Any,
    ) -> ChatResponse:
        """One chat completion; ``params`` pass through (temperature, max_tokens, seed...)."""
        name = self._model(model, None)
        body = self._post(
            "chat/completions", name, {"model": name, "messages": list(messages), **params}
        )
        try:
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ModelError("chat/completions: the response has no choices[0].message") from None
        usage = Usage.from_response(body)
        self.usage.add(usage)
        return ChatResponse(
            text=str(text),
            model=str(body.get("model") or name),
            usage=usage,
            finish_reason=choice.get("finish_reason"),
            raw=body,
        )

    def complete(self, prompt: str, *, model: str | None = None, **params: Any) -> ChatResponse:
        """A single user message."""
        return self.chat([{"role": "user", "content": prompt}], model=model, **params)

    def embed(self, inputs: Sequence[str], *, model: str | None = None) -> EmbeddingResponse:
        """Embeddings of ``inputs``, in their order."""
        name = self._model(model, self.config.embedding_model)
        body = self._post("embeddings", name, {"model": name, "input": list(inputs)})
        try:
            rows = sorted(body["data"], key=lambda item: int(item.get("index", 0)))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError):
            raise ModelError("embeddings: the response has no data[].embedding") from None
        usage = Usage.from_response(body)
        self.usage.add(usage)
        return EmbeddingResponse(vectors=vectors, model=str(body.get("model") or name), usage=usage)

    def list_models(self) -> list[str]:
        """The ids of the models the endpoint serves."""
        response = self._send("GET", self.url("models"))
        body = self._body(response, "models")
        try:
            return sorted(str(item["id"]) for item in body.get("data", []))
        except (KeyError, TypeError):
            raise ModelError("models: unexpected response shape") from None

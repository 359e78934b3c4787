"""Configuration of an OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama...).

The API key is the only secret and lives in ``api_key`` (a ``SecretStr``): headers
that look like credentials are refused (they would be stored and shown in clear),
as are headers that steer the request. Every number has a maximum.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import ConfigError
from uzo_connectors.http import guards
from uzo_connectors.http.guards import MAX_TIMEOUT, checked

USE_API_KEY = "api_key (sent as 'Authorization: Bearer', or 'api-key' for provider azure)"


class OpenAIConfig(ConnectorConfig):
    """Where the model endpoint is and how to call it.

    ``provider="azure"`` switches to Azure OpenAI's wire format: URLs
    ``{base_url}/openai/deployments/{deployment}/...?api-version=...`` and an
    ``api-key`` header; the deployment is ``deployments[model]`` or the model name.
    Every other provider (OpenAI, vLLM, Ollama's ``/v1``, LM Studio, ...) uses
    ``{base_url}/chat/completions`` with ``Authorization: Bearer``.
    """

    # where requests and the API key go: changing it needs the key again
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"base_url"})

    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    provider: Literal["openai", "azure", "vllm", "ollama", "other"] = "openai"
    api_version: str | None = None  # Azure: required, e.g. "2024-06-01"
    # Azure: model -> deployment
    deployments: dict[str, str] = Field(default_factory=dict, max_length=1000)
    organization: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    default_model: str | None = Field(default=None, max_length=256)
    embedding_model: str | None = Field(default=None, max_length=256)
    timeout: float = Field(default=60.0, gt=0, le=MAX_TIMEOUT)
    # attempts of one call in all: the transport retries transient failures (the llm node
    # sets it from its own `retries`); backoff as in uzo_connectors.retry
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base: float = Field(default=0.5, ge=0, le=60)
    backoff_max: float = Field(default=30.0, ge=0, le=MAX_TIMEOUT)
    max_retry_after: float = Field(default=120.0, ge=0, le=MAX_TIMEOUT)
    rate_limit: float | None = Field(default=None, gt=0, le=1000)  # requests per second
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return checked(guards.absolute_url, value, field="base_url")

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return checked(guards.check_headers, value, field="headers", use=USE_API_KEY)

    @field_validator("api_key")
    @classmethod
    def _plain_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:  # it goes into a header; the message never shows it
            checked(guards.plain, value.get_secret_value(), field="api_key", max_length=8192)
        return value

    @field_validator("organization", "api_version")
    @classmethod
    def _plain_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else checked(guards.plain, value, field=str(info.field_name))

    @field_validator("deployments")
    @classmethod
    def _plain_deployments(cls, value: dict[str, str]) -> dict[str, str]:
        for model, deployment in value.items():
            checked(guards.plain, model, field="deployments")
            try:
                guards.plain(deployment, field=f"the deployment of {model!r}")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _azure_needs_version(self) -> OpenAIConfig:
        if self.provider == "azure" and not self.api_version:
            raise ValueError("Azure OpenAI needs api_version (e.g. '2024-06-01')")
        return self

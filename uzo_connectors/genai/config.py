"""Configuration of an OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama...)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from uzo_connectors.base import ConnectorConfig


class OpenAIConfig(ConnectorConfig):
    """Where the model endpoint is and how to call it.

    ``provider="azure"`` switches to Azure OpenAI's wire format: URLs
    ``{base_url}/openai/deployments/{deployment}/...?api-version=...`` and an
    ``api-key`` header; the deployment is ``deployments[model]`` or the model name.
    Every other provider (OpenAI, vLLM, Ollama's ``/v1``, LM Studio, ...) uses
    ``{base_url}/chat/completions`` with ``Authorization: Bearer``.
    """

    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    provider: Literal["openai", "azure", "vllm", "ollama", "other"] = "openai"
    api_version: str | None = None  # Azure: required, e.g. "2024-06-01"
    deployments: dict[str, str] = Field(default_factory=dict)  # Azure: model -> deployment
    organization: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    default_model: str | None = None
    embedding_model: str | None = None
    timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)
    max_retry_after: float = Field(default=120.0, ge=0)
    rate_limit: float | None = Field(default=None, gt=0)  # requests per second
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not carry a query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _azure_needs_version(self) -> OpenAIConfig:
        if self.provider == "azure" and not self.api_version:
            raise ValueError("Azure OpenAI needs api_version (e.g. '2024-06-01')")
        return self

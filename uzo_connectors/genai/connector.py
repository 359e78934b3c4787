"""The ``openai`` connector: an OpenAI-compatible model endpoint as a UZO connection.

It is not a table source or sink: ``test_connection`` lists the models (falling
back to a one-token completion where ``/models`` is not served), ``discover``
lists the models, and :meth:`OpenAIConnector.client` gives the
:class:`~uzo_connectors.genai.client.OpenAIClient` that the engine's ``llm``
node hands to :func:`uzo_connectors.genai.mapper.map_prompts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from uzo_connectors.base import BaseConnector, Capabilities, Category, DatasetInfo
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectionTestError,
    ConnectorError,
    MissingDependencyError,
)
from uzo_connectors.genai.client import ModelError, OpenAIClient
from uzo_connectors.genai.config import OpenAIConfig

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorContext, ReadPlan, ReadRequest


class OpenAIConnector(BaseConnector[OpenAIConfig]):
    type_key: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI-compatible model endpoint"
    category: ClassVar[Category] = Category.GENAI
    config_model: ClassVar[type[OpenAIConfig]] = OpenAIConfig
    capabilities: ClassVar[Capabilities] = Capabilities(read=False, write=False, discover=True)
    description: ClassVar[str] = (
        "Chat completions and embeddings from OpenAI, Azure OpenAI, vLLM, Ollama and"
        " other OpenAI-compatible servers; used by the llm node."
    )

    def __init__(self, config: OpenAIConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._client: OpenAIClient | None = None

    def client(self) -> OpenAIClient:
        """The (shared, thread-safe) client for this connection."""
        if self._client is None:
            self._client = OpenAIClient(self.config, self.context.endpoint_policy)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> None:
        """List the models; the remote side's failures are ConnectionTestError.

        UZO's own refusals (an internal endpoint, a redirect to one, a config mistake)
        propagate as they are: the API answers them with 422, not a failed test.
        """
        try:
            client = self.client()
            try:
                client.list_models()
            except ModelError as exc:
                if exc.status not in {404, 405} or not self.config.default_model:
                    raise
                client.complete("ping", max_tokens=1)  # no /models here: a 1-token completion
        except ModelError as exc:
            if exc.status in {401, 403}:
                raise ConnectionTestError(
                    f"the model endpoint {self.config.base_url} refused the API key"
                    f" (HTTP {exc.status})"
                ) from None
            raise ConnectionTestError(f"{self.config.base_url}: {exc}") from None
        except (BlockedEndpointError, ConfigError, MissingDependencyError):
            raise
        except ConnectorError as exc:
            raise ConnectionTestError(str(exc)) from None

    def discover(self) -> list[DatasetInfo]:
        return [DatasetInfo(name=m, kind="endpoint") for m in self.client().list_models()]

    def plan_read(self, request: ReadRequest) -> ReadPlan:
        raise ConnectorError(
            "the 'openai' connector is a model endpoint, not a table source:"
            " use it from an llm node (uzo_connectors.genai.mapper.map_prompts)"
        )

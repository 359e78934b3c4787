"""``llm``: a prompt template mapped over the input rows through an OpenAI-compatible model.

The work is :func:`uzo_connectors.genai.mapper.iter_map_prompts` (batches, a
concurrency limit, a response cache, token accounting); this module turns its
answers into a column. A transient failure is retried ``retries`` times by the
client's transport, the one layer that retries (the mapper does not).

The endpoint comes from a saved connector (``connector_id``: the caller resolves
and decrypts its config into ``StepContext.connector_configs``, as for
``source``/``sink``), from an inline ``config`` (any
:class:`~uzo_connectors.genai.config.OpenAIConfig` field), or from the
``base_url``/``api_key`` shortcuts; later ones override earlier ones.

The SSRF policy is the caller's, ``StepContext.connectors.endpoint_policy`` (the
deployment's ``UZO_CONNECTORS_ALLOW_LOOPBACK``... reach it through whoever built the
context): a model on an internal address needs it allowed there.

The response cache is on by default and lives in the process running the node
(one in-memory cache per endpoint, directory and local roots, shared by the runs of
that process with the same ones); with ``cache_dir`` it is also persisted in SQLite
there, so answers survive restarts and are shared between processes (the cache key
is model, messages and params, not the endpoint: give each endpoint its own
directory). ``cache_dir`` is a local directory like any other: inside the context's
local roots (relative: to the first one).
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import polars as pl
from pydantic import Field, SecretStr, field_validator

from uzo_engine.nodes.base import (
    ColumnSources,
    InlineConnector,
    NodeType,
    Params,
    SchemaError,
    require_columns,
)
from uzo_engine.nodes.io import with_saved_config

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pyarrow as pa

    from uzo_engine.plan import StepContext

USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _template_fields(template: str) -> list[str]:
    templates = importlib.import_module("uzo_connectors.genai.prompts")
    fields: list[str] = templates.template_fields(template)
    return fields


class LlmParams(Params):
    connector_id: str | None = Field(
        None, description="saved `openai` connector whose resolved config the caller passes in"
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="inline endpoint config (OpenAIConfig fields)"
    )
    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. .../v1")
    api_key: SecretStr | None = Field(None, description="API key (prefer a saved connector)")
    model: str | None = Field(None, description="model name; else the endpoint's default_model")
    template: str = Field(description="user prompt; `{column}` inserts a field of the row")
    system: str | None = Field(None, description="system prompt (no row fields)")
    output_column: str = Field("response", min_length=1, description="column for the answers")
    usage_columns: bool = Field(
        False, description="also add <output>_prompt_tokens, _completion_tokens, _total_tokens"
    )
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1, le=10_000, description="rows rendered and sent together")
    max_concurrency: int = Field(4, ge=1, le=64, description="model calls in flight at once")
    # the client's transport does these retries (the endpoint's max_attempts is not used here)
    retries: int = Field(2, ge=0, le=10, description="retries of a transient failure per row")
    cache: bool = Field(True, description="answer repeated prompts from a response cache")
    cache_dir: str | None = Field(None, description="also persist the cache in this directory")
    on_error: Literal["fail", "null"] = Field(
        "fail", description="a row whose call fails: fail the node, or a null answer"
    )

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        _template_fields(value)  # ValueError says which field is not allowed
        return value

    @field_validator("system")
    @classmethod
    def _plain_system(cls, value: str | None) -> str | None:
        if value is not None and _template_fields(value):
            raise ValueError("the system prompt cannot use row fields (put them in `template`)")
        return value

    def model_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params

    def output_columns(self) -> list[str]:
        extra = [f"{self.output_column}_{f}" for f in USAGE_FIELDS] if self.usage_columns else []
        return [self.output_column, *extra]


class LlmNode(NodeType[LlmParams]):
    name = "llm"
    io_bound = True
    Params = LlmParams
    description = "Ask an OpenAI-compatible model a templated prompt per row; adds the answers."

    _caches: ClassVar[dict[tuple[str, str | None, tuple[str, ...] | None], Any]] = {}
    _caches_lock: ClassVar[threading.Lock] = threading.Lock()

    def inline_connectors(self, config: Mapping[str, Any]) -> list[InlineConnector]:
        inline = config.get("config")
        if not isinstance(inline, dict) or not inline:
            return []
        return [InlineConnector("openai", "config", inline)]

    def referenced_columns(self, params: LlmParams) -> dict[str, tuple[str, ...]]:
        return {"in": tuple(_template_fields(params.template))}

    def infer_schema(
        self, params: LlmParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        schema = inputs["in"]
        require_columns(schema, self.referenced_columns(params)["in"])
        for col in params.output_columns():
            if col in schema:
                raise SchemaError(
                    f"output column {col!r} already exists on the input (choose another "
                    "`output_column`)",
                    code="duplicate_column",
                    column=col,
                )
        added: dict[str, pl.DataType] = {params.output_column: pl.String()}
        if params.usage_columns:
            added.update({f"{params.output_column}_{f}": pl.Int64() for f in USAGE_FIELDS})
        return {"out": pl.Schema({**dict(schema), **added})}

    def column_lineage(
        self,
        params: LlmParams,
        inputs: Mapping[str, pl.Schema],
        outputs: Mapping[str, pl.Schema],
    ) -> dict[str, dict[str, ColumnSources]]:
        """Input columns pass through; the answer (and usage) come from the template's fields."""
        lineage = super().column_lineage(params, inputs, outputs)
        prompt = tuple(("in", c) for c in _template_fields(params.template))
        for col in params.output_columns():
            lineage.setdefault("out", {})[col] = prompt
        return lineage

    def endpoint_config(self, params: LlmParams, ctx: StepContext) -> Any:
        """The OpenAIConfig: inline config and shortcuts under the saved connector's fields
        (which win: :func:`uzo_engine.nodes.io.with_saved_config`)."""
        config_mod = importlib.import_module("uzo_connectors.genai.config")
        inline: dict[str, Any] = dict(params.config)
        if params.base_url is not None:
            inline["base_url"] = params.base_url
        if params.api_key is not None:
            inline["api_key"] = params.api_key
        raw = with_saved_config(params.connector_id, inline, ctx)
        return config_mod.OpenAIConfig.model_validate(raw)

    def response_cache(self, params: LlmParams, base_url: str, ctx: StepContext) -> Any:
        """The process's cache for this endpoint, directory and local roots (None when
        caching is off); ``cache_dir`` must be inside the context's roots."""
        if not params.cache:
            return None
        cache_mod = importlib.import_module("uzo_connectors.genai.cache")
        roots = ctx.connectors.local_roots
        directory = None
        if params.cache_dir is not None:
            directory = ctx.connectors.check_local_path(params.cache_dir)
        # one subscription's answers are not another's (its roots are its own)
        key = (base_url, directory, roots)
        with self._caches_lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = cache_mod.ResponseCache(directory=directory)
                self._caches[key] = cache
            return cache

    def run(
        self, params: LlmParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        import pyarrow as pa

        client_mod = importlib.import_module("uzo_connectors.genai.client")
        mapper = importlib.import_module("uzo_connectors.genai.mapper")

        table = inputs["in"]
        config = self.endpoint_config(params, ctx)
        model = params.model or config.default_model
        if not model:
            raise ValueError("no model: set `model` or the endpoint's `default_model`")
        config = config.model_copy(update={"max_attempts": params.retries + 1})
        fields = _template_fields(params.template)
        texts: list[str | None] = []
        usage: dict[str, list[int | None]] = {f: [] for f in USAGE_FIELDS}
        cache = self.response_cache(params, config.base_url, ctx)  # before any request
        with client_mod.OpenAIClient(config, ctx.connectors.endpoint_policy) as client:
            for part in mapper.iter_map_prompts(
                client,
                params.template,
                _rows(table.select(fields), params.batch_size),
                model=model,
                batch_size=params.batch_size,
                max_concurrency=params.max_concurrency,
                cache=cache,
                system=params.system,
                params=params.model_params(),
                on_error="null" if params.on_error == "null" else "raise",
            ):
                for row in part.results:
                    texts.append(row.text)
                    for f in USAGE_FIELDS:
                        usage[f].append(None if row.error else int(getattr(row.usage, f)))
                if ctx.cancelled():
                    raise RuntimeError("cancelled or timed out between batches")
        out = table.append_column(params.output_column, pa.array(texts, pa.string()))
        if params.usage_columns:
            for f in USAGE_FIELDS:
                name = f"{params.output_column}_{f}"
                out = out.append_column(name, pa.array(usage[f], pa.int64()))
        return {"out": out}


def _rows(table: pa.Table, batch_size: int) -> Iterator[dict[str, Any]]:
    """The rows as dicts, converted one batch at a time."""
    for batch in table.to_batches(max_chunksize=batch_size):
        yield from batch.to_pylist()

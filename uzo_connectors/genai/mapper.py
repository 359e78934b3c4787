"""Map a prompt template over rows: the engine's ``llm`` node calls this.

Usage::

    client = OpenAIClient(config, policy)          # or any object with .chat(...)
    result = map_prompts(
        client,
        "Classify the sentiment of this review: {review}",
        rows,                                      # an iterable of dicts (row fields)
        model="gpt-4o-mini",
        batch_size=32,                             # rows rendered and dispatched together
        max_concurrency=4,                         # model calls in flight at once
        cache=ResponseCache(directory=cache_dir),  # optional; None disables caching
        params={"temperature": 0},                 # passed to the model and part of the key
    )
    result.texts        # one answer per row, in row order (None for a failed row)
    result.usage        # Usage(prompt_tokens, completion_tokens, total_tokens) of real calls
    result.results[i]   # RowResult: text, usage, cached, attempts (client calls), error

Templates use ``str.format`` syntax with plain row field names only (``{review}``);
attribute/index access, positional fields and conversions are refused (no template
injection), and a row without a field the template names is a ConfigError.

Each row's answer comes from the cache when (model, messages, params) was seen
before, else from the model; identical prompts within a batch are sent once.
The mapper calls the client once per prompt and never retries: retrying is the
client's job (``OpenAIClient``'s transport retries transient failures, honouring
``Retry-After``, up to its config's ``max_attempts``), so attempts never multiply.
``on_error="raise"`` stops at the first failed row; ``"null"`` records the error in
``RowResult.error`` and carries on. :func:`iter_map_prompts` yields one
:class:`MapResult` per batch so a caller can stream (the engine writes each batch
as it completes).
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from uzo_connectors.errors import ConfigError
from uzo_connectors.genai.cache import CachedResponse, ResponseCache, cache_key
from uzo_connectors.genai.client import ModelError, Usage
from uzo_connectors.genai.prompts import parse_template, render

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from uzo_connectors.genai.client import ChatResponse, Message


class ChatModel(Protocol):
    """What the mapper needs from a client (``OpenAIClient`` fits)."""

    def chat(
        self, messages: Sequence[Message], *, model: str | None = None, **params: Any
    ) -> ChatResponse: ...


@dataclass(frozen=True)
class RowResult:
    text: str | None
    usage: Usage  # tokens this row spent now (zero for a cache hit or a shared prompt)
    cached: bool = False
    attempts: int = 0  # calls to the client for this row (0: cached or shared)
    error: str | None = None


@dataclass(frozen=True)
class MapResult:
    results: list[RowResult]
    usage: Usage
    calls: int
    cache_hits: int
    errors: int

    @property
    def texts(self) -> list[str | None]:
        return [r.text for r in self.results]

    def __add__(self, other: MapResult) -> MapResult:
        return MapResult(
            self.results + other.results,
            self.usage + other.usage,
            self.calls + other.calls,
            self.cache_hits + other.cache_hits,
            self.errors + other.errors,
        )


_EMPTY = MapResult([], Usage(), 0, 0, 0)


@dataclass(frozen=True)
class _Call:
    text: str | None
    usage: Usage
    attempts: int
    error: ModelError | None


def _render_messages(
    template: str, row: Mapping[str, Any], index: int, system: str | None
) -> list[Message]:
    try:
        prompt = render(template, row)
    except KeyError as exc:
        raise ConfigError(f"row {index} has no field {exc.args[0]!r} used by the prompt") from None
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


def iter_map_prompts(
    client: ChatModel,
    template: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    model: str,
    batch_size: int = 32,
    max_concurrency: int = 4,
    cache: ResponseCache | None = None,
    system: str | None = None,
    params: Mapping[str, Any] | None = None,
    on_error: Literal["raise", "null"] = "raise",
) -> Iterator[MapResult]:
    """Like :func:`map_prompts`, one MapResult per batch of ``batch_size`` rows."""
    try:
        parse_template(template)
    except ValueError as exc:
        raise ConfigError(f"prompt template: {exc}") from None
    if batch_size < 1 or max_concurrency < 1:
        raise ConfigError("batch_size and max_concurrency must be at least 1")
    call_params = dict(params or {})

    def call(messages: list[Message]) -> _Call:
        try:
            response = client.chat(messages, model=model, **call_params)
        except ModelError as exc:  # the client's retries are spent, or it was not transient
            return _Call(None, Usage(), 1, exc)
        return _Call(response.text, response.usage, 1, None)

    rows_iter = iter(rows)
    offset = 0
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="uzo-llm") as pool:
        while batch := list(itertools.islice(rows_iter, batch_size)):
            messages = [
                _render_messages(template, row, offset + i, system) for i, row in enumerate(batch)
            ]
            offset += len(batch)
            keys = [cache_key(model, m, call_params) for m in messages]
            cached = _lookup(cache, keys)
            todo = {k: m for k, m in zip(keys, messages, strict=True) if k not in cached}
            done = dict(zip(todo, pool.map(call, todo.values()), strict=True))
            yield _collect(keys, cached, done, cache, on_error)


def _lookup(cache: ResponseCache | None, keys: list[str]) -> dict[str, CachedResponse]:
    if cache is None:
        return {}
    return {k: hit for k in dict.fromkeys(keys) if (hit := cache.get(k)) is not None}


def _collect(
    keys: list[str],
    cached: dict[str, CachedResponse],
    done: dict[str, _Call],
    cache: ResponseCache | None,
    on_error: str,
) -> MapResult:
    for outcome in done.values():
        if outcome.error is not None and on_error == "raise":
            raise outcome.error
    if cache is not None:
        for key, outcome in done.items():
            if outcome.error is None and outcome.text is not None:
                cache.put(key, CachedResponse(outcome.text, outcome.usage))
    results: list[RowResult] = []
    charged: set[str] = set()
    for key in keys:
        if key in cached:
            results.append(RowResult(cached[key].text, Usage(), cached=True))
            continue
        outcome = done[key]
        first = key not in charged  # a prompt shared by rows is paid (and counted) once
        charged.add(key)
        results.append(
            RowResult(
                text=outcome.text,
                usage=outcome.usage if first else Usage(),
                attempts=outcome.attempts if first else 0,
                error=str(outcome.error) if outcome.error else None,
            )
        )
    total = sum((o.usage for o in done.values()), Usage())
    return MapResult(
        results=results,
        usage=total,
        calls=sum(o.attempts for o in done.values()),
        cache_hits=sum(1 for r in results if r.cached),
        errors=sum(1 for r in results if r.error),
    )


def map_prompts(
    client: ChatModel,
    template: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    model: str,
    batch_size: int = 32,
    max_concurrency: int = 4,
    cache: ResponseCache | None = None,
    system: str | None = None,
    params: Mapping[str, Any] | None = None,
    on_error: Literal["raise", "null"] = "raise",
) -> MapResult:
    """Render ``template`` for every row, ask ``model``, return answers and token usage."""
    total = _EMPTY
    for part in iter_map_prompts(
        client,
        template,
        rows,
        model=model,
        batch_size=batch_size,
        max_concurrency=max_concurrency,
        cache=cache,
        system=system,
        params=params,
        on_error=on_error,
    ):
        total = total + part
    return total

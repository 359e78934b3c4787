"""The local test server: paginated endpoints, auth schemes, failures, an OpenAI-shaped stub.

Everything is deterministic; :class:`ServerState` counts calls and holds the
switches tests flip (fail the next N chat calls with 429, revoke OAuth tokens...).
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

TOKEN = "s3cr3t-bearer-token"
USER, PASSWORD = "alice", "pa55-w0rd-basic"
API_KEY = "k3y-abcdef-123456"
CLIENT_ID, CLIENT_SECRET = "uzo-client", "cl13nt-s3cr3t-value"
OPENAI_KEY = "sk-test-openai-key"
AZURE_KEY = "azure-k3y-0123456789"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"

ITEMS = [
    {
        "id": i,
        "name": f"item-{i}",
        "price": round(i * 1.5, 2),
        "updated_at": f"2024-01-{i % 28 + 1:02d}T00:00:00Z",
        "owner": {"login": f"user{i % 3}", "id": i % 3},
        "tags": ["a", "b"][: i % 3],
    }
    for i in range(1, 36)
]  # 35 items: pages of 10 are 10, 10, 10, 5


@dataclass
class ServerState:
    calls: Counter[str] = field(default_factory=Counter)
    flaky_failures: dict[str, int] = field(default_factory=dict)
    chat_failures: int = 0
    chat_failure_status: int = 429  # 429 comes with Retry-After: 0.2; others without
    tokens: set[str] = field(default_factory=set)
    tokens_issued: int = 0
    sunk: list[Any] = field(default_factory=list)
    stores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    request_times: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, name: str) -> None:
        import time

        with self.lock:
            self.calls[name] += 1
            self.request_times.setdefault(name, []).append(time.monotonic())


def _unauthorized() -> HTTPException:
    return HTTPException(status_code=401, detail="bad credentials")


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI()

    # --- pagination --------------------------------------------------------------

    @app.get("/items/page")
    def page_items(page: int = 1, per_page: int = 10) -> list[dict[str, Any]]:
        state.hit("page")
        start = (page - 1) * per_page
        return ITEMS[start : start + per_page]

    @app.get("/items/offset")
    def offset_items(offset: int = 0, limit: int = 10) -> dict[str, Any]:
        state.hit("offset")
        return {"results": ITEMS[offset : offset + limit], "total": len(ITEMS)}

    @app.get("/items/cursor")
    def cursor_items(cursor: str | None = None, size: int = 10) -> dict[str, Any]:
        state.hit("cursor")
        start = int(base64.b64decode(cursor).decode()) if cursor else 0
        end = start + size
        nxt = base64.b64encode(str(end).encode()).decode() if end < len(ITEMS) else None
        return {"data": {"items": ITEMS[start:end]}, "meta": {"next_cursor": nxt}}

    @app.get("/items/stripe")
    def stripe_items(starting_after: int | None = None, limit: int = 10) -> dict[str, Any]:
        state.hit("stripe")
        start = 0 if starting_after is None else starting_after  # ids are 1-based
        chunk = ITEMS[start : start + limit]
        return {"object": "list", "data": chunk, "has_more": start + limit < len(ITEMS)}

    @app.get("/items/link")
    def link_items(request: Request, response: Response, page: int = 1) -> list[dict[str, Any]]:
        state.hit("link")
        start = (page - 1) * 10
        if start + 10 < len(ITEMS):
            nxt = request.url.include_query_params(page=page + 1)
            response.headers["Link"] = f'<{nxt}>; rel="next", <{request.url}>; rel="self"'
        return ITEMS[start : start + 10]

    @app.get("/items/link-evil")
    def link_evil(response: Response) -> list[dict[str, Any]]:
        response.headers["Link"] = f'<{METADATA_URL}>; rel="next"'
        return ITEMS[:10]

    @app.get("/items/incremental")
    def incremental_items(since: str | None = None) -> list[dict[str, Any]]:
        state.hit("incremental")
        return [i for i in ITEMS if since is None or i["updated_at"] >= since]

    # --- redirects ---------------------------------------------------------------

    @app.get("/redirect/evil")
    def redirect_evil() -> RedirectResponse:
        return RedirectResponse(METADATA_URL, status_code=302)

    @app.get("/redirect/ok")
    def redirect_ok() -> RedirectResponse:
        return RedirectResponse("/items/page?page=1&per_page=10", status_code=302)

    # --- auth --------------------------------------------------------------------

    @app.get("/auth/bearer")
    def auth_bearer(authorization: Annotated[str | None, Header()] = None) -> list[dict[str, Any]]:
        if authorization != f"Bearer {TOKEN}":
            raise _unauthorized()
        return ITEMS[:3]

    @app.get("/auth/basic")
    def auth_basic(authorization: Annotated[str | None, Header()] = None) -> list[dict[str, Any]]:
        expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if authorization != f"Basic {expected}":
            raise _unauthorized()
        return ITEMS[:3]

    @app.get("/auth/header-key")
    def auth_header_key(
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        if x_api_key != API_KEY:
            raise _unauthorized()
        return ITEMS[:3]

    @app.get("/auth/query-key")
    def auth_query_key(api_key: str | None = None) -> list[dict[str, Any]]:
        if api_key != API_KEY:
            raise HTTPException(status_code=403, detail="bad api key")
        return ITEMS[:3]

    @app.post("/oauth/token")
    async def oauth_token(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        form = dict(parse_qsl((await request.body()).decode()))  # no python-multipart here
        grant_type, scope = form.get("grant_type"), form.get("scope")
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if grant_type != "client_credentials" or authorization != f"Basic {expected}":
            raise HTTPException(status_code=401, detail="invalid_client")
        token = secrets.token_hex(8)
        with state.lock:
            state.tokens.add(token)
            state.tokens_issued += 1
        return {"access_token": token, "token_type": "bearer", "expires_in": 3600, "scope": scope}

    @app.get("/auth/oauth")
    def auth_oauth(authorization: Annotated[str | None, Header()] = None) -> list[dict[str, Any]]:
        token = (authorization or "").removeprefix("Bearer ")
        if token not in state.tokens:
            raise _unauthorized()
        return ITEMS[:3]

    # --- failures, rate limits, sinks ---------------------------------------------

    @app.get("/flaky/{key}")
    def flaky(key: str) -> Response:
        state.hit(f"flaky:{key}")
        with state.lock:
            left = state.flaky_failures.get(key, 0)
            state.flaky_failures[key] = max(0, left - 1)
        if left:
            return JSONResponse(
                {"error": "slow down"}, status_code=429, headers={"Retry-After": "1"}
            )
        return JSONResponse(ITEMS[:2])

    @app.get("/ticks")
    def ticks() -> list[dict[str, Any]]:
        state.hit("ticks")
        return [{"n": state.calls["ticks"]}]

    @app.post("/sink")
    async def sink(request: Request) -> dict[str, int]:
        body = await request.json()
        rows = body if isinstance(body, list) else [body]
        with state.lock:
            state.sunk.extend(rows)
        return {"accepted": len(rows)}

    @app.get("/store/{name}")
    def store_read(
        name: str,
        page: int = 1,
        per_page: int = 10,
        since: int | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        if authorization != f"Bearer {TOKEN}":
            raise _unauthorized()
        rows = [r for r in state.stores.get(name, []) if since is None or r["id"] >= since]
        return rows[(page - 1) * per_page : page * per_page]

    @app.post("/store/{name}")
    async def store_append(
        name: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, int]:
        if authorization != f"Bearer {TOKEN}":
            raise _unauthorized()
        body = await request.json()
        with state.lock:
            state.stores.setdefault(name, []).extend(body)
        return {"accepted": len(body)}

    _add_openai_stub(app, state)
    return app


def _usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = len(prompt.split()), len(completion.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _chat_answer(body: dict[str, Any]) -> JSONResponse:
    prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    last = str(body["messages"][-1]["content"]) if body.get("messages") else ""
    answer = last.upper()
    return JSONResponse(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(prompt, answer),
        }
    )


def _add_openai_stub(app: FastAPI, state: ServerState) -> None:
    def check_key(authorization: str | None) -> None:
        if authorization != f"Bearer {OPENAI_KEY}":
            raise HTTPException(status_code=401, detail={"error": {"message": "bad key"}})

    def maybe_fail() -> JSONResponse | None:
        with state.lock:
            if state.chat_failures:
                state.chat_failures -= 1
                status = state.chat_failure_status
                return JSONResponse(
                    {"error": {"message": "rate limited" if status == 429 else "overloaded"}},
                    status_code=status,
                    headers={"Retry-After": "0.2"} if status == 429 else {},
                )
        return None

    @app.get("/v1/models")
    def models(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        check_key(authorization)
        state.hit("models")
        data = [
            {"id": m, "object": "model", "owned_by": "stub"} for m in ("stub-chat", "stub-embed")
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        check_key(authorization)
        state.hit("chat")
        return maybe_fail() or _chat_answer(await request.json())

    @app.post("/v1/embeddings")
    async def embeddings(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        check_key(authorization)
        state.hit("embeddings")
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), float(len(t.split()))]}
            for i, t in enumerate(inputs)
        ]
        tokens = sum(len(t.split()) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def azure_chat(
        deployment: str,
        request: Request,
        api_version: Annotated[str | None, Query(alias="api-version")] = None,
        api_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        if api_key != AZURE_KEY:
            raise HTTPException(status_code=401, detail="bad key")
        if api_version != "2024-06-01":
            raise HTTPException(status_code=400, detail="bad api-version")
        state.hit(f"azure:{deployment}")
        return _chat_answer(await request.json())

"""Authenticators for the REST connector: bearer, basic, API key, OAuth2 client credentials."""

from __future__ import annotations

import base64
import threading
import time
from typing import TYPE_CHECKING

from uzo_connectors.errors import ConnectorError
from uzo_connectors.http.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
)
from uzo_connectors.http.transport import HttpStatusError

# A token is used for at most a day, whatever ``expires_in`` the token endpoint claims.
MAX_TOKEN_LIFETIME = 86_400.0

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from uzo_connectors.http.config import Auth
    from uzo_connectors.http.transport import Authenticator, SafeClient


class HeaderAuth:
    """A fixed header (bearer token, basic credentials, API key)."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def authorize(self, request: httpx.Request) -> httpx.Request:
        request.headers[self._name] = self._value
        return request

    def refresh(self) -> bool:
        return False


class QueryAuth:
    """An API key sent as a query parameter."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def authorize(self, request: httpx.Request) -> httpx.Request:
        request.url = request.url.copy_set_param(self._name, self._value)
        return request

    def refresh(self) -> bool:
        return False


class OAuth2ClientCredentialsAuth:
    """Gets a token from the (SSRF-checked) token URL; caches it, refreshes it on expiry or 401."""

    def __init__(
        self,
        config: OAuth2ClientCredentials,
        client: SafeClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def authorize(self, request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {self._current_token()}"
        return request

    def refresh(self) -> bool:
        with self._lock:
            self._token = None
        self._current_token()
        return True

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._token, lifetime = self._fetch()
                self._expires_at = self._clock() + max(
                    0.0, lifetime - self._config.expiry_margin_seconds
                )
            return self._token

    def _fetch(self) -> tuple[str, float]:
        cfg = self._config
        secret = cfg.client_secret.get_secret_value()
        form = {"grant_type": "client_credentials"}
        headers = {"Accept": "application/json"}
        if cfg.scopes:
            form["scope"] = " ".join(cfg.scopes)
        if cfg.audience:
            form["audience"] = cfg.audience
        if cfg.client_auth == "basic":
            raw = f"{cfg.client_id}:{secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            form |= {"client_id": cfg.client_id, "client_secret": secret}
        response = self._client.request(
            "POST",
            cfg.token_url,
            data=form,
            headers=headers,
            authenticate=False,
            follow_redirects=False,  # a 307 would replay the client secret elsewhere
        )
        if 300 <= response.status_code < 400:
            raise HttpStatusError(
                f"the OAuth2 token endpoint {self._client.scrub(cfg.token_url)} answered with a "
                f"redirect (HTTP {response.status_code}); give the final token URL",
                response.status_code,
            )
        if response.status_code in {400, 401, 403}:
            raise HttpStatusError(
                f"the OAuth2 token endpoint {self._client.scrub(cfg.token_url)} refused the "
                f"client credentials (HTTP {response.status_code})",
                401,
            )
        self._client.raise_for_status(response, "OAuth2 token request")
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise ConnectorError("the OAuth2 token response has no access_token") from None
        self._client.secrets = (*self._client.secrets, token)
        self.tokens_fetched += 1
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError, AttributeError):
            lifetime = 3600.0
        if lifetime != lifetime:  # NaN
            lifetime = 3600.0
        return token, min(max(lifetime, 0.0), MAX_TOKEN_LIFETIME)  # negative, 1e308, inf


def build_authenticator(auth: Auth, client: SafeClient) -> Authenticator | None:
    """The authenticator for ``auth`` (None for no auth)."""
    if isinstance(auth, NoAuth):
        return None
    if isinstance(auth, BearerAuth):
        return HeaderAuth("Authorization", f"Bearer {auth.token.get_secret_value()}")
    if isinstance(auth, BasicAuth):
        raw = f"{auth.username}:{auth.password.get_secret_value()}".encode()
        return HeaderAuth("Authorization", "Basic " + base64.b64encode(raw).decode())
    if isinstance(auth, ApiKeyAuth):
        value = auth.prefix + auth.value.get_secret_value()
        if auth.location == "query":
            return QueryAuth(auth.name, value)
        return HeaderAuth(auth.name, value)
    return OAuth2ClientCredentialsAuth(auth, client)

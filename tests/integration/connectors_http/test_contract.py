"""The shared connector contract (uzo_connectors.testing), run on the http connector.

The test server's ``/store/{name}`` is a small REST collection: GET pages through
it (``?page=&per_page=``, ``?since=`` on ``id``), POST appends a JSON array.
The connector claims read, projection, limit, incremental and append, so the
contract runs those and skips the write modes HTTP cannot offer.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors_http.helpers import connector as make_connector
from tests.integration.connectors_http.server import TOKEN
from uzo_connectors.testing import BadCredentials, ConnectorContract, write_table

if TYPE_CHECKING:
    import pyarrow as pa

    from tests.integration.connectors_http.conftest import LocalServer
    from uzo_connectors.base import BaseConnector, ConnectorContext

pytestmark = pytest.mark.integration


def _store(name: str, store: str) -> dict[str, Any]:
    return {
        "name": name,
        "path": "/store/{store}",
        "params": {"store": store},
        "pagination": {"type": "page", "page_size": 4},
        "incremental": {"field": "id", "param": "since"},
        "write": {"batch_size": 3},
    }


class TestHttpContract(ConnectorContract):
    @pytest.fixture
    def config(self, http_server: LocalServer) -> dict[str, Any]:
        run = uuid.uuid4().hex[:8]
        return {
            "base_url": http_server.url,
            "auth": {"type": "bearer", "token": TOKEN},
            "resources": [_store("sample", f"sample-{run}"), _store("scratch", f"scratch-{run}")],
        }

    @pytest.fixture
    def connector(self, config: dict[str, Any], loopback: ConnectorContext) -> BaseConnector[Any]:
        return make_connector(loopback, **config)

    @pytest.fixture
    def sample_dataset(self, connector: BaseConnector[Any], sample_table: pa.Table) -> str:
        write_table(connector, "sample", sample_table)
        return "sample"

    @pytest.fixture
    def writable_dataset(self) -> str:
        return "scratch"

    @pytest.fixture
    def bad_credentials(self, config: dict[str, Any], loopback: ConnectorContext) -> BadCredentials:
        secret = "not-the-right-token-123"
        bad = make_connector(loopback, **{**config, "auth": {"type": "bearer", "token": secret}})
        return BadCredentials(connector=bad, secret=secret)

"""Property-based fuzzing of the whole OpenAPI with schemathesis, in-process.

Every operation is called with generated (valid and invalid) input; the checks
require no 5xx, responses that match their documented schemas and status codes,
and correct content types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.factories import auth_header, login, register, unique_email
from uzo_api.app import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

CHECKS = (
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
)


@pytest.fixture(scope="module")
def fuzz_app(settings: Settings, database: Database) -> Iterator[tuple[Any, str]]:
    app = create_app(settings, database)
    with TestClient(app) as client:
        email = unique_email("fuzz")
        register(client, email=email)
        access = login(client, email)["access_token"]
        key = client.post(
            "/api/auth/api-keys", json={"name": "fuzz"}, headers=auth_header(access)
        ).json()["key"]
        yield app, key


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Any, str]) -> Any:
    app, _ = fuzz_app
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_operations(api_schema: Any, fuzz_app: tuple[Any, str], mode: Any) -> None:
    """Each operation, with generated input; the schemathesis pytest plugin does not
    support pytest 9 yet, so the operations are driven through hypothesis directly."""
    _, api_key = fuzz_app
    operations = _operations(api_schema)
    assert len(operations) >= 12
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @hsettings(
            max_examples=15,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            headers = dict(case.headers or {})
            # an API key keeps fuzzed logouts from ending the fuzzing session
            headers.setdefault("Authorization", f"Bearer {api_key}")
            case.headers = headers
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # an operation without inputs has no invalid variant to generate
            assert mode == GenerationMode.NEGATIVE, operation.label
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert failures == []

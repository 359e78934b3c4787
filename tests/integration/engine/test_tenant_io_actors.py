"""Tenant I/O limits on the actor path: the step context's connector context is pickled
into the Ray node actors and confines the nodes there as in-process
(tests/integration/test_tenant_io.py has the attacks, node type by node type).

Unlike test_runtime.py these plans come from the compiler: what is under test is the
I/O node types running in the actors, with the caller's limits.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.tenant_io_support import OWN, SECRET, lay_out
from tests.unit.uzo_engine.helpers import chain, node, tenant_ctx
from uzo_engine.compiler import CompileOptions, compile_workflow

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.runtime.flow import RunResult
    from uzo_engine.runtime.preview import PreviewResult

pytestmark = pytest.mark.integration


def test_a_read_outside_the_roots_is_refused_in_the_actors(
    runtime: Runtime, tmp_path: Path
) -> None:
    tenant = lay_out(tmp_path)

    def run(path: str, *, confined: bool = True) -> RunResult:
        plan = compile_workflow(chain(node("s", "parquet_source", path=path)), name="tenant-io")
        ctx = tenant_ctx(tenant.root, execution_id=uuid.uuid4().hex) if confined else None
        return runtime.run_sync(plan, ctx=ctx, keep_outputs=["s"])

    own = run("own.parquet")
    assert own.status == "succeeded", own.error
    assert own.table("s").equals(OWN)
    for path in (str(tenant.secret), "link.parquet", "../outside/secret.parquet"):
        refused = run(path)
        error = refused.results["s"].error or ""
        assert refused.status == "failed", path
        assert "outside the directories this subscription may use" in error, error
        assert str(SECRET) not in error
    # no context from the caller: the actors get the locked-down default
    default = run(str(tenant.root / "own.parquet"), confined=False)
    assert default.status == "failed"
    assert "outside the directories" in (default.results["s"].error or "")


def test_previews_under_two_subscriptions_never_share_a_cached_read(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The same plan names ``data.parquet``: each subscription's own file. The preview
    cache is keyed by the context's scope, so the second is not served the first's rows."""
    roots = {}
    for name, value in (("a", 1), ("b", 2)):
        roots[name] = tmp_path / name
        roots[name].mkdir()
        pq.write_table(pa.table({"v": [value]}), roots[name] / "data.parquet")
    doc = chain(
        node("s", "parquet_source", path="data.parquet"), node("f", "filter", condition="v > 0")
    )
    options = CompileOptions(upstream_of="f", materialize=frozenset({"f"}), fuse_joins=False)
    plan = compile_workflow(doc, name="tenant-preview", options=options)

    def preview(name: str) -> PreviewResult:
        ctx = tenant_ctx(roots[name], execution_id=f"preview-{uuid.uuid4().hex[:8]}")
        return runtime.preview(plan, "f", limit=5, ctx=ctx)

    first, second, again = preview("a"), preview("b"), preview("a")
    assert first.rows == [{"v": 1}], first.error
    assert second.rows == [{"v": 2}], second.error
    assert second.cached_steps == []
    assert again.rows == [{"v": 1}]
    assert again.executed_steps == []  # a's own, cached

"""How a run's error message names what failed (no Ray needed: the summary is pure)."""

from __future__ import annotations

from typing import Any

from uzo_engine.plan import NodeResult, failed_step_results
from uzo_engine.runtime.core import conclude


def _run(results: list[NodeResult], *, cancelled: bool = False) -> Any:
    status, error = conclude({r.node_id: r for r in results}, cancelled=cancelled)
    return type("Outcome", (), {"status": status, "error": error})


def test_the_culprit_is_named_and_fused_bystanders_are_counted() -> None:
    step = failed_step_results(
        object(),  # a runner without inner dependencies: a chain
        ("read", "cast", "total"),
        "cast",
        "cast: 'x' is not a number",
        attempts=1,
    )
    run = _run([NodeResult("other", "succeeded"), *step])
    assert run.status == "failed"
    assert run.error == (
        "1 node(s) failed: cast: cast: 'x' is not a number "
        "(1 node(s) fused with them produced no output)"
    )


def test_plain_failures_are_all_named() -> None:
    run = _run([NodeResult("a", "failed", error="boom"), NodeResult("b", "upstream_failed")])
    assert run.error == "1 node(s) failed: a: boom"


def test_a_cancelled_run_says_so() -> None:
    run = _run([NodeResult("a", "failed", error="boom")], cancelled=True)
    assert (run.status, run.error) == ("cancelled", "run cancelled")

"""The loop node: a node type built on the compiler, one level above ``nodes/``.

It validates and compiles its sub-workflow (so it imports the validator and the
compiler, which the plain node types in ``uzo_engine.nodes`` never do) and runs each
iteration through the executor its step context carries (``StepContext.run_plan``),
the same executor core that runs the enclosing step.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import Field, model_validator

from uzo_engine.compiler import CompileOptions, compile_workflow
from uzo_engine.nodes.base import NodeType, Params, SchemaError, SchemaUnknownError, require_columns
from uzo_engine.nodes.types import UnknownTypeError, dtype_text, to_arrow, to_polars
from uzo_engine.plan import NodeResult, StepOutput
from uzo_engine.validation import WorkflowValidationError, validate_workflow

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.plan import ExecutionPlan, StepContext


# ---------------------------------------------------------------- loop


class LoopInputParams(Params):
    pass


class LoopInputNode(NodeType[LoopInputParams]):
    """Placeholder source inside a loop's sub-workflow: each iteration's input."""

    name = "loop_input"
    Params = LoopInputParams
    inputs = ()
    description = "The current item of the enclosing loop (only inside a loop's sub-workflow)."

    def infer_schema(
        self, params: LoopInputParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        raise SchemaUnknownError("known from the enclosing loop")

    def run(
        self, params: LoopInputParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        raise RuntimeError("a loop_input node only runs inside a loop's sub-workflow")


@dataclasses.dataclass(frozen=True)
class _ConstantRunner:
    """Stands in for the sub-workflow's loop_input step: returns the iteration's item."""

    node_id: str
    table: pa.Table

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        result = NodeResult(self.node_id, "succeeded", rows_out=self.table.num_rows)
        return StepOutput(tables={"out": self.table}, results=[result])


class LoopParams(Params):
    workflow: dict[str, Any] = Field(description="the sub-workflow (a ReactFlow document)")
    input_node: str = Field(description="id of the sub-workflow's `loop_input` node")
    output_node: str = Field(description="id of the sub-workflow node whose output is collected")
    partition_by: list[str] | None = Field(None, description="one iteration per key group")
    chunk_size: int | None = Field(None, ge=1, description="one iteration per N rows")
    max_iterations: int = Field(100, ge=1, le=100_000)
    max_parallel: int = Field(4, ge=1, le=64)

    @model_validator(mode="after")
    def _check(self) -> LoopParams:
        if self.partition_by and self.chunk_size:
            raise ValueError("give `partition_by` or `chunk_size`, not both (default: per row)")
        wf = validate_workflow(self.workflow, check_schemas=False)
        if self.input_node not in wf.nodes or wf.nodes[self.input_node].node_type.name != (
            "loop_input"
        ):
            raise ValueError(f"`input_node` {self.input_node!r} must be a loop_input node")
        if self.output_node not in wf.nodes:
            raise ValueError(f"`output_node` {self.output_node!r} is not in the sub-workflow")
        if not wf.nodes[self.output_node].node_type.outputs:
            raise ValueError(f"`output_node` {self.output_node!r} has no output")
        return self


class LoopNode(NodeType[LoopParams]):
    name = "loop"
    Params = LoopParams
    description = (
        "Run a sub-workflow once per row, chunk or partition of the input (in parallel, "
        "bounded), stacking the outputs."
    )

    def referenced_columns(self, params: LoopParams) -> dict[str, tuple[str, ...]]:
        return {"in": tuple(params.partition_by or ())}

    def _with_input_schema(
        self, params: LoopParams, schema: Mapping[str, pl.DataType]
    ) -> dict[str, Any]:
        doc = dict(params.workflow)
        nodes = []
        for node in doc.get("nodes", []):
            if node.get("id") == params.input_node:
                cols = {c: dtype_text(t) for c, t in schema.items()}
                node = {
                    **node,
                    "data": {**node["data"], "nodeType": "values", "config": {"schema": cols}},
                }
            nodes.append(node)
        doc["nodes"] = nodes
        return doc

    def infer_schema(
        self, params: LoopParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        require_columns(inputs["in"], self.referenced_columns(params)["in"])
        try:
            wf = validate_workflow(self._with_input_schema(params, inputs["in"]))
        except UnknownTypeError as e:
            raise SchemaUnknownError(str(e)) from None
        except WorkflowValidationError as e:
            first = e.errors[0]
            raise SchemaError(
                f"sub-workflow: {first}", code=first.code, column=first.column
            ) from None
        out = wf.nodes[params.output_node].output_schemas
        if out is None:
            raise SchemaUnknownError("the sub-workflow's output schema depends on the data")
        return {"out": next(iter(out.values()))}

    def items(self, params: LoopParams, df: pl.DataFrame) -> list[pl.DataFrame]:
        if params.partition_by:
            return df.partition_by(params.partition_by, maintain_order=True)
        size = params.chunk_size or 1
        return [df.slice(i, size) for i in range(0, df.height, size)]

    def run(
        self, params: LoopParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        run_plan = ctx.run_plan
        if run_plan is None:
            raise RuntimeError("the loop node runs only under an executor that runs sub-plans")
        df = to_polars(inputs["in"])
        items = self.items(params, df)
        if len(items) > params.max_iterations:
            raise ValueError(
                f"the loop would run {len(items)} iterations; max_iterations is "
                f"{params.max_iterations}"
            )
        doc = self._with_input_schema(params, df.schema)
        plan = compile_workflow(
            doc,
            name="loop",
            options=CompileOptions(
                materialize=frozenset({params.input_node, params.output_node}), profile=False
            ),
        )
        out_step = plan.node_to_step[params.output_node]

        def iteration(index: int, item: pl.DataFrame) -> pa.Table | None:
            sub_plan = _with_constant_input(plan, params.input_node, to_arrow(item))
            sub_ctx = dataclasses.replace(ctx, execution_id=f"{ctx.execution_id}/loop{index}")
            result = run_plan(sub_plan, sub_ctx)
            if result.status != "succeeded":
                culprits = [result.results[n].error for n in result.failed_nodes]
                why = culprits[0] if len(culprits) == 1 else result.error
                raise RuntimeError(f"iteration {index}: {why or result.status}")
            table = result.outputs.get((out_step, plan.steps[out_step].outputs[0]))
            return table if hasattr(table, "num_rows") else None  # not produced: skipped

        with concurrent.futures.ThreadPoolExecutor(max_workers=params.max_parallel) as pool:
            futures = [pool.submit(iteration, i, item) for i, item in enumerate(items)]
            tables = [f.result() for f in futures]
        frames = [to_polars(t) for t in tables if t is not None]
        if not frames:
            try:
                schema = self.infer_schema(params, {"in": df.schema})["out"]
            except (SchemaError, SchemaUnknownError):
                schema = pl.Schema()
            return {"out": to_arrow(pl.DataFrame(schema=schema))}
        return {"out": to_arrow(pl.concat(frames, how="diagonal_relaxed"))}


def _with_constant_input(plan: ExecutionPlan, node_id: str, table: pa.Table) -> ExecutionPlan:
    step_id = plan.node_to_step[node_id]
    step = dataclasses.replace(plan.steps[step_id], runner=_ConstantRunner(node_id, table))
    return dataclasses.replace(plan, steps={**plan.steps, step_id: step})

"""``uzo schema | validate | run | preview``: workflows from the command line.

The engine runs the same here as behind the API: ``run`` is a Prefect flow run
on the Ray runtime; ``preview`` calls the node actors directly. ``--local``
runs in this process instead (no Ray, no Prefect), which is handy for quick
checks and in environments without a cluster.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from uzo_engine.events import NodeEvent, RunEvent
    from uzo_engine.plan import ExecutionPlan, NodeResult

WorkflowFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Workflow JSON file.")
]
_STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "upstream_failed": "red",
}


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise typer.BadParameter(f"{path} must hold a JSON object {{nodes, edges, viewport}}")
    return doc


def _validated(path: Path, console: Console) -> Any:
    from uzo_engine.validation import WorkflowValidationError, validate_workflow

    try:
        return validate_workflow(_load(path))
    except WorkflowValidationError as exc:
        from rich.table import Table

        table = Table(title=f"{path}: {len(exc.errors)} error(s)", title_style="bold red")
        for col in ("node", "field / column", "code", "message"):
            table.add_column(col, overflow="fold")
        for err in exc.errors:
            table.add_row(
                err.node_id or err.edge_id or "",
                err.field or err.column or "",
                err.code,
                err.message,
            )
        console.print(table)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)
    app.command("validate")(validate)
    app.command("run")(run)
    app.command("preview")(preview)


def schema(
    node_types: Annotated[
        bool, typer.Option("--node-types", help="The config schema of every node type instead.")
    ] = False,
    expressions: Annotated[
        bool,
        typer.Option("--expressions", help="The SQL expression dialect reference (Markdown)."),
    ] = False,
) -> None:
    """Print the JSON Schema of the workflow format."""
    from uzo_engine.graph import workflow_json_schema
    from uzo_engine.nodes.registry import node_types_json_schema

    if expressions:
        from uzo_engine.expressions.reference import render

        print(render(), end="")
        return
    doc = node_types_json_schema() if node_types else workflow_json_schema()
    print(json.dumps(doc, indent=2, sort_keys=True))


def validate(path: WorkflowFile) -> None:
    """Check a workflow without running it: types, configs, graph shape and schemas."""
    from rich.console import Console

    console = Console()
    wf = _validated(path, console)
    console.print(f"[green]valid[/green]: {len(wf.nodes)} nodes, {len(wf.edges)} edges")


class _LiveSink:
    """Keeps the latest event per node and redraws the progress table."""

    def __init__(self, plan: ExecutionPlan) -> None:
        self.order = [
            n for stage in plan.stages for s in stage.step_ids for n in plan.steps[s].node_ids
        ]
        self.latest: dict[str, NodeEvent] = {}
        self.live: Any = None

    def node_event(self, event: NodeEvent) -> None:
        self.latest[event.node_id] = event
        if self.live is not None:
            self.live.update(self.render())

    def run_event(self, event: RunEvent) -> None:
        return None

    def render(self) -> Any:
        from rich.table import Table

        table = Table(show_lines=False)
        for col, justify in (
            ("node", "left"),
            ("status", "left"),
            ("rows out", "right"),
            ("time", "right"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        done = 0
        for node_id in self.order:
            ev = self.latest.get(node_id)
            status = ev.status if ev else "queued"
            done += status in {"succeeded", "failed", "skipped", "cancelled", "upstream_failed"}
            table.add_row(
                node_id, f"[{_STATUS_STYLE[status]}]{status}", *_figures(ev.result if ev else None)
            )
        table.title = f"{done}/{len(self.order)} nodes done"
        return table


def _figures(result: NodeResult | None) -> tuple[str, str]:
    if result is None:
        return "", ""
    rows = "" if result.rows_out < 0 else f"{result.rows_out:,}"
    return rows, f"{result.duration_ms / 1000:.3f} s" if result.duration_ms else ""


def run(
    path: WorkflowFile,
    local: Annotated[
        bool, typer.Option("--local", help="Run in this process (no Ray, no Prefect).")
    ] = False,
    keep_services: Annotated[
        bool,
        typer.Option(
            "--keep-services", help="Leave the Ray cluster and Prefect server running afterwards."
        ),
    ] = False,
) -> None:
    """Run a workflow and show each node's progress; exits 1 if any node fails."""
    from rich.console import Console
    from rich.live import Live

    from uzo_engine.compiler import compile_workflow

    console = Console()
    wf = _validated(path, console)
    plan = compile_workflow(wf, name=path.stem)
    sink = _LiveSink(plan)
    started = time.perf_counter()
    with Live(sink.render(), console=console, refresh_per_second=8, transient=False) as live:
        sink.live = live
        if local:
            from uzo_engine.local import LocalExecutor

            local_result = LocalExecutor(sink).run(plan)
            status, error, results = local_result.status, local_result.error, local_result.results
        else:
            # Prefect's INFO lines would scroll through the live table (its API still gets them)
            os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
            from uzo_engine.runtime.engine import get_runtime

            runtime = get_runtime()
            try:
                runtime.start()
                cluster = runtime.cluster
                if cluster is not None:
                    how = "started a local cluster" if cluster.started_here else "attached to"
                    console.print(f"Ray: {how} {cluster.address} ({cluster.num_cpus} CPUs)")
                remote = runtime.run_sync(plan, sink=sink)
                status, error, results = remote.status, remote.error, remote.node_results
                recorded = remote.recorded(timeout=60)
                if recorded.flow_run_id is None or recorded.state is None:
                    console.print(f"[yellow]Prefect flow run not recorded: {recorded.error}[/]")
                else:
                    console.print(f"Prefect flow run {recorded.flow_run_id}: {recorded.state}")
            finally:
                runtime.close(stop_cluster=not keep_services, stop_prefect=not keep_services)
        live.update(sink.render())
    console.print()
    elapsed = time.perf_counter() - started
    colour = "green" if status == "succeeded" else "bold red"
    console.print(f"[{colour}]{status}[/] in {elapsed:.2f} s ({len(results)} nodes)")
    if error:
        console.print(f"[red]{error}[/red]")
    if status != "succeeded":
        raise typer.Exit(1)


def preview(
    path: WorkflowFile,
    node_id: Annotated[str, typer.Argument(help="The node to preview.")],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows to show.")] = 20,
    local: Annotated[bool, typer.Option("--local", help="Run in this process (no Ray).")] = False,
) -> None:
    """Show the first rows, the schema and a profile of one node's output."""
    from rich.console import Console
    from rich.table import Table

    from uzo_engine.compiler import CompileOptions, compile_workflow
    from uzo_engine.plan import StepContext

    console = Console()
    wf = _validated(path, console)
    if node_id not in wf.nodes:
        console.print(f"[red]no node {node_id!r} in {path}[/red]")
        raise typer.Exit(2)
    # join inputs stay separate steps: the preview cache then serves unchanged branches
    options = CompileOptions(
        upstream_of=node_id, materialize=frozenset({node_id}), fuse_joins=False
    )
    plan = compile_workflow(wf, name=path.stem, options=options)
    ctx = StepContext(execution_id=f"preview-{node_id}", preview_limit=max(limit, 1000))
    if local:
        from uzo_engine.local import LocalExecutor

        result = LocalExecutor().run(plan, ctx)
        if result.status != "succeeded":
            console.print(f"[red]{result.error}[/red]")
            raise typer.Exit(1)
        table_data = result.table(node_id).slice(0, limit)
        rows = table_data.to_pylist()
        columns = [(f.name, str(f.type)) for f in table_data.schema]
    else:
        from uzo_engine.runtime.engine import get_runtime

        runtime = get_runtime()
        try:
            runtime.start()
            pr = runtime.preview(plan, node_id, limit=limit, ctx=ctx)
        finally:
            runtime.close(stop_cluster=True, stop_prefect=True)
        if pr.error:
            console.print(f"[red]{pr.error}[/red]")
            raise typer.Exit(1)
        rows = pr.rows
        columns = [(c.name, c.dtype) for c in pr.schema]
    table = Table(title=f"{node_id}: first {len(rows)} rows")
    for name, dtype in columns:
        table.add_column(f"{name}\n[dim]{dtype}[/dim]")
    for row in rows:
        table.add_row(*("∅" if row.get(n) is None else str(row.get(n)) for n, _ in columns))
    console.print(table)

"""``uzo schema | validate | run | preview``: workflows from the command line.

The engine runs the same here as behind the API: ``run`` is a Prefect flow run
on the Ray runtime; ``preview`` calls the node actors directly. ``--local``
runs in this process instead (no Ray, no Prefect), which is handy for quick
checks and in environments without a cluster.

``validate``, ``run`` and ``preview`` take ``--json``: one JSON document on
stdout (see docs/cli.md), errors included, with the same exit codes as the
text output: 0 done, 1 invalid workflow or failed run, 2 unusable input.

These commands run on the operator's own machine: every node reads and writes
within the operator's connector context (``ConnectorSettings().operator_context()``:
no local-root limit, the endpoint policy and ambient-credential types of the
``UZO_CONNECTORS_*`` settings), and ``validate`` reads Parquet schemas through it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from uzo_engine.cli.output import USAGE_ERROR, JsonFlag, Output, UzoCommand, issue

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorContext
    from uzo_engine.cli.progress import ProgressReporter
    from uzo_engine.cli.results import FinalTable, Pick
    from uzo_engine.plan import ExecutionPlan, NodeResult, StepContext
    from uzo_engine.runtime.preview import PreviewResult
    from uzo_engine.validation import ValidatedWorkflow

# existence and readability are checked by the command, so that --json reports them too
WorkflowFile = Annotated[Path, typer.Argument(help="Workflow JSON file.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("schema", cls=UzoCommand)(schema)
    app.command("validate", cls=UzoCommand)(validate)
    app.command("run", cls=UzoCommand)(run)
    app.command("preview", cls=UzoCommand)(preview)


def _load(path: Path, out: Output) -> dict[str, Any]:
    from uzo_engine.graph import json_depth_error

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        out.fail(USAGE_ERROR, f"{path}: no such file", "file_not_found")
    except OSError as exc:
        out.fail(USAGE_ERROR, f"{path} cannot be read: {exc}", "unreadable_file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # JSON is UTF-8 (RFC 8259): say where it is not
        byte = data[exc.start : exc.start + 1].hex()
        out.fail(
            USAGE_ERROR,
            f"{path} is not UTF-8 JSON: byte 0x{byte} at offset {exc.start} ({exc.reason})",
            "invalid_json",
        )
    too_deep = json_depth_error(text)  # before json.loads, which recurses per level
    if too_deep is not None:
        out.fail(USAGE_ERROR, f"{path} is {too_deep}", "invalid_json")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        out.fail(USAGE_ERROR, f"{path} is not valid JSON: {exc}", "invalid_json")
    if not isinstance(doc, dict):
        out.fail(
            USAGE_ERROR,
            f"{path} must hold a JSON object {{nodes, edges, viewport}}",
            "not_an_object",
        )
    return doc


def _operator_connectors(out: Output) -> ConnectorContext:
    """The operator's connector context: the limits every node of these commands runs in."""
    from uzo_connectors.settings import ConnectorSettings

    try:
        return ConnectorSettings().operator_context()
    except (ValueError, FileNotFoundError) as exc:  # pydantic's errors are ValueErrors
        out.fail(USAGE_ERROR, f"connector settings (UZO_CONNECTORS_*): {exc}", "invalid_settings")


def _validated(path: Path, out: Output, connectors: ConnectorContext) -> ValidatedWorkflow:
    from uzo_engine.validation import WorkflowValidationError, validate_workflow

    doc = _load(path, out)
    try:
        return validate_workflow(doc, connectors=connectors)
    except WorkflowValidationError as exc:
        if out.as_json:
            out.emit(errors=[issue(**e.to_dict()) for e in exc.errors])
        else:
            from rich.markup import escape
            from rich.table import Table

            title = escape(f"{path}: {len(exc.errors)} error(s)")
            table = Table(title=title, title_style="bold red")
            for col in ("node", "field / column", "code", "message"):
                table.add_column(col, overflow="fold")
            for err in exc.errors:
                # ids and messages quote the user's workflow: never rich markup
                cells = (err.node_id or err.edge_id, err.field or err.column, err.code, err.message)
                table.add_row(*(escape(c or "") for c in cells))
            out.err.print(table)
        raise typer.Exit(1) from None


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


def validate(path: WorkflowFile, as_json: JsonFlag = False) -> None:
    """Check a workflow without running it: types, configs, graph shape and schemas."""
    out = Output(as_json, {"path": str(path), "node_count": None, "edge_count": None})
    with out.document_only():
        wf = _validated(path, out, _operator_connectors(out))
    out.emit(ok=True, node_count=len(wf.nodes), edge_count=len(wf.edges))
    if not as_json:
        out.console.print(f"[green]valid[/green]: {len(wf.nodes)} nodes, {len(wf.edges)} edges")


def _node_doc(node_id: str, result: NodeResult | None, status: str) -> dict[str, Any]:
    def count(n: int | None) -> int | None:
        return None if n is None or n < 0 else n

    return {
        "node_id": node_id,
        "status": result.status if result else status,
        "rows_in": count(result.rows_in) if result else None,
        "rows_out": count(result.rows_out) if result else None,
        "duration_ms": result.duration_ms if result else None,
        "attempts": result.attempts if result else 0,
        "error": result.error if result else None,
    }


def _run_errors(results: dict[str, NodeResult], error: str | None) -> list[dict[str, Any]]:
    from uzo_engine.plan import is_fused_bystander

    found = [
        issue("node_failed", r.error, node_id=n)
        for n, r in results.items()
        if r.status == "failed" and r.error and not is_fused_bystander(r)
    ]
    if not found and error:
        found.append(issue("run_failed", error))
    return found


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
    all_steps: Annotated[
        bool,
        typer.Option(
            "--all-steps",
            help="List every step at the end (a plan of over 50 steps lists those "
            "that did not succeed, then the slowest).",
        ),
    ] = False,
    show: Annotated[
        int | None,
        typer.Option(
            "--show",
            min=1,
            metavar="N",
            help="Print the first N rows of the final table(s) after the summary.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="Write the final table to FILE (.parquet, .csv, .json, .jsonl/.ndjson), "
            "atomically.",
            show_default=False,
        ),
    ] = None,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            metavar="ID",
            help="The node whose output --show/--output use (default: the final nodes').",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a workflow and show each node's progress; exits 1 if any node fails.

    The final tables are the outputs of the nodes no edge leaves (a sink's: the table it
    wrote); --node ID (or ID:PORT) picks one node's instead. --output needs one table.
    """
    out = Output(
        as_json,
        {
            "path": str(path),
            "workflow": path.stem,
            "runtime": "local" if local else "ray",
            "status": None,
            "duration_ms": None,
            "nodes": [],
            "prefect_flow_run_id": None,
            "prefect_state": None,
            "outputs": [],
            "output_file": None,
        },
    )
    prefect: dict[str, str | None] = {}
    tables: list[FinalTable] = []
    with out.document_only():
        from uzo_engine.cli import results as final
        from uzo_engine.cli.progress import ProgressReporter
        from uzo_engine.compiler import CompileOptions, compile_workflow
        from uzo_engine.plan import StepContext

        if node is not None and show is None and output is None:
            out.fail(USAGE_ERROR, "--node picks the table of --show or --output: give one")
        bad_output = final.check_output(output) if output is not None else None
        if bad_output is not None:
            out.fail(USAGE_ERROR, bad_output, "invalid_output")
        connectors = _operator_connectors(out)
        wf = _validated(path, out, connectors)
        picks: list[Pick] = []
        if show is not None or output is not None:
            try:
                picks = final.picks_for(wf, node, output)
            except final.PickError as exc:
                out.fail(USAGE_ERROR, str(exc), exc.code, node_id=node)
        # the picked nodes end their steps, so that their tables exist to be kept
        options = CompileOptions(materialize=frozenset(p.node_id for p in picks))
        plan = compile_workflow(wf, name=path.stem, options=options)
        keep = final.keep_steps(plan, picks)
        ctx = StepContext(execution_id=uuid.uuid4().hex, connectors=connectors)
        # on a terminal a live view drawn at its own rate; piped, a plain line now and then
        console = out.console
        live_terminal = not as_json and console.is_terminal and not console.is_dumb_terminal
        piped = not as_json and not live_terminal
        sink = ProgressReporter(plan, lines=functools.partial(_plain, out) if piped else None)
        live_view: contextlib.AbstractContextManager[Any] = (
            sink.live(console) if live_terminal else contextlib.nullcontext()
        )
        started = time.perf_counter()
        with live_view:
            status: str
            results: dict[str, NodeResult]
            if local:
                from uzo_engine.runtime.local import LocalExecutor

                local_result = LocalExecutor(sink).run(plan, ctx, keep_outputs=keep)
                status, error = local_result.status, local_result.error
                results = local_result.results
                if status == "succeeded":
                    tables = final.collect(local_result, picks)
            else:
                status, error, results, prefect, tables = _run_on_ray(
                    plan, ctx, sink, out, keep_services, picks
                )
        elapsed = time.perf_counter() - started
        written, write_error = _write_output(output, tables) if output else (None, None)
    ok = status == "succeeded" and write_error is None
    errors = _run_errors(results, error) if status != "succeeded" else []
    out.emit(
        ok=ok,
        status=status,
        duration_ms=round(elapsed * 1000, 3),
        nodes=[_node_doc(n, results.get(n), sink.status(n)) for n in sink.order],
        errors=errors + ([write_error] if write_error else []),
        outputs=final.shown_doc(tables, show) if show is not None else [],
        output_file=written,
        **prefect,
    )
    if not as_json:
        sink.print_final(out.console, all_steps)
        out.console.print()
        colour = "green" if status == "succeeded" else "bold red"
        out.console.print(f"[{colour}]{status}[/] in {elapsed:.2f} s ({len(results)} nodes)")
        if error:
            out.error(error)
        if show is not None:
            final.print_tables(out.console, tables, show, rich=live_terminal)
        if written is not None:
            out.console.print()
            out.info(f"wrote {written['rows']} rows of {written['node_id']} to {written['path']}")
        if write_error is not None:
            out.error(write_error["message"])
    if not ok:
        raise typer.Exit(1)


def _write_output(
    output: Path, tables: list[FinalTable]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``--output``: the ``output_file`` document, or the error (none written if the run
    did not succeed: the old file stays)."""
    from uzo_engine.cli.results import write_output

    if not tables:  # the run did not succeed
        return None, None
    (found,) = tables
    label = found.pick.label
    if found.table is None:
        message = f"--output {output}: {label} produced {found.missing}; nothing written"
        return None, issue("no_output", message, node_id=found.pick.node_id)
    try:
        fmt = write_output(found.table, output)
    except Exception as exc:  # a full disk, a type the format cannot hold (nested in CSV)
        message = f"--output {output}: cannot write {label}: {type(exc).__name__}: {exc}"
        return None, issue("output_failed", message, node_id=found.pick.node_id)
    doc = {
        "path": str(output),
        "format": fmt,
        "node_id": found.pick.node_id,
        "port": found.pick.port,
        "rows": found.table.num_rows,
    }
    return doc, None


def _plain(out: Output, line: str) -> None:
    out.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _run_on_ray(
    plan: ExecutionPlan,
    ctx: StepContext,
    sink: ProgressReporter,
    out: Output,
    keep_services: bool,
    picks: list[Pick],
) -> tuple[str, str | None, dict[str, NodeResult], dict[str, str | None], list[FinalTable]]:
    # Prefect's INFO lines would scroll through the live table (its API still gets them)
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from uzo_engine.runtime.engine import get_runtime

    runtime = get_runtime()
    try:
        runtime.start()
        cluster = runtime.cluster
        if cluster is not None:
            how = "started a local cluster" if cluster.started_here else "attached to"
            out.info(f"Ray: {how} {cluster.address} ({cluster.num_cpus} CPUs)")
        from uzo_engine.cli.results import collect, keep_steps

        remote = runtime.run_sync(plan, ctx=ctx, sink=sink, keep_outputs=keep_steps(plan, picks))
        # fetched from the object store while the cluster still runs
        tables = collect(remote, picks) if remote.status == "succeeded" else []
        recorded = remote.recorded(timeout=60)
        if recorded.flow_run_id is None or recorded.state is None:
            out.warning(f"Prefect flow run not recorded: {recorded.error}")
            prefect: dict[str, str | None] = {}
        else:
            out.info(f"Prefect flow run {recorded.flow_run_id}: {recorded.state}")
            prefect = {
                "prefect_flow_run_id": str(recorded.flow_run_id),
                "prefect_state": str(recorded.state),
            }
        return remote.status, remote.error, remote.results, prefect, tables
    finally:
        runtime.close(stop_cluster=not keep_services, stop_prefect=not keep_services)


def preview(
    path: WorkflowFile,
    node_id: Annotated[str, typer.Argument(help="The node to preview.", show_default=False)],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows to show.")] = 20,
    max_source_rows: Annotated[
        int | None,
        typer.Option(
            "--max-source-rows",
            min=0,
            help="Rows each source reads at most (0: all). Default: "
            "UZO_PREVIEW_MAX_SOURCE_ROWS (1,000,000).",
            show_default=False,
        ),
    ] = None,
    local: Annotated[bool, typer.Option("--local", help="Run in this process (no Ray).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show the first rows, the schema and a profile of one node's output; says when the
    sources were sampled (a source reached --max-source-rows)."""
    out = Output(
        as_json,
        {
            "path": str(path),
            "node_id": node_id,
            "runtime": "local" if local else "ray",
            "columns": [],
            "rows": [],
            "profile": None,
            "sampled": None,
            "source_rows": {},
            "sampled_sources": [],
            "max_source_rows": None,
        },
    )
    with out.document_only():
        from uzo_engine.compiler import CompileOptions, compile_workflow
        from uzo_engine.plan import StepContext
        from uzo_engine.settings import get_engine_settings

        connectors = _operator_connectors(out)
        wf = _validated(path, out, connectors)
        if node_id not in wf.nodes:
            out.fail(USAGE_ERROR, f"no node {node_id!r} in {path}", "unknown_node", node_id=node_id)
        # join inputs stay separate steps: the preview cache then serves unchanged branches
        options = CompileOptions(
            upstream_of=node_id, materialize=frozenset({node_id}), fuse_joins=False, profile=False
        )
        plan = compile_workflow(wf, name=path.stem, options=options)
        if max_source_rows is None:
            max_source_rows = get_engine_settings().preview_max_source_rows
        ctx = StepContext(
            execution_id=f"preview-{node_id}-{uuid.uuid4().hex[:8]}",
            preview_limit=max_source_rows,
            connectors=connectors,
        )
        if local:
            from uzo_engine.runtime.local import LocalPreviewRunner
            from uzo_engine.runtime.preview import preview_node

            pr = preview_node(LocalPreviewRunner(), plan, node_id, limit=limit, ctx=ctx)
        else:
            from uzo_engine.runtime.engine import get_runtime

            runtime = get_runtime()
            try:
                runtime.start()
                pr = runtime.preview(plan, node_id, limit=limit, ctx=ctx)
            finally:
                runtime.close(stop_cluster=True, stop_prefect=True)
        if pr.error or pr.status != "succeeded":
            out.fail(1, pr.error or f"the preview {pr.status}", "run_failed")
        rows = pr.rows
        columns = [(c.name, c.dtype) for c in pr.schema]
    out.emit(
        ok=True,
        columns=[{"name": name, "type": dtype} for name, dtype in columns],
        rows=rows,
        profile=pr.profile,
        sampled=pr.sampled,
        source_rows=pr.source_rows,
        sampled_sources=pr.sampled_sources,
        max_source_rows=pr.source_row_budget,
    )
    if not as_json:
        _print_preview(out, node_id, columns, rows, pr)


def _print_preview(
    out: Output,
    node_id: str,
    columns: list[tuple[str, str]],
    rows: list[dict[str, Any]],
    pr: PreviewResult,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    from uzo_engine.cli.results import rich_table

    values = [[row.get(n) for n, _ in columns] for row in rows]
    out.console.print(rich_table(f"{node_id}: first {len(rows)} rows", columns, values))
    profile = Table(title=f"profile of the {pr.profile.get('row_count', len(rows))} rows shown")
    for col in ("column", "type", "nulls", "distinct", "min", "max", "mean"):
        profile.add_column(col, overflow="fold")
    for name, stats in (pr.profile.get("columns") or {}).items():
        cells = [name, stats.get("type"), stats.get("null_count"), stats.get("distinct_estimate")]
        cells += [stats.get("min"), stats.get("max"), stats.get("mean")]
        profile.add_row(*("" if c is None else escape(str(c)) for c in cells))
    out.console.print(profile)
    read = ", ".join(f"{escape(n)} {rows_read:,}" for n, rows_read in pr.source_rows.items())
    if pr.sampled:
        budget = f"{pr.source_row_budget:,}" if pr.source_row_budget else "?"
        out.console.print(
            f"[bold yellow]sampled[/]: {', '.join(map(escape, pr.sampled_sources))} reached "
            f"the budget of {budget} rows per source (--max-source-rows, "
            "UZO_PREVIEW_MAX_SOURCE_ROWS): these rows are computed on the rows read, not "
            f"the whole data. Rows read: {read}"
        )
    elif read:
        out.console.print(f"[dim]rows read: {read} (the whole sources, or enough of them)[/dim]")

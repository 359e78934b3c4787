"""``uzo run --show N / --output FILE [--node ID]``: the run's final tables.

Which tables. Without ``--node``, the workflow's *final tables*: the output of every
node that no edge leaves (each output port of it; a node of one port is named by its
id, one of several ports as ``ID:PORT``), in the workflow's topological order. A node
that has no output (a sink: ``parquet_sink``, ``sink``) stands for the table it wrote:
the output that feeds it. ``--node ID`` (or ``ID:PORT``) picks one node's output
instead (a sink's: the table it wrote), any node of the workflow: it is then compiled
as a step boundary, so that its table exists even where it would be fused into the next
node.

``--show N`` prints the first N rows of each table after the run summary: a rich table
on a terminal, aligned plain text when piped (``null`` for a missing value), and under
``--json`` the document's ``outputs``. ``--output FILE`` writes one table (the only
final table, or ``--node``'s) to ``FILE``, in the format its extension names
(:data:`OUTPUT_FORMATS`), atomically: staged next to the target and renamed over it
(:class:`uzo_connectors.files.staging.StagedFile`), so a failed write leaves the old file.

Only the picked steps' outputs are kept by the run (``keep_outputs``): nothing more is
held in memory (or the object store) than without these options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa
    from rich.console import Console
    from rich.table import Table

    from uzo_engine.plan import ExecutionPlan
    from uzo_engine.runtime.core import RunResult
    from uzo_engine.validation import ValidatedWorkflow

#: ``--output``'s extensions and the format each writes (``uzo_connectors.files.formats``)
OUTPUT_FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".json": "json",  # one JSON array of objects
    ".jsonl": "ndjson",  # one JSON object per line
    ".ndjson": "ndjson",
}


class PickError(ValueError):
    """``--node``/``--output`` cannot be used with this workflow (a usage error)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Pick:
    """One table to show or write: a node's output port."""

    node_id: str
    port: str
    only_port: bool = True  # the node has this one output port: named by its id alone

    @property
    def label(self) -> str:
        return self.node_id if self.only_port else f"{self.node_id}:{self.port}"


def _ports(wf: ValidatedWorkflow, node_id: str) -> list[Pick]:
    ports = wf.nodes[node_id].node_type.outputs
    return [Pick(node_id, p, len(ports) == 1) for p in ports]


def _tables_of(wf: ValidatedWorkflow, node_id: str) -> list[Pick]:
    """A node's output tables; a sink's (no output port): the table it wrote, its input."""
    if wf.nodes[node_id].node_type.outputs:
        return _ports(wf, node_id)
    return [
        Pick(e.source, e.source_port, len(wf.nodes[e.source].node_type.outputs) == 1)
        for e in wf.nodes[node_id].inputs.values()
    ]


def final_picks(wf: ValidatedWorkflow) -> list[Pick]:
    """The workflow's final tables (see the module), in topological order."""
    picks: dict[Pick, None] = {}
    for node_id in wf.order:
        if not wf.consumers(node_id):
            picks.update(dict.fromkeys(_tables_of(wf, node_id)))
    return list(picks)


def picks_for(wf: ValidatedWorkflow, node: str | None, output: Path | None) -> list[Pick]:
    """The tables ``--show``/``--output`` use; :class:`PickError` when none can be told."""
    if node is None:
        picks = final_picks(wf)
    elif node in wf.nodes:
        picks = _tables_of(wf, node)
    else:
        node_id, _, port = node.rpartition(":")
        if node_id not in wf.nodes:
            raise PickError(f"--node {node}: no node {node!r} in the workflow", "unknown_node")
        picks = [p for p in _ports(wf, node_id) if p.port == port]
        if not picks:
            ports = ", ".join(wf.nodes[node_id].node_type.outputs) or "none"
            raise PickError(
                f"--node {node}: node {node_id!r} has no output port {port!r} (ports: {ports})",
                "unknown_node",
            )
    if output is not None and len(picks) != 1:
        names = ", ".join(p.label for p in picks) or "none"
        where = "the workflow has" if node is None else f"--node {node} gives"
        raise PickError(
            f"--output writes one table; {where} {len(picks)} ({names}): "
            f"pick one with --node ID (or ID:PORT)",
            "invalid_output",
        )
    return picks


def check_output(path: Path) -> str | None:
    """Why ``--output path`` cannot be written (checked before the run), or None."""
    ext = path.suffix.lower()
    if ext not in OUTPUT_FORMATS:
        known = ", ".join(OUTPUT_FORMATS)
        return (
            f"--output {path}: cannot tell the format from the extension "
            f"{ext or '(none)'!r}; use one of {known}"
        )
    directory = path.parent
    if not directory.is_dir():
        return f"--output {path}: directory {str(directory)!r} does not exist"
    if path.is_dir():
        return f"--output {path}: is a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"--output {path}: directory {str(directory)!r} is not writable"
    return None


def keep_steps(plan: ExecutionPlan, picks: list[Pick]) -> list[str]:
    """The steps whose outputs the run must keep for ``picks``."""
    return sorted({plan.node_to_step[p.node_id] for p in picks})


@dataclass
class FinalTable:
    pick: Pick
    table: pa.Table | None
    missing: str | None = None  # why there is no table


def collect(result: RunResult, picks: list[Pick]) -> list[FinalTable]:
    """The picked tables of a finished run (fetched from the object store on Ray)."""
    found = []
    for pick in picks:
        try:
            found.append(FinalTable(pick, result.table(pick.node_id, pick.port)))
        except LookupError:  # KeyError too: not run, or a port not taken
            node = result.results.get(pick.node_id)
            status = node.status if node is not None else "not run"
            why = f"port {pick.port!r} was not taken" if status == "succeeded" else status
            found.append(FinalTable(pick, None, f"no table ({why})"))
    return found


def _columns(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def shown_doc(tables: list[FinalTable], limit: int) -> list[dict[str, Any]]:
    """The ``--json`` document's ``outputs``."""
    docs = []
    for t in tables:
        doc: dict[str, Any] = {
            "node_id": t.pick.node_id,
            "port": t.pick.port,
            "row_count": None,
            "columns": [],
            "rows": [],
            "missing": t.missing,
        }
        if t.table is not None:
            doc["row_count"] = t.table.num_rows
            doc["columns"] = _columns(t.table)
            doc["rows"] = t.table.slice(0, limit).to_pylist()
        docs.append(doc)
    return docs


def rich_table(title: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> Table:
    """A rich table of rows (values, one per column): names and types as headers, ``∅`` for
    null; nothing of the data is read as markup."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title))
    for name, dtype in columns:
        table.add_column(f"{escape(name)}\n[dim]{escape(dtype)}[/dim]")
    for row in rows:
        table.add_row(*("[dim]∅[/dim]" if v is None else escape(str(v)) for v in row))
    return table


def _plain_cell(value: Any) -> str:
    if value is None:
        return "null"
    text = str(value)
    # one row, one line: a value's own line breaks and tabs would break the layout
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def plain_lines(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """Rows as aligned plain text (two spaces between columns), a header first."""
    cells = [[_plain_cell(v) for v in row] for row in rows]
    widths = [max([len(name)] + [len(r[i]) for r in cells]) for i, name in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [line(columns), *(line(r) for r in cells)]


def _title(t: FinalTable, limit: int) -> str:
    if t.table is None:
        return f"{t.pick.label}: {t.missing}"
    n = t.table.num_rows
    if n <= limit:
        return f"{t.pick.label}: {n} row{'' if n == 1 else 's'}"
    return f"{t.pick.label}: first {limit} of {n} rows"


def print_tables(console: Console, tables: list[FinalTable], limit: int, rich: bool) -> None:
    """``--show``'s text output: each table under its title."""
    for t in tables:
        console.print()
        if t.table is None or not rich:
            console.print(_title(t, limit), markup=False, highlight=False, soft_wrap=True)
        if t.table is None:
            continue
        head = t.table.slice(0, limit)
        rows = [list(r) for r in zip(*(c.to_pylist() for c in head.columns), strict=True)]
        if rich:
            columns = [(f.name, str(f.type)) for f in head.schema]
            console.print(rich_table(_title(t, limit), columns, rows))
        else:
            for text in plain_lines(head.column_names, rows):
                console.print(text, markup=False, highlight=False, soft_wrap=True)


def write_output(table: pa.Table, path: Path) -> str:
    """Write ``table`` to ``path`` atomically in the format of its extension; the format."""
    from uzo_connectors.files.formats import FileFormat, Writer
    from uzo_connectors.files.staging import StagedFile

    fmt = FileFormat(OUTPUT_FORMATS[path.suffix.lower()])
    # the operator's own path: a symbolic link to the directory is followed (StagedFile
    # opens the directory itself without following one); a link at the target is replaced
    directory = os.path.realpath(path.parent)
    with StagedFile(directory, path.name, mode=None, keep_mode=True) as staged:
        writer = Writer(cast("BinaryIO", staged.file), fmt, table.schema)
        for batch in table.to_batches():
            writer.write(batch)
        writer.close()  # Parquet's footer, the JSON array: before the file is committed
    return fmt.value

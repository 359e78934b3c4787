"""``uzo run --local --show N / --output FILE / --node ID``: the final tables, shown and written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from uzo_api.cli import app
from uzo_engine.cli import results
from uzo_engine.compiler import CompileOptions, compile_workflow
from uzo_engine.validation import validate_workflow

runner = CliRunner()

ROWS = [
    {"id": 1, "amount": 10.5, "region": "eu", "note": "two\nlines"},
    {"id": 2, "amount": 3.0, "region": "us", "note": None},
    {"id": 3, "amount": 7.25, "region": "eu", "note": "x"},
]


def _node(node_id: str, node_type: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "default",
        "position": {"x": 0, "y": 0},
        "data": {"nodeType": node_type, "config": config},
    }


def _edge(source: str, target: str, handle: str | None = None) -> dict[str, Any]:
    edge = {"id": f"{source}-{target}", "source": source, "target": target}
    if handle is not None:
        edge["sourceHandle"] = handle
    return edge


def _doc(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}


def _chain(rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """src -> big (filter, fused with src) -> agg: one final table, ``agg``."""
    return _doc(
        [
            _node("src", "values", {"rows": rows or ROWS}),
            _node("big", "filter", {"condition": "amount > 1"}),
            _node(
                "agg",
                "aggregate",
                {
                    "group_by": ["region"],
                    "aggregations": [{"column": "amount", "func": "sum", "alias": "total"}],
                },
            ),
            _node("ordered", "sort", {"by": ["region"]}),
        ],
        [_edge("src", "big"), _edge("big", "agg"), _edge("agg", "ordered")],
    )


def _two_ends() -> dict[str, Any]:
    """src -> router: ``big`` on its true port, ``small`` on its false port."""
    return _doc(
        [
            _node("src", "values", {"rows": ROWS}),
            _node("split", "router", {"condition": "amount > 5"}),
            _node("big", "derive", {"columns": {"size": "'big'"}}),
            _node("small", "derive", {"columns": {"size": "'small'"}}),
        ],
        [
            _edge("src", "split"),
            _edge("split", "big", "true"),
            _edge("split", "small", "false"),
        ],
    )


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "flow.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def _run(*args: str) -> Any:
    return runner.invoke(app, ["run", "--local", *args])


def _staging_left(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(".uzo-staging-")]


# -- --show ----------------------------------------------------------------------------------


def test_show_prints_the_final_table_after_the_summary_plain_when_piped(tmp_path: Path) -> None:
    done = _run(_write(tmp_path, _chain()), "--show", "5")
    assert done.exit_code == 0, done.output
    out = done.stdout
    summary = out.index("succeeded in")
    assert out.index("ordered: 2 rows") > summary  # after the run summary
    lines = out[out.index("ordered: 2 rows") :].splitlines()
    assert lines[1].split() == ["region", "total"]
    assert lines[2].split() == ["eu", "17.75"]
    assert lines[3].split() == ["us", "3.0"]
    assert "┃" not in out[summary:]  # piped: no box drawing


def test_show_limits_rows_and_node_picks_a_fused_node(tmp_path: Path) -> None:
    done = _run(_write(tmp_path, _chain()), "--show", "2", "--node", "big")
    assert done.exit_code == 0, done.output
    lines = done.stdout[done.stdout.index("big: first 2 of 3 rows") :].splitlines()
    assert lines[1].split() == ["id", "amount", "region", "note"]
    assert lines[2].split() == ["1", "10.5", "eu", "two\\nlines"]  # one row, one line
    assert lines[3].split() == ["2", "3.0", "us", "null"]
    assert len([x for x in lines[1:] if x.strip()]) == 3  # header + 2 rows


def _gated() -> dict[str, Any]:
    """src -> gate (a branch taken only past 5 rows) -> alert: ``alert`` is skipped."""
    return _doc(
        [
            _node("src", "values", {"rows": ROWS}),
            _node("gate", "branch", {"condition": "row_count > 5"}),
            _node("alert", "derive", {"columns": {"alert": "'too many'"}}),
            _node("count", "aggregate", {"aggregations": [{"func": "count", "alias": "n"}]}),
        ],
        [_edge("src", "gate"), _edge("gate", "alert"), _edge("src", "count")],
    )


def test_show_every_final_table_in_topological_order(tmp_path: Path) -> None:
    done = _run(_write(tmp_path, _two_ends()), "--show", "10")
    assert done.exit_code == 0, done.output
    out = done.stdout
    big, small = out.index("big: 2 rows"), out.index("small: 1 row\n")
    assert big < small
    assert out[small:].splitlines()[2].split() == ["2", "3.0", "us", "null", "small"]


def test_show_says_when_a_final_node_was_skipped(tmp_path: Path) -> None:
    flow = _write(tmp_path, _gated())
    done = _run(flow, "--show", "3")
    assert done.exit_code == 0, done.output
    assert "alert: no table (skipped)" in done.stdout
    assert "count: 1 row" in done.stdout
    doc = json.loads(_run(flow, "--show", "3", "--json").stdout)
    alert = next(o for o in doc["outputs"] if o["node_id"] == "alert")
    assert alert == {
        "node_id": "alert",
        "port": "out",
        "row_count": None,
        "columns": [],
        "rows": [],
        "missing": "no table (skipped)",
    }


def test_show_json_has_the_rows_columns_and_count(tmp_path: Path) -> None:
    done = _run(_write(tmp_path, _chain()), "--show", "1", "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    assert doc["output_file"] is None
    (shown,) = doc["outputs"]
    assert shown["node_id"] == "ordered"
    assert shown["port"] == "out"
    assert shown["row_count"] == 2
    assert [c["name"] for c in shown["columns"]] == ["region", "total"]
    assert shown["rows"] == [{"region": "eu", "total": 17.75}]
    assert shown["missing"] is None


def test_without_show_the_document_has_empty_outputs(tmp_path: Path) -> None:
    doc = json.loads(_run(_write(tmp_path, _chain()), "--json").stdout)
    assert doc["outputs"] == []
    assert doc["output_file"] is None


# -- --output --------------------------------------------------------------------------------


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.from_arrow(pq.read_table(path))  # type: ignore[return-value]
    if path.suffix == ".csv":
        return pl.read_csv(path)
    if path.suffix == ".json":
        return pl.DataFrame(json.loads(path.read_text()))
    return pl.DataFrame([json.loads(line) for line in path.read_text().splitlines()])


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.json", "out.jsonl", "OUT.CSV"])
def test_output_writes_the_final_table_in_the_extensions_format(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    done = _run(_write(tmp_path, _chain()), "--output", str(target))
    assert done.exit_code == 0, done.output
    assert f"wrote 2 rows of ordered to {target}" in done.stdout
    frame = _read(target) if name != "OUT.CSV" else pl.read_csv(target)
    assert frame["region"].to_list() == ["eu", "us"]
    assert frame["total"].to_list() == [17.75, 3.0]
    assert _staging_left(tmp_path) == []


def test_output_json_document_and_replacing_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    done = _run(_write(tmp_path, _chain()), "--output", str(target), "--node", "big", "--json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["output_file"] == {
        "path": str(target),
        "format": "parquet",
        "node_id": "big",
        "port": "out",
        "rows": 3,
    }
    assert pq.read_table(target).column("id").to_pylist() == [1, 2, 3]


def test_a_sink_stands_for_the_table_it_wrote(tmp_path: Path) -> None:
    written = tmp_path / "sink.parquet"
    doc = _chain()
    doc["nodes"].append(_node("write", "parquet_sink", {"path": str(written)}))
    doc["edges"].append(_edge("ordered", "write"))
    target = tmp_path / "copy.csv"
    done = _run(_write(tmp_path, doc), "--output", str(target), "--show", "5")
    assert done.exit_code == 0, done.output
    assert "ordered: 2 rows" in done.stdout
    assert pl.read_csv(target).equals(pl.from_arrow(pq.read_table(written)))  # type: ignore[arg-type]


def test_a_failed_write_leaves_the_old_file_and_exits_1(tmp_path: Path) -> None:
    rows = [{"id": 1, "tags": [1, 2]}, {"id": 2, "tags": [3]}]
    doc = _doc([_node("src", "values", {"rows": rows})], [])
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    done = _run(_write(tmp_path, doc), "--output", str(target), "--json")
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert report["status"] == "succeeded"  # the run did; the file could not be written
    (error,) = report["errors"]
    assert error["code"] == "output_failed"
    assert error["node_id"] == "src"
    assert "--output" in error["message"]
    assert target.read_text() == "old\n"
    assert _staging_left(tmp_path) == []


def test_a_failed_run_writes_nothing(tmp_path: Path) -> None:
    doc = _chain()
    doc["nodes"].append(_node("bad", "derive", {"columns": {"x": "CAST(region AS INTEGER)"}}))
    doc["edges"].append(_edge("ordered", "bad"))
    target = tmp_path / "out.csv"
    done = _run(_write(tmp_path, doc), "--output", str(target), "--show", "3")
    assert done.exit_code == 1
    assert not target.exists()
    assert "ordered:" not in done.stdout  # nothing shown after a failure


def test_a_skipped_node_is_not_written(tmp_path: Path) -> None:
    target = tmp_path / "alert.csv"
    target.write_text("old\n")
    done = _run(_write(tmp_path, _gated()), "--output", str(target), "--node", "alert", "--json")
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded"
    assert report["output_file"] is None
    (error,) = report["errors"]
    assert error["code"] == "no_output"
    assert error["node_id"] == "alert"
    assert error["message"] == (
        f"--output {target}: alert produced no table (skipped); nothing written"
    )
    assert target.read_text() == "old\n"


# -- usage errors (exit code 2, before the run) ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("out.txt", "cannot tell the format from the extension '.txt'"),
        ("out", "cannot tell the format from the extension '(none)'"),
        ("missing/out.csv", "does not exist"),
    ],
)
def test_output_paths_refused_before_the_run(tmp_path: Path, name: str, message: str) -> None:
    flow = _write(tmp_path, _chain())
    target = tmp_path / name
    done = _run(flow, "--output", str(target))
    assert done.exit_code == 2
    assert f"--output {target}" in done.stderr
    assert message in done.stderr
    assert "succeeded" not in done.stdout  # refused before running
    as_json = json.loads(_run(flow, "--output", str(target), "--json").stdout)
    assert as_json["errors"][0]["code"] == "invalid_output"
    assert as_json["status"] is None


def test_output_into_a_directory_or_with_several_final_tables(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    done = _run(_write(tmp_path, _chain()), "--output", str(tmp_path / "dir.csv"))
    assert done.exit_code == 2
    assert "is a directory" in done.stderr
    two = _write(tmp_path, _two_ends(), "two.json")
    done = _run(two, "--output", str(tmp_path / "x.csv"))
    assert done.exit_code == 2
    assert "--output writes one table" in done.stderr
    assert "big, small" in done.stderr
    assert "--node" in done.stderr
    assert _run(two, "--output", str(tmp_path / "x.csv"), "--node", "small").exit_code == 0


def test_node_errors(tmp_path: Path) -> None:
    flow = _write(tmp_path, _chain())
    unknown = _run(flow, "--show", "3", "--node", "nope", "--json")
    assert unknown.exit_code == 2
    error = json.loads(unknown.stdout)["errors"][0]
    assert error["code"] == "unknown_node"
    assert "--node nope" in error["message"]
    alone = _run(flow, "--node", "big")
    assert alone.exit_code == 2
    assert "--node picks the table of --show or --output" in alone.stderr
    zero = _run(flow, "--show", "0")
    assert zero.exit_code == 2
    bad_port = _run(_write(tmp_path, _two_ends(), "two.json"), "--show", "1", "--node", "split:x")
    assert bad_port.exit_code == 2
    assert "no output port 'x' (ports: true, false)" in bad_port.stderr


# -- which tables ----------------------------------------------------------------------------


def test_final_tables_and_ports() -> None:
    wf = validate_workflow(_two_ends())
    assert [p.label for p in results.final_picks(wf)] == ["big", "small"]
    split = results.picks_for(wf, "split", None)
    assert [p.label for p in split] == ["split:true", "split:false"]
    assert [p.label for p in results.picks_for(wf, "split:false", None)] == ["split:false"]
    with pytest.raises(results.PickError, match="pick one with --node"):
        results.picks_for(wf, "split", Path("x.csv"))


def test_the_run_keeps_only_the_picked_steps() -> None:
    wf = validate_workflow(_chain())
    picks = results.picks_for(wf, "big", None)
    options = CompileOptions(materialize=frozenset({"big"}))
    plan = compile_workflow(wf, options=options)
    (step,) = results.keep_steps(plan, picks)
    assert plan.steps[step].node_ids[-1] == "big"
    assert len(plan.steps) > 1


def test_plain_lines_align_and_escape() -> None:
    lines = results.plain_lines(["a", "long_name"], [[1, None], ["x\ty", "z"]])
    assert lines == ["a     long_name", "1     null", "x\\ty  z"]

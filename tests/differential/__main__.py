"""``python -m tests.differential [--count N] [--seed S] [--json FILE] [--no-cases]``

Generates N expressions (seeded), adds the hand-written cases, evaluates everything in UZO
and DuckDB over the test table, prints the figures and the disagreements grouped by culprit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tests.differential.cases import CASES
from tests.differential.data import parquet_file
from tests.differential.grammar import corpus
from tests.differential.harness import run_differential
from tests.differential.report import render, to_json

DEFAULT_COUNT = 3000
DEFAULT_SEED = 1  # the seed of the pytest corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential", description=__doc__)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="generated expressions")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", type=Path, help="also write every result to this JSON file")
    parser.add_argument("--no-cases", action="store_true", help="leave out the hand-written cases")
    args = parser.parse_args(argv)
    # sqlglot warns about every EXTRACT from a TIMESTAMPTZ it parses
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    generated = corpus(args.count, args.seed) if args.count > 0 else []
    with parquet_file() as path:
        run = run_differential(path, generated, () if args.no_cases else CASES)
    title = f"UZO expressions vs DuckDB (seed {args.seed}, {args.count} generated)"
    sys.stdout.write(render(run, title))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(run), indent=1, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

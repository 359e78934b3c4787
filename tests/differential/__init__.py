"""A differential test of UZO's SQL expressions against DuckDB.

The same expressions run in UZO (a ``parquet_source -> derive`` workflow, and ``-> filter``
for boolean ones) and in DuckDB (``SELECT <expr> FROM read_parquet(...)``) over one typed
Parquet table of edge values; the answers are compared value by value.

- :mod:`.data`: the table (~40 rows: nulls, extremes, NaN, -0.0, unicode, leap days, zones);
- :mod:`.grammar`: the table-driven, seeded generator of typed expressions (one line per
  construct);
- :mod:`.cases`: hand-written tricky expressions;
- :mod:`.oracle`: DuckDB's answers; :mod:`.harness`: UZO's answers, the comparison and the
  culprit of each disagreement; :mod:`.report`: figures and grouped listing;
- :mod:`.documented`: the explained disagreements (the test fails on any other).

Run::

    .venv/bin/python -m tests.differential [--count N] [--seed S] [--json FILE]
    .venv/bin/pytest tests/differential            # cases + 3,000 generated (seed 1)
    .venv/bin/pytest tests/differential -m slow    # 20,000 generated (seed 2)
"""

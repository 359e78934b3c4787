"""The ``duckdb`` connector: DuckDB database files under a configured root directory."""

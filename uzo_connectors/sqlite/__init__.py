"""The ``sqlite`` connector: SQLite database files under a configured root directory."""

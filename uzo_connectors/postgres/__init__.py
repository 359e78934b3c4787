"""The ``postgres`` connector: PostgreSQL with an Arrow fast path (ADBC, COPY)."""

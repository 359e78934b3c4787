"""Integration tests of the engine runtime (Ray + Prefect)."""

"""Unit tests of the REST and GenAI connectors' configs (no network)."""

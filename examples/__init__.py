"""Example workflows (``*.json``) and the helpers that generate their data."""

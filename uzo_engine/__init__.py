"""uzo_engine."""

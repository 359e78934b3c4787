"""uzo_connectors."""

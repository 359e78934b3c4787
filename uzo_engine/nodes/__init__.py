"""Node types: the contract (base), the registry, and the built-in types."""

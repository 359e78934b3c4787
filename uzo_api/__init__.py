"""UZO control API: HTTP, auth, tenancy, metadata."""

__version__ = "0.1.0"

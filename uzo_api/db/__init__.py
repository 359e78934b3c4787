"""Metadata database: models, sessions, tenancy, migrations."""

"""The engine's command line: ``uzo validate``, ``uzo run``, ``uzo nodes`` (mounted by
``uzo_api.cli``, which adds the server's commands), and the output helpers every
``uzo`` command shares (``--json``, problem-style errors, exit codes).

They live with the engine because they need nothing above it: a workflow runs from
the CLI with no API server or database.
"""

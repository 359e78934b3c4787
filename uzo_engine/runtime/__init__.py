"""The engine runtime: Ray cluster, shared Prefect API, node actors, flow runs, dev preview.

Start with :func:`uzo_engine.runtime.engine.get_runtime`. Nothing here imports
Ray or Prefect at import time.
"""

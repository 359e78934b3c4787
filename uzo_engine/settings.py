"""Engine settings (env prefix ``UZO_``), built on demand by :func:`get_engine_settings`.

``UZO_RAY_ADDRESS`` unset: the engine starts a local Ray cluster (127.0.0.1, no
dashboard, capped object store, its session folders under ``UZO_HOME/ray``).
``UZO_PREFECT_API_URL`` unset: the engine starts one Prefect server per UZO_HOME
under ``UZO_HOME/prefect`` and shares it (reference counted, see prefect_server.py).
Like every UZO settings model, it also reads ``.env`` (or ``UZO_ENV_FILE``);
environment variables win over the file.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from uzo_connectors.settings import UzoSettings


class EngineSettings(UzoSettings):
    """Settings of the engine runtime (Ray cluster, Prefect API, actor pool)."""

    model_config = SettingsConfigDict(env_prefix="UZO_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".uzo",
        description="Local state: the local Prefect server (prefect/), the Ray token and the "
        "local cluster's session folders (ray/; /tmp/uzo-ray-<hash> if too long for Ray's "
        "socket paths).",
        json_schema_extra={"doc_default": "~/.uzo"},
    )

    # Ray
    ray_address: str | None = Field(
        default=None, description="Attach to this cluster ('auto', 'host:port', 'ray://...')."
    )
    ray_num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of the local cluster. Unset: all cores."
    )
    ray_object_store_mb: int = Field(
        default=1024, ge=64, description="Object store cap of the local cluster, in MB."
    )
    ray_namespace: str = Field(default="uzo", description="Ray namespace of UZO's named actors.")
    ray_log_to_driver: bool = Field(
        default=False, description="Echo Ray worker stdout/stderr in the driver process."
    )
    ray_auth_token: SecretStr | None = Field(
        default=None,
        description="Token of a cluster with token auth. Local cluster: generated once "
        "in UZO_HOME/ray/auth_token.",
        json_schema_extra={"doc_default": "generated"},
    )
    actor_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="CPU-lane node actors per process, each asking Ray for one CPU and running "
        "one step at a time. Unset: the cluster's CPUs.",
    )
    actor_cpus: float = Field(
        default=1.0,
        gt=0,
        le=64,
        description="CPUs each CPU-lane node actor reserves in Ray. Below 1, more processes "
        "(API replicas, workers, `uzo run`) fit their actors on one small cluster.",
    )
    actor_start_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long the runtime waits for Ray to place its node actors before it "
        "fails, saying what the cluster lacks.",
    )
    io_actors: int = Field(
        default=1,
        ge=1,
        le=64,
        description="I/O-lane node actors per process: they ask Ray for no CPU and run steps "
        "that only wait on the network (connector sources and sinks, llm) many at a time.",
    )
    io_concurrency: int = Field(
        default=256,
        ge=1,
        le=4096,
        description="Steps one I/O-lane actor runs at once (one thread each).",
    )

    # Prefect: the mirror of every run (ADR 0005)
    prefect_mirror: bool = Field(
        default=True,
        description="Mirror every run to Prefect as a flow run with a task run per step. "
        "False: no Prefect server is started or used.",
    )
    prefect_api_url: str | None = Field(
        default=None, description="External Prefect API (http://host:4200/api)."
    )
    prefect_server_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the local Prefect server UZO starts on 127.0.0.1, where it "
        "also serves Prefect's UI. Unset: a free port (`uzo serve` prints the address).",
        json_schema_extra={"doc_default": "a free port"},
    )
    prefect_server_start_timeout_seconds: float = Field(
        default=90.0,
        gt=0,
        description="How long the local Prefect server UZO starts may take to answer before "
        "the mirror warns that it does not (runs never wait for it).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="UZO's external PostgreSQL (owner URL): the local Prefect server then "
        "keeps its data in a 'prefect' database on that server instead of SQLite.",
    )
    prefect_database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL database of the local Prefect server (explicit)."
    )
    prefect_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU niceness of Prefect bookkeeping (the server UZO starts, the thread "
        "that mirrors runs to it): on a busy machine node work goes first. 0: off.",
    )
    prefect_record_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="A run still going this long after its start gets a RUNNING flow run; "
        "a shorter one is written once, in its final state (one request instead of two).",
    )
    prefect_mirror_give_up_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long the mirror keeps the runs it could not write while the "
        "Prefect API does not answer; then it drops them (a mirror gap, logged once).",
    )
    prefect_mirror_errors: bool = Field(
        default=False,
        description="Also send node error messages to Prefect. Prefect's UI has no tenancy, "
        "and errors can quote data: by default the mirror sends ids, statuses and times.",
    )

    # Runs
    cancel_grace_seconds: float = Field(
        default=5.0, gt=0, description="How long a cancelled run waits for its actors to stop."
    )

    # Previews
    preview_max_source_rows: int = Field(
        default=1_000_000,
        ge=0,
        description="Rows each source reads at most in a preview (`uzo preview`, "
        "Runtime.preview). A preview whose answer may depend on the rows left unread says "
        "so (`sampled`, with the rows each source read). 0: sources read everything.",
    )

    # The sql node (DuckDB)
    sql_memory_limit_mb: int = Field(
        default=2048,
        ge=64,
        le=1_048_576,
        description="DuckDB memory_limit of each sql node execution (it spills beyond it).",
    )
    sql_threads: int | None = Field(
        default=None, ge=1, le=256, description="DuckDB threads per sql node. Unset: all cores."
    )
    sql_temp_root: Path | None = Field(
        default=None,
        description="Where each sql node execution gets its private spill directory. "
        "Unset: the system temp directory.",
    )

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def ray_home(self) -> Path:
        return self.home / "ray"


@functools.cache
def get_engine_settings() -> EngineSettings:
    """The process-wide engine settings (read from the environment on first call)."""
    return EngineSettings()

"""The connector registry: lazy built-ins, entry points, metadata, helpful errors."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from uzo_connectors import registry
from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import ConfigError, ConnectorError, MissingDependencyError
from uzo_connectors.files.connector import FileConnector
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    registry.refresh()
    yield
    registry.refresh()


def context() -> ConnectorContext:
    return ConnectorContext(endpoint_policy=EndpointPolicy())


def test_builtins_are_lazy_strings() -> None:
    code = (
        "import sys, uzo_connectors.registry as r\n"
        "assert all(':' in v for v in r.BUILTINS.values())\n"
        "heavy = [m for m in ('s3fs', 'adlfs', 'gcsfs', 'paramiko', 'pyarrow', 'polars',"
        " 'uzo_connectors.files.connector') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_builtin_loads_and_publishes_metadata() -> None:
    infos = {i.name: i for i in registry.list_connector_types()}
    assert set(registry.BUILTINS) <= set(infos)
    s3 = infos["s3"]
    assert s3.category == "cloud storage"
    assert s3.capabilities["write"] is True
    assert "upsert" in s3.capabilities["write_modes"]
    prop = s3.config_schema["properties"]["secret_access_key"]
    assert prop["writeOnly"] is True
    assert prop["format"] == "password"
    assert s3.secret_fields == ("secret_access_key", "session_token")
    assert infos["file"].category == "file"
    assert infos["file"].to_dict()["config_schema"]["additionalProperties"] is False


def test_unknown_type_suggests_close_matches() -> None:
    with pytest.raises(ConnectorError, match=r"unknown connector type 's4'.*did you mean 's3'"):
        registry.get_connector_class("s4")
    with pytest.raises(ConnectorError, match=r"known: .*azure_blob"):
        registry.get_connector_class("zzz")


def test_missing_optional_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # `import s3fs` now raises ImportError
    connector = registry.create_connector("s3", {"bucket": "bucket", "anonymous": True}, context())
    with pytest.raises(MissingDependencyError) as info:
        connector.test_connection()
    assert info.value.extra == "s3"
    assert "uv sync --extra s3" in str(info.value)


def test_missing_dependency_at_class_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTINS, "mongo_fake", "uzo_fake_plugin_missing:Connector")

    def fake_import(name: str, package: str | None = None) -> Any:
        if name == "uzo_fake_plugin_missing":
            raise ModuleNotFoundError("No module named 'pymongo'", name="pymongo")
        return real_import(name, package)

    real_import = registry.importlib.import_module
    monkeypatch.setattr(registry.importlib, "import_module", fake_import)
    with pytest.raises(MissingDependencyError, match="--extra mongodb"):
        registry.get_connector_class("mongo_fake")


def test_import_optional_maps_every_declared_extra() -> None:
    expected = {
        "s3fs": "s3",
        "adlfs": "azure",
        "gcsfs": "gcs",
        "sshfs": "sftp",
        "paramiko": "sftp",
        "pymysql": "mysql",
        "pymongo": "mongodb",
        "openpyxl": "excel",
        "fastexcel": "excel",
    }
    for package, extra in expected.items():
        error = registry.missing_dependency(ModuleNotFoundError(name=package), "x")
        assert error is not None
        assert error.extra == extra
    assert registry.missing_dependency(ModuleNotFoundError(name="numpy"), "x") is None


def test_a_class_that_is_not_a_connector_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTINS, "bogus", "uzo_connectors.errors:ConnectorError")
    with pytest.raises(ConnectorError, match="is not a BaseConnector"):
        registry.get_connector_class("bogus")


def test_entry_points_extend_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = importlib.metadata.EntryPoints(
        [
            importlib.metadata.EntryPoint(
                name="my_files", value="uzo_connectors.files.connector:FileConnector",
                group=registry.ENTRY_POINT_GROUP,
            ),
            importlib.metadata.EntryPoint(
                name="s3", value="somewhere.else:Evil", group=registry.ENTRY_POINT_GROUP
            ),
        ]
    )  # fmt: skip

    def fake_entry_points(group: str) -> importlib.metadata.EntryPoints:
        assert group == registry.ENTRY_POINT_GROUP
        return eps

    monkeypatch.setattr(registry.importlib.metadata, "entry_points", fake_entry_points)
    registry.refresh()
    assert registry.get_connector_class("my_files") is FileConnector
    assert registry.available_types()["s3"] == registry.BUILTINS["s3"]  # built-ins win


def test_config_errors_name_the_field_and_hide_the_input(tmp_path: Path) -> None:
    secret = "super-secret-value"
    with pytest.raises(ConfigError) as info:
        registry.create_connector(
            "s3", {"bucket": "ab", "secret_access_key": secret, "typo": 1}, context()
        )
    message = str(info.value)
    assert "bucket" in message
    assert "typo" in message
    assert secret not in message
    connector = registry.create_connector("file", {"root": str(tmp_path)}, context())
    assert isinstance(connector, FileConnector)


def test_types_with_missing_packages_are_listed_with_their_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sshfs", None)  # as if the sftp extra were not installed
    infos = {i.name: i for i in registry.list_connector_types()}
    sftp = infos["sftp"]
    assert not sftp.installed
    assert sftp.missing_packages == ("sshfs",)
    assert sftp.extra == "sftp"
    assert sftp.to_dict()["installed"] is False
    assert infos["s3"].installed
    assert infos["s3"].extra == "s3"
    assert infos["file"].installed
    assert infos["file"].extra is None

"""The connector contract against real servers on loopback: S3, Azure Blob, GCS, SFTP, FTP.

Each test gets its own prefix (or remote directory), and writes are checked for
both a single-file target and a directory of part files.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.connectors.conftest import PASSWORD, USER
from uzo_connectors.base import BaseConnector, ConnectorContext, ReadRequest, WriteMode
from uzo_connectors.files.formats import FileFormat, Writer
from uzo_connectors.object_store.common import ObjectStoreConnector
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import (
    BadCredentials,
    ConnectorContract,
    make_sample_table,
    read_all,
    same_rows,
    write_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.connectors.conftest import (
        AzureServer,
        FTPServer,
        GCSServer,
        S3Server,
        SSHServer,
    )


def loopback() -> ConnectorContext:
    return ConnectorContext(endpoint_policy=EndpointPolicy(allow_loopback=True))


def build(type_key: str, **config: Any) -> ObjectStoreConnector[Any]:
    connector = create_connector(type_key, config, loopback())
    assert isinstance(connector, ObjectStoreConnector)
    return connector


def unique() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class ObjectStoreContract(ConnectorContract):
    """Sample data written straight through the filesystem; targets as file and directory."""

    @pytest.fixture(autouse=True)
    def _close_connectors(self, request: pytest.FixtureRequest) -> Iterator[None]:
        yield
        for name in ("connector", "bad_credentials"):
            value = request.node.funcargs.get(name)
            value = getattr(value, "connector", value)
            if isinstance(value, BaseConnector):
                value.close()

    @pytest.fixture
    def sample_dataset(self, connector: ObjectStoreConnector[Any], sample_table: pa.Table) -> str:
        store = connector.store()
        path = store.resolve("sample.parquet")
        store.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with store.fs.open(path, "wb") as fh:
            pq.write_table(sample_table, fh)
        store.refresh()
        return "sample.parquet"

    @pytest.fixture(params=["out/target.parquet", "out/target_dir"], ids=["file", "dir"])
    def writable_dataset(self, request: pytest.FixtureRequest) -> str:
        name: str = request.param
        return name

    def test_csv_and_hive_directory(self, connector: ObjectStoreConnector[Any]) -> None:
        store = connector.store()
        table = make_sample_table(4)
        for part in ("k=1", "k=2"):
            path = store.resolve(f"hive/{part}/data.csv")
            store.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with store.fs.open(path, "wb") as fh:
                writer = Writer(fh, FileFormat.CSV, table.schema)
                writer.write(table.to_batches()[0])
                writer.close()
        store.refresh()
        result = read_all(connector, "hive", predicate="k = 2 AND id >= 3")
        assert sorted(result.column("id").to_pylist()) == [3, 4]
        assert set(result.column("k").to_pylist()) == {2}
        assert read_all(connector, "hive/*/*.csv").num_rows == 8


# ----- S3 ----------------------------------------------------------------------------------


class TestS3(ObjectStoreContract):
    @pytest.fixture
    def connector(self, s3_server: S3Server) -> ObjectStoreConnector[Any]:
        return build(
            "s3",
            bucket=s3_server.bucket,
            prefix=unique(),
            endpoint_url=s3_server.endpoint,
            region="us-west-2",
            access_key_id=s3_server.key_id,
            secret_access_key=s3_server.secret,
        )

    @pytest.fixture
    def bad_credentials(self, s3_server: S3Server) -> BadCredentials:
        secret = "wrong-secret-" + uuid.uuid4().hex
        connector = build(
            "s3",
            bucket=s3_server.bucket,
            endpoint_url=s3_server.endpoint,
            region="us-west-2",
            access_key_id=s3_server.key_id,
            secret_access_key=secret,
        )
        return BadCredentials(connector, secret)


# ----- Azure Blob --------------------------------------------------------------------------


class TestAzureBlob(ObjectStoreContract):
    @pytest.fixture
    def connector(self, azure_server: AzureServer) -> ObjectStoreConnector[Any]:
        return build(
            "azure_blob",
            container=azure_server.container,
            prefix=unique(),
            account_name=azure_server.account,
            account_key=azure_server.key,
            endpoint_url=azure_server.endpoint,
        )

    @pytest.fixture
    def bad_credentials(self, azure_server: AzureServer) -> BadCredentials:
        import base64

        secret = base64.b64encode(uuid.uuid4().bytes * 4).decode()
        connector = build(
            "azure_blob",
            container=azure_server.container,
            account_name=azure_server.account,
            account_key=secret,
            endpoint_url=azure_server.endpoint,
        )
        return BadCredentials(connector, secret)


# ----- GCS ---------------------------------------------------------------------------------


class TestGCS(ObjectStoreContract):
    @pytest.fixture
    def connector(self, gcs_server: GCSServer) -> ObjectStoreConnector[Any]:
        return build(
            "gcs",
            bucket=gcs_server.bucket,
            prefix=unique(),
            anonymous=True,
            endpoint_url=gcs_server.endpoint,
        )

    @pytest.fixture
    def bad_credentials(self) -> BadCredentials | None:
        return None  # gcp-storage-emulator accepts any credentials: nothing to refuse

    def test_missing_bucket_is_a_clear_error(self, gcs_server: GCSServer) -> None:
        from uzo_connectors.errors import ConnectionTestError

        connector = build(
            "gcs", bucket="no-such-bucket", anonymous=True, endpoint_url=gcs_server.endpoint
        )
        with pytest.raises(ConnectionTestError, match="no-such-bucket"):
            connector.test_connection()


# ----- SFTP --------------------------------------------------------------------------------


class TestSFTP(ObjectStoreContract):
    @pytest.fixture
    def connector(self, sftp_server: SSHServer) -> ObjectStoreConnector[Any]:
        name = unique()
        (sftp_server.root / name).mkdir()
        return build(
            "sftp",
            host="127.0.0.1",
            port=sftp_server.port,
            username=USER,
            password=PASSWORD,
            root=f"/{name}",
        )

    @pytest.fixture
    def bad_credentials(self, sftp_server: SSHServer) -> BadCredentials:
        secret = "wrong-" + uuid.uuid4().hex
        connector = build(
            "sftp", host="127.0.0.1", port=sftp_server.port, username=USER, password=secret
        )
        return BadCredentials(connector, secret)

    def test_chroot_hides_the_real_path(
        self, connector: ObjectStoreConnector[Any], sftp_server: SSHServer
    ) -> None:
        write_table(connector, "x.parquet", make_sample_table(), WriteMode.OVERWRITE)
        root = connector.store().root
        assert (sftp_server.root / root.lstrip("/") / "x.parquet").exists()


# ----- FTP ---------------------------------------------------------------------------------


class TestFTP(ObjectStoreContract):
    @pytest.fixture
    def connector(self, ftp_server: FTPServer) -> ObjectStoreConnector[Any]:
        name = unique()
        (ftp_server.root / name).mkdir()
        return build(
            "ftp",
            host="127.0.0.1",
            port=ftp_server.port,
            username=USER,
            password=PASSWORD,
            root=f"/{name}",
        )

    @pytest.fixture
    def bad_credentials(self, ftp_server: FTPServer) -> BadCredentials:
        secret = "wrong-" + uuid.uuid4().hex
        connector = build(
            "ftp", host="127.0.0.1", port=ftp_server.port, username=USER, password=secret
        )
        return BadCredentials(connector, secret)


def test_tasks_survive_pickling_with_their_filesystem(s3_server: S3Server) -> None:
    """A read task is shipped to a Ray worker by pickle: it must reconnect and read there."""
    import pickle

    connector: BaseConnector[Any] = build(
        "s3",
        bucket=s3_server.bucket,
        prefix=unique(),
        endpoint_url=s3_server.endpoint,
        region="us-west-2",
        access_key_id=s3_server.key_id,
        secret_access_key=s3_server.secret,
    )
    table = make_sample_table(100)
    write_table(connector, "p.parquet", table, WriteMode.OVERWRITE)
    plan = connector.plan_read(ReadRequest("p.parquet"))
    batches = [b for t in plan.tasks for b in pickle.loads(pickle.dumps(t.read))()]
    assert same_rows(pa.Table.from_batches(batches), table)

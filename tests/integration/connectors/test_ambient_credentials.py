"""Tenant object-store connectors never use the UZO server's own identity.

Each test points the SDKs' credential sources at fakes on loopback: environment
keys (valid ones for moto, so the old behaviour would have *succeeded*), shared
credential files, the EC2/ECS/GCE metadata endpoints and Azure's managed-identity
endpoint (a :class:`CredentialTrap` that records every request). A config with no
credentials must be refused without a single request to a trap; an operator who
allows ambient credentials for a type gets the SDK's default chain back.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors.conftest import AZURITE_KEY
from uzo_connectors.base import ConnectorContext, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import BlockedEndpointError, ConfigError, ConnectionTestError
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import make_sample_table, read_all, same_rows, write_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.integration.connectors.conftest import (
        AzureServer,
        CredentialTrap,
        GCSServer,
        S3Server,
    )
    from uzo_connectors.base import BaseConnector


def context(*ambient: str) -> ConnectorContext:
    return ConnectorContext(
        EndpointPolicy(allow_loopback=True), ambient_credentials=frozenset(ambient)
    )


def every_use(connector: BaseConnector[Any]) -> list[Any]:
    schema = make_sample_table().schema
    return [
        connector.test_connection,
        connector.discover,
        lambda: connector.plan_read(ReadRequest("x.parquet")),
        lambda: connector.open_sink(WriteRequest("x.parquet", schema, WriteMode.OVERWRITE)),
    ]


def unique() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


# ----- S3 ----------------------------------------------------------------------------------


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    credential_trap: CredentialTrap,
    s3_server: S3Server,
) -> CredentialTrap:
    """Every source of botocore's and the AWS C++ SDK's default chains, set up to work:
    environment keys and a credentials file with moto's valid key, metadata and container
    credential endpoints on the trap."""
    shared = tmp_path / "aws-credentials"
    shared.write_text(
        f"[default]\naws_access_key_id = {s3_server.key_id}\n"
        f"aws_secret_access_key = {s3_server.secret}\n"
    )
    (tmp_path / "aws-config").write_text("[default]\nregion = us-west-2\n")
    env = {
        "AWS_ACCESS_KEY_ID": s3_server.key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
        "AWS_SHARED_CREDENTIALS_FILE": str(shared),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": credential_trap.url,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{credential_trap.url}/ecs-credentials",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    return credential_trap


def s3(server: S3Server, ctx: ConnectorContext | None = None, **config: Any) -> BaseConnector[Any]:
    base = {
        "bucket": server.bucket,
        "prefix": unique(),
        "endpoint_url": server.endpoint,
        "region": "us-west-2",
    }
    return create_connector("s3", {**base, **config}, ctx or context())


def test_s3_without_keys_is_refused(s3_server: S3Server, aws_env: CredentialTrap) -> None:
    connector = s3(s3_server)
    for use in every_use(connector):
        with pytest.raises(ConfigError, match="access_key_id and secret_access_key") as info:
            use()
        assert "anonymous: true" in str(info.value)
    assert aws_env.hits == []


def test_s3_keys_in_the_config_are_the_only_ones_used(
    s3_server: S3Server, aws_env: CredentialTrap
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    connector = s3(s3_server, access_key_id=s3_server.key_id, secret_access_key=wrong)
    with pytest.raises(ConnectionTestError) as info:
        connector.test_connection()  # moto refuses: the valid keys of the environment unused
    assert wrong not in str(info.value)
    good = s3(s3_server, access_key_id=s3_server.key_id, secret_access_key=s3_server.secret)
    table = make_sample_table(5)
    write_table(good, "t.parquet", table, WriteMode.OVERWRITE)
    assert same_rows(read_all(good, "t.parquet"), table)  # scanned by pyarrow's client
    assert aws_env.hits == []


@pytest.fixture
def public_bucket() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in for a public bucket: answers every request with an empty listing and
    records the headers (moto, with IAM on, fails on unsigned requests)."""
    import http.server
    import threading

    seen: list[dict[str, str]] = []
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>public</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
        b"<IsTruncated>false</IsTruncated></ListBucketResult>"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_s3_anonymous_never_looks_for_credentials(
    public_bucket: tuple[str, list[dict[str, str]]], aws_env: CredentialTrap
) -> None:
    """Unsigned requests from both clients (s3fs and pyarrow's), no credential lookup."""
    import pyarrow.fs as pafs

    endpoint, seen = public_bucket
    connector = create_connector(
        "s3",
        {"bucket": "public", "endpoint_url": endpoint, "region": "us-west-2", "anonymous": True},
        context(),
    )
    connector.test_connection()
    arrow_fs = connector.store().arrow_fs  # type: ignore[attr-defined]
    assert arrow_fs.get_file_info(pafs.FileSelector("public", recursive=True)) == []
    assert len(seen) >= 2
    assert not [h for h in seen if "authorization" in h or "x-amz-security-token" in h]
    assert aws_env.hits == []


def test_an_operator_can_allow_ambient_credentials_for_s3(
    s3_server: S3Server, aws_env: CredentialTrap
) -> None:
    connector = s3(s3_server, context("s3"))
    connector.test_connection()
    table = make_sample_table(7)
    write_table(connector, "t.parquet", table, WriteMode.OVERWRITE)
    assert same_rows(read_all(connector, "t.parquet"), table)
    # only that type: gcs, say, still refuses
    assert context("gcs").allows_ambient("s3") is False
    with pytest.raises(ConfigError):
        s3(s3_server, context("gcs")).test_connection()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"access_key_id": "AKIA"}, "both access_key_id and secret_access_key"),
        ({"secret_access_key": "s"}, "both access_key_id and secret_access_key"),
        ({"session_token": "t"}, "session_token needs"),
        ({"anonymous": True, "access_key_id": "a", "secret_access_key": "s"}, "anonymous"),
    ],
)
def test_s3_half_given_credentials_are_config_errors(
    s3_server: S3Server, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        s3(s3_server, **config)


# ----- GCS ---------------------------------------------------------------------------------


@pytest.fixture
def google_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, credential_trap: CredentialTrap
) -> CredentialTrap:
    """google-auth's default chain, all on the trap: a credentials file whose refresh goes
    there, and the metadata server."""
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "c",
                "client_secret": "s",
                "refresh_token": "r",
                "token_uri": f"{credential_trap.url}/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GCE_METADATA_HOST", credential_trap.host_port)
    monkeypatch.setenv("GCE_METADATA_IP", credential_trap.host_port)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("NO_GCE_CHECK", raising=False)
    return credential_trap


def gcs(server: GCSServer, **config: Any) -> BaseConnector[Any]:
    base = {"bucket": server.bucket, "prefix": unique(), "endpoint_url": server.endpoint}
    return create_connector("gcs", {**base, **config}, context())


def test_gcs_without_credentials_is_refused(
    gcs_server: GCSServer, google_env: CredentialTrap
) -> None:
    connector = gcs(gcs_server)
    for use in every_use(connector):
        with pytest.raises(ConfigError, match="service_account_json or token") as info:
            use()
        assert "anonymous: true" in str(info.value)
    assert google_env.hits == []


@pytest.mark.parametrize(
    "kind", ["external_account", "authorized_user", "impersonated_service_account", None]
)
def test_gcs_refuses_credential_sources_other_than_service_account_keys(
    gcs_server: GCSServer, google_env: CredentialTrap, kind: str | None
) -> None:
    info: dict[str, Any] = {
        "audience": "//iam.googleapis.com/x",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"{google_env.url}/sts",
        "credential_source": {"url": f"{google_env.url}/subject", "file": "/etc/passwd"},
        "refresh_token": "r",
        "client_id": "c",
        "client_secret": "s",
    }
    if kind is not None:
        info["type"] = kind
    with pytest.raises(ConfigError, match="service_account_json") as error:
        gcs(gcs_server, service_account_json=json.dumps(info))
    assert "only service account keys" in str(error.value)
    assert google_env.hits == []


def _service_account(**extra: Any) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
            "client_email": "sa@p.iam.gserviceaccount.com",
            "client_id": "1",
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"credential_source": {"file": "/etc/passwd"}}, "credential_source"),
        ({"token_uri": "http://oauth2.googleapis.com/token"}, "https"),
        ({"universe_domain": "evil.example"}, "googleapis.com"),
        ({"service_account_impersonation_url": "https://x"}, "impersonation"),
    ],
)
def test_gcs_service_account_keys_are_allow_listed(
    gcs_server: GCSServer, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        gcs(gcs_server, service_account_json=_service_account(**extra))


def test_gcs_foreign_token_uri_goes_through_the_ssrf_policy(
    gcs_server: GCSServer, google_env: CredentialTrap
) -> None:
    connector = gcs(
        gcs_server,
        service_account_json=_service_account(token_uri="https://169.254.169.254/token"),
    )
    with pytest.raises(BlockedEndpointError, match="link-local"):
        connector.test_connection()
    assert google_env.hits == []


def test_gcs_service_account_key_becomes_google_credentials(gcs_server: GCSServer) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    connector = gcs(
        gcs_server,
        service_account_json=_service_account(
            private_key=pem, auth_uri="https://accounts.google.com/o/oauth2/auth"
        ),
    )
    credentials = connector._token()  # type: ignore[attr-defined]
    assert isinstance(credentials, service_account.Credentials)
    assert credentials._token_uri == "https://oauth2.googleapis.com/token"
    assert credentials.service_account_email == "sa@p.iam.gserviceaccount.com"


def test_gcs_anonymous_never_looks_for_credentials(
    gcs_server: GCSServer, google_env: CredentialTrap
) -> None:
    connector = gcs(gcs_server, anonymous=True)
    connector.test_connection()
    table = make_sample_table(3)
    write_table(connector, "t.parquet", table, WriteMode.OVERWRITE)
    assert same_rows(read_all(connector, "t.parquet"), table)
    assert google_env.hits == []


# ----- Azure Blob --------------------------------------------------------------------------


@pytest.fixture
def azure_env(
    monkeypatch: pytest.MonkeyPatch, credential_trap: CredentialTrap, tmp_path: Path
) -> CredentialTrap:
    """Managed identity (App Service / Arc / legacy MSI) on the trap, and adlfs's own
    environment variables holding the emulator's valid key."""
    env = {
        "IDENTITY_ENDPOINT": f"{credential_trap.url}/msi/token",
        "IDENTITY_HEADER": "trap",
        "MSI_ENDPOINT": f"{credential_trap.url}/msi/token",
        "MSI_SECRET": "trap",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": credential_trap.url,
        "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        "AZURE_CONFIG_DIR": str(tmp_path / "azure-cli"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE", "AZURE_STORAGE_CONNECTION_STRING"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return credential_trap


def azure(
    server: AzureServer, ctx: ConnectorContext | None = None, **config: Any
) -> BaseConnector[Any]:
    base = {"container": server.container, "prefix": unique()}
    return create_connector("azure_blob", {**base, **config}, ctx or context())


def test_azure_account_name_alone_is_refused(
    azure_server: AzureServer, azure_env: CredentialTrap
) -> None:
    connector = azure(
        azure_server, account_name=azure_server.account, endpoint_url=azure_server.endpoint
    )
    for use in every_use(connector):
        with pytest.raises(ConfigError, match="account_key or sas_token") as info:
            use()
        assert "anonymous: true" in str(info.value)
    assert azure_env.hits == []


def test_azure_anonymous_never_asks_for_a_token(
    azure_server: AzureServer, azure_env: CredentialTrap
) -> None:
    connector = azure(
        azure_server,
        account_name=azure_server.account,
        endpoint_url=azure_server.endpoint,
        anonymous=True,
    )
    with pytest.raises(ConnectionTestError):
        connector.test_connection()  # a private container refuses anonymous requests
    assert azure_env.hits == []


def test_azure_connection_string_is_rebuilt_from_checked_parts(
    azure_server: AzureServer, azure_env: CredentialTrap
) -> None:
    cs = (
        f"DefaultEndpointsProtocol=http;AccountName={azure_server.account};"
        f"AccountKey={azure_server.key};BlobEndpoint={azure_server.endpoint};"
    )
    connector = azure(azure_server, connection_string=cs)
    table = make_sample_table(4)
    write_table(connector, "t.parquet", table, WriteMode.OVERWRITE)
    assert same_rows(read_all(connector, "t.parquet"), table)
    assert azure_env.hits == []


def test_azure_sas_token(azure_server: AzureServer, azure_env: CredentialTrap) -> None:
    import datetime as dt

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        account_name=azure_server.account,
        container_name=azure_server.container,
        account_key=azure_server.key,
        permission=ContainerSasPermissions(read=True, write=True, list=True, delete=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    connector = azure(
        azure_server,
        account_name=azure_server.account,
        sas_token=sas,
        endpoint_url=azure_server.endpoint,
    )
    table = make_sample_table(4)
    write_table(connector, "t.parquet", table, WriteMode.OVERWRITE)
    assert same_rows(read_all(connector, "t.parquet"), table)
    assert azure_env.hits == []


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("UseDevelopmentStorage=true", "UseDevelopmentStorage"),
        ("DevelopmentStorageProxyUri=http://127.0.0.1:9", "DevelopmentStorageProxyUri"),
        ("BlobSecondaryEndpoint=http://169.254.169.254/x", "BlobSecondaryEndpoint"),
        ("QueueEndpoint=http://169.254.169.254/x", "QueueEndpoint"),
        ("SomethingNew=1", "SomethingNew"),
    ],
)
def test_azure_connection_string_keys_are_allow_listed(
    azure_server: AzureServer, extra: str, key: str
) -> None:
    cs = (
        f"AccountName={azure_server.account};AccountKey={azure_server.key};"
        f"BlobEndpoint={azure_server.endpoint};{extra}"
    )
    with pytest.raises(ConfigError, match="connection_string") as info:
        azure(azure_server, connection_string=cs)
    assert key in str(info.value)
    assert azure_server.key not in str(info.value)


@pytest.mark.parametrize(
    ("suffix", "host"),
    [("", "devstoreaccount1.blob.core.windows.net"), (";EndpointSuffix=corp.example", "")],
)
def test_azure_effective_host_without_blob_endpoint_is_checked(
    azure_server: AzureServer, suffix: str, host: str
) -> None:
    """No BlobEndpoint: https://<account>.blob.<suffix> is the host checked (here it
    resolves to the metadata address)."""
    host = host or "devstoreaccount1.blob.corp.example"
    seen: list[str] = []

    def resolver(name: str) -> list[str]:
        seen.append(name)
        return ["169.254.169.254"]

    cs = f"AccountName={azure_server.account};AccountKey={AZURITE_KEY}{suffix}"
    ctx = ConnectorContext(EndpointPolicy(resolver=resolver))
    connector = create_connector("azure_blob", {"container": "data", "connection_string": cs}, ctx)
    with pytest.raises(BlockedEndpointError, match="link-local"):
        connector.test_connection()
    assert seen == [host]

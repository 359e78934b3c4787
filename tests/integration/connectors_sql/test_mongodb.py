"""The ``mongodb`` connector against nx-27017 (MongoDB wire protocol on SQLite)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from bson import ObjectId
from pymongo import MongoClient

from uzo_connectors.base import ConnectorContext, Incremental, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectionTestError,
    ConnectorError,
    WriteError,
)
from uzo_connectors.mongodb.config import MongoDBConfig
from uzo_connectors.mongodb.connector import MongoDBConnector
from uzo_connectors.sql.reader import IncrementalReadPlan
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import (
    BadCredentials,
    ConnectorContract,
    assert_no_secret,
    make_sample_table,
    read_all,
    read_plan,
    same_rows,
    write_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from tests.integration.connectors_sql.conftest import MongoServer

pytestmark = pytest.mark.integration

DB = "uzo_conn"
LOOPBACK = ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests())


def make(
    server: MongoServer, context: ConnectorContext = LOOPBACK, **over: Any
) -> MongoDBConnector:
    config = MongoDBConfig.model_validate(
        {"host": "127.0.0.1", "port": server.port, "database": DB, "direct_connection": True} | over
    )
    return MongoDBConnector(config, context)


@pytest.fixture(scope="module")
def raw(mongo_server: MongoServer) -> Iterator[Database[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(
        "127.0.0.1", mongo_server.port, directConnection=True, tz_aware=True
    )
    yield client[DB]
    client.close()


@pytest.fixture
def mongo(mongo_server: MongoServer) -> Iterator[MongoDBConnector]:
    connector = make(mongo_server)
    yield connector
    connector.close()


@pytest.fixture
def fresh(raw: Database[dict[str, Any]]) -> Iterator[str]:
    """A collection name unused so far (dropped again afterwards)."""
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    raw.drop_collection(name)


class TestMongoContract(ConnectorContract):
    @pytest.fixture
    def connector(self, mongo: MongoDBConnector) -> MongoDBConnector:
        return mongo

    @pytest.fixture
    def sample_dataset(self, raw: Database[dict[str, Any]], sample_table: pa.Table) -> str:
        raw.drop_collection("contract_sample")
        raw["contract_sample"].insert_many(sample_table.to_pylist())
        return "contract_sample"

    @pytest.fixture
    def writable_dataset(self, fresh: str) -> str:
        return fresh

    @pytest.fixture
    def bad_credentials(self, mongo_server: MongoServer) -> BadCredentials:
        secret = "mongo-Wrong-Secret-42"
        return BadCredentials(make(mongo_server, username="uzo", password=secret), secret)


# ----- reads ----------------------------------------------------------------------------------

PEOPLE = [
    {"n": 1, "name": "ada", "address": {"city": "London", "geo": {"lat": 51.5}}, "tags": ["a"]},
    {"n": 2, "name": "bob", "address": {"city": "Paris"}, "tags": []},
    {"n": 3, "name": "cy", "address": {"city": "Rome", "geo": {"lat": 41.9}}, "tags": ["b", "c"]},
    {"n": 4, "name": "di", "score": 2.5},
]


@pytest.fixture
def people(raw: Database[dict[str, Any]], fresh: str) -> str:
    raw[fresh].insert_many([dict(d) for d in PEOPLE])
    return fresh


def test_filter_is_pushed_down(mongo: MongoDBConnector, people: str) -> None:
    def names(flt: Any) -> list[str]:
        table = read_all(mongo, people, columns=("name",), options={"filter": flt})
        return sorted(table.column("name").to_pylist())

    assert names({"n": {"$gte": 3}}) == ["cy", "di"]
    assert names(json.dumps({"$or": [{"name": "ada"}, {"address.city": "Rome"}]})) == ["ada", "cy"]
    assert names('{"n": {"$in": [1, 4]}}') == ["ada", "di"]
    with pytest.raises(ConfigError, match="JSON"):
        mongo.plan_read(ReadRequest(people, options={"filter": "{not json"}))
    with pytest.raises(ConfigError, match="predicate"):
        mongo.plan_read(ReadRequest(people, predicate="n > 1"))


@pytest.mark.parametrize(
    "flt",
    [
        {"$where": "sleep(1000) || true"},
        {"$expr": {"$function": {"body": "function() {return true}", "args": [], "lang": "js"}}},
        {"$and": [{"n": 1}, {"$or": [{"$where": "true"}]}]},
        {"n": {"$gt": 0}, "x": {"$elemMatch": {"$accumulator": {}}}},
        '{"n": {"$code": "function() {}"}}',
        '{"$WHERE": "true"}',
    ],
)
def test_javascript_operators_are_refused(mongo: MongoDBConnector, people: str, flt: Any) -> None:
    with pytest.raises(ConfigError, match="JavaScript"):
        mongo.plan_read(ReadRequest(people, options={"filter": flt}))


def test_nested_flatten_vs_struct(mongo: MongoDBConnector, people: str) -> None:
    flat = read_all(mongo, people, options={"filter": {"n": 1}})
    assert flat.schema.field("address.city").type == pa.string()
    assert flat.schema.field("address.geo.lat").type == pa.float64()
    assert flat.schema.field("tags").type == pa.list_(pa.string())
    row = flat.to_pylist()[0]
    assert row["address.city"] == "London"
    assert row["address.geo.lat"] == 51.5
    assert row["score"] is None  # seen in the sample, absent here

    nested = read_all(mongo, people, options={"nested": "struct"}).sort_by("n")
    address = nested.schema.field("address").type
    assert pa.types.is_struct(address)
    assert address.field("geo").type == pa.struct([pa.field("lat", pa.float64())])
    rows = nested.to_pylist()
    assert rows[0]["address"] == {"city": "London", "geo": {"lat": 51.5}}
    assert rows[1]["address"] == {"city": "Paris", "geo": None}
    assert rows[3]["address"] is None

    projected = read_all(mongo, people, columns=("address.city", "n"))
    assert projected.schema.names == ["address.city", "n"]
    cities = {r["n"]: r["address.city"] for r in projected.to_pylist()}
    assert cities == {1: "London", 2: "Paris", 3: "Rome", 4: None}


def test_objectid_datetime_and_mixed_types(
    mongo: MongoDBConnector, raw: Database[dict[str, Any]], fresh: str
) -> None:
    at = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
    ref = ObjectId()
    raw[fresh].insert_many(
        [
            {"k": 1, "at": at, "ref": ref, "mixed": 5, "num": 1, "blob": b"\x00\x01"},
            {"k": 2, "at": None, "ref": ref, "mixed": "five", "num": 2.5},
            {"k": 3, "mixed": {"a": 1}, "num": None, "only_null": None},
            {"k": 4, "mixed": True},
        ]
    )
    info = {d.name: d for d in mongo.discover()}[fresh]
    assert info.schema is not None
    assert info.num_rows == 4
    schema = info.schema
    assert schema.field("_id").type == pa.string()
    assert schema.field("ref").type == pa.string()
    assert schema.field("at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("mixed").type == pa.string()
    assert schema.field("num").type == pa.float64()  # int + double widen to double
    assert schema.field("only_null").type == pa.string()
    assert schema.field("blob").type == pa.binary()
    rows = {r["k"]: r for r in read_all(mongo, fresh).to_pylist()}
    assert rows[1]["ref"] == str(ref)
    assert ObjectId.is_valid(rows[1]["_id"])
    assert rows[1]["at"] == at
    assert [rows[k]["mixed"] for k in (1, 2, 3, 4)] == ["5", "five", '{"a": 1}', "true"]
    assert rows[1]["num"] == 1.0
    assert rows[1]["blob"] == b"\x00\x01"
    # a value the sample did not see, of another type, is a clear error
    raw[fresh].insert_one({"k": 5, "num": "oops"})
    plan = mongo.plan_read(ReadRequest(fresh, options={"sample_size": 4}))
    with pytest.raises(ConnectorError, match=r"'num'.*sample_size"):
        read_plan(plan)


def test_incremental_high_water_marks(
    mongo: MongoDBConnector, raw: Database[dict[str, Any]], fresh: str
) -> None:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    raw[fresh].insert_many(
        [{"seq": i, "at": base + dt.timedelta(hours=i), "kind": i % 2} for i in range(1, 21)]
    )
    plan = mongo.plan_read(ReadRequest(fresh, incremental=Incremental("seq", 15)))
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == 20
    assert read_plan(plan).column("seq").to_pylist() == [16, 17, 18, 19, 20]

    plan = mongo.plan_read(
        ReadRequest(
            fresh, incremental=Incremental("seq", 5), limit=3, options={"filter": {"kind": 0}}
        )
    )
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == 10
    assert read_plan(plan).column("seq").to_pylist() == [6, 8, 10]

    plan = mongo.plan_read(ReadRequest(fresh, incremental=Incremental("at", base.isoformat())))
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == base + dt.timedelta(hours=20)
    assert read_plan(plan).num_rows == 20

    empty = mongo.plan_read(ReadRequest(fresh, incremental=Incremental("seq", 20)))
    assert isinstance(empty, IncrementalReadPlan)
    assert empty.high_water_mark is None
    assert read_plan(empty).num_rows == 0

    # ObjectId watermarks travel as hex strings and come back as ObjectIds
    ids = sorted(str(d["_id"]) for d in raw[fresh].find({}, {"_id": 1}))
    by_id = mongo.plan_read(ReadRequest(fresh, incremental=Incremental("_id", ids[-3])))
    assert isinstance(by_id, IncrementalReadPlan)
    assert by_id.high_water_mark == ids[-1]
    assert read_plan(by_id).column("_id").to_pylist() == ids[-2:]


def test_batches_are_bounded_and_tasks_pickle(
    mongo: MongoDBConnector, raw: Database[dict[str, Any]], fresh: str
) -> None:
    raw[fresh].insert_many([{"i": i} for i in range(500)])
    plan = mongo.plan_read(ReadRequest(fresh, columns=("i",), batch_size=64))
    task = pickle.loads(pickle.dumps(plan.tasks[0]))
    sizes = [b.num_rows for b in task.read()]
    assert sum(sizes) == 500
    assert max(sizes) <= 64


# ----- writes ---------------------------------------------------------------------------------


def test_nested_columns_and_ids_round_trip(
    mongo: MongoDBConnector, people: str, fresh: str
) -> None:
    copy = fresh + "_copy"
    table = read_all(mongo, people)  # flattened: address.city, address.geo.lat, _id as hex
    try:
        write_table(mongo, copy, table, WriteMode.FAIL_IF_EXISTS)
        raw_doc = mongo.db[copy].find_one({"n": 1})
        assert raw_doc is not None
        assert isinstance(raw_doc["_id"], ObjectId)
        assert raw_doc["address"] == {"city": "London", "geo": {"lat": 51.5}}
        assert same_rows(read_all(mongo, copy).select(table.column_names), table, keys=("n",))
        # upsert by _id replaces the same documents
        changed = table.filter(pa.compute.equal(table.column("n"), 2))
        changed = changed.set_column(
            changed.schema.get_field_index("name"), "name", pa.array(["bobby"])
        )
        write_table(mongo, copy, changed, WriteMode.UPSERT, keys=("_id",))
        names = {r["n"]: r["name"] for r in read_all(mongo, copy).to_pylist()}
        assert names == {1: "ada", 2: "bobby", 3: "cy", 4: "di"}
    finally:
        mongo.db.drop_collection(copy)


def test_upsert_on_nested_key_and_last_row_wins(mongo: MongoDBConnector, fresh: str) -> None:
    table = pa.table({"key.a": [1, 2], "key.b": ["x", "y"], "v": [10, 20]})
    write_table(mongo, fresh, table, WriteMode.APPEND)
    changes = pa.table({"key.a": [1, 1, 3], "key.b": ["x", "x", "z"], "v": [11, 12, 30]})
    write_table(mongo, fresh, changes, WriteMode.UPSERT, keys=("key.a", "key.b"), batch_rows=2)
    got = read_all(mongo, fresh).sort_by("key.a").to_pylist()
    assert [(r["key.a"], r["v"]) for r in got] == [(1, 12), (2, 20), (3, 30)]
    with pytest.raises(ConfigError, match="keys"):
        mongo.open_sink(WriteRequest(fresh, table.schema, mode=WriteMode.UPSERT))
    with pytest.raises(ConfigError, match="sub-document"):
        mongo.open_sink(WriteRequest(fresh, pa.schema([("a", pa.int64()), ("a.b", pa.int64())])))


def test_abort_of_a_new_collection_leaves_nothing(mongo: MongoDBConnector, fresh: str) -> None:
    sample = make_sample_table()
    for mode in (WriteMode.APPEND, WriteMode.OVERWRITE, WriteMode.FAIL_IF_EXISTS):
        sink = mongo.open_sink(WriteRequest(fresh, sample.schema, mode=mode))
        for batch in sample.to_batches(max_chunksize=3):
            sink.write(batch)
        sink.abort()
        sink.abort()  # idempotent
        assert fresh not in mongo.collection_names()


def test_failure_mid_write_rolls_back(
    mongo: MongoDBConnector, raw: Database[dict[str, Any]], fresh: str
) -> None:
    sample = make_sample_table()
    write_table(mongo, fresh, sample, WriteMode.APPEND)
    raw[fresh].create_index("name", unique=True)
    for mode, keys in (
        (WriteMode.OVERWRITE, ()),
        (WriteMode.APPEND, ()),
        (WriteMode.UPSERT, ("id",)),
    ):
        sink = mongo.open_sink(WriteRequest(fresh, sample.schema, mode=mode, keys=keys))
        sink.write(pa.RecordBatch.from_pylist([{"id": 100, "name": "new", "amount": 1.0}]))
        dup = {"id": 101, "name": "new", "amount": 2.0}  # duplicates the row just written
        with pytest.raises(WriteError, match="left as it was") as info:
            sink.write(pa.RecordBatch.from_pylist([dup], schema=sample.schema))
        assert "11000" in str(info.value) or "duplicate" in str(info.value).lower()
        sink.abort()
        with pytest.raises(WriteError, match="finished"):
            sink.write(sample.to_batches()[0])
        assert same_rows(read_all(mongo, fresh), sample), mode


def test_commit_then_abort_is_a_no_op(mongo: MongoDBConnector, fresh: str) -> None:
    sample = make_sample_table(3)
    with mongo.open_sink(WriteRequest(fresh, sample.schema)) as sink:
        sink.write(sample.to_batches()[0])
        result = sink.commit()
    sink.abort()
    assert result.rows_written == 3
    assert same_rows(read_all(mongo, fresh), sample)


# ----- credentials and endpoints --------------------------------------------------------------


def test_bad_password_in_uri_is_not_leaked(mongo_server: MongoServer) -> None:
    secret = "p@ss:w/rd-in-URI"
    from urllib.parse import quote

    uri = f"mongodb://uzo:{quote(secret, safe='')}@127.0.0.1:{mongo_server.port}/{DB}"
    connector = MongoDBConnector(
        MongoDBConfig(uri=uri, direct_connection=True, timeout_ms=3000),  # type: ignore[arg-type]
        LOOPBACK,
    )
    with pytest.raises(ConnectionTestError, match="credentials") as info:
        connector.test_connection()
    assert_no_secret(info.value, secret)
    assert_no_secret(info.value, quote(secret, safe=""))
    assert quote(secret, safe="") not in repr(connector.config)
    connector.close()


@pytest.mark.parametrize(
    "config",
    [
        {"host": "169.254.169.254"},
        {"host": "127.0.0.1"},
        {"uri": "mongodb://u:pw-never-used@169.254.169.254:27017/db"},
        {"uri": "mongodb://u:pw-never-used@8.8.8.8,127.0.0.1:27017/db?replicaSet=rs"},
        {"uri": "mongodb://u:pw-never-used@[::ffff:127.0.0.1]/db"},
        {"uri": "mongodb://%2Ftmp%2Fmongodb-27017.sock/db"},
    ],
)
def test_default_policy_refuses_internal_hosts_before_connecting(config: dict[str, Any]) -> None:
    full = {"database": "db", "password": "pw-never-used"} | config
    connector = MongoDBConnector(
        MongoDBConfig.model_validate(full), ConnectorContext(endpoint_policy=EndpointPolicy())
    )
    with pytest.raises(BlockedEndpointError) as info:
        connector.test_connection()
    assert connector._client is None  # no client, so no connection attempt
    assert_no_secret(info.value, "pw-never-used")


def test_srv_records_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from pymongo.synchronous.srv_resolver import _SrvResolver

    class Record:
        def __init__(self, host: str) -> None:
            self.target = type("T", (), {"to_text": lambda _s, **_k: host})()
            self.port = 27017

    targets = ["a.db.example.com", "meta.db.example.com"]
    monkeypatch.setattr(_SrvResolver, "_resolve_uri", lambda *_a: [Record(t) for t in targets])
    addresses = {"a.db.example.com": ["93.184.216.34"], "meta.db.example.com": ["169.254.169.254"]}
    policy = EndpointPolicy(resolver=lambda host: addresses.get(host, ["93.184.216.34"]))
    connector = MongoDBConnector(
        MongoDBConfig(uri="mongodb+srv://u:srv-secret@db.example.com/x"),  # type: ignore[arg-type]
        ConnectorContext(endpoint_policy=policy),
    )
    with pytest.raises(BlockedEndpointError, match="SRV") as info:
        connector.test_connection()
    assert_no_secret(info.value, "srv-secret")


def test_config_needs_one_endpoint_and_a_database() -> None:
    with pytest.raises(ValueError, match="either"):
        MongoDBConfig()
    with pytest.raises(ValueError, match="mongodb://"):
        MongoDBConfig(uri="http://x")  # type: ignore[arg-type]
    connector = MongoDBConnector(MongoDBConfig(host="8.8.8.8"), LOOPBACK)
    with pytest.raises(ConfigError, match="database"):
        connector.test_connection()

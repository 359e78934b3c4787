"""MongoDB writes: every mode runs inside one multi-document transaction.

- ``append``: ``insert_many(ordered=False)`` in chunks of ``write_batch_size``.
- ``upsert``: ``bulk_write`` of ``ReplaceOne(keys filter, document, upsert=True)``
  (ordered, so the last row per key wins within a write).
- ``overwrite``: ``delete_many({})`` then inserts, in the same transaction.
- ``fail_if_exists``: refused when the collection exists, then like append.

``commit`` commits the transaction; ``abort`` (or any failure) aborts it, so
the target is as it was, including a collection the write would have created.

Why not stage-and-rename for overwrite: ``renameCollection`` with
``dropTarget`` is the atomic swap on a real MongoDB, but nx-27017 (our test
server) runs renames in the ``admin`` database and ignores ``dropTarget``,
answering ``ok`` without renaming, so that path could not be tested. A
transaction gives every mode (not just overwrite) an abort that restores the
target; it needs a server with transactions: a replica set or sharded cluster
(a standalone ``mongod`` refuses them with a clear error), and very large
writes must fit MongoDB's transaction lifetime (``transactionLifetimeLimitSeconds``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from uzo_connectors.base import Sink, WriteMode, WriteResult
from uzo_connectors.errors import ConfigError, ConnectorError, WriteError
from uzo_connectors.mongodb.documents import check_write_columns, to_documents
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    import pyarrow as pa

    from uzo_connectors.base import WriteRequest
    from uzo_connectors.mongodb.connector import MongoDBConnector

_NO_TRANSACTIONS = (20, 263)  # IllegalOperation (standalone), OperationNotSupportedInTransaction


class MongoSink(Sink):
    def __init__(self, connector: MongoDBConnector, request: WriteRequest) -> None:
        self._c = connector
        self._request = request
        self._rows = 0
        self._bytes = 0
        self._done = False
        self._session: Any = None
        if request.mode == WriteMode.UPSERT and not request.keys:
            raise ConfigError("keys: an upsert needs at least one key column")
        missing = [k for k in request.keys if k not in request.schema.names]
        if missing:
            raise ConfigError(f"keys: {missing} are not columns of the data")
        check_write_columns(request.schema.names)
        self._collection = connector.collection(request.dataset)
        try:
            connector.check_topology()
            exists = request.dataset in connector.collection_names()
            if exists and request.mode == WriteMode.FAIL_IF_EXISTS:
                raise WriteError(f"{request.dataset!r} already exists (mode fail_if_exists)")
            self._session = connector.client.start_session()
            self._session.start_transaction()
            if exists and request.mode == WriteMode.OVERWRITE:
                self._collection.delete_many({}, session=self._session)
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc

    def _as_write_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ConnectorError) or not isinstance(exc, Exception):
            return exc
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if getattr(exc, "code", None) in _NO_TRANSACTIONS:
            text = (
                "this MongoDB server does not support transactions (a replica set or sharded"
                f" cluster is needed for writes that can be rolled back): {text}"
            )
        return WriteError(
            f"writing {self._request.dataset!r} failed; the target was left as it was: "
            + self._c.scrub(text)
        )

    def write(self, batch: pa.RecordBatch) -> None:
        if self._done:
            raise WriteError("the write is already finished")
        if batch.num_rows == 0:
            return
        chunk = self._c.config.write_batch_size
        try:
            docs = to_documents(batch)
            for start in range(0, len(docs), chunk):
                part = docs[start : start + chunk]
                if self._request.mode == WriteMode.UPSERT:
                    replace_one = import_optional("pymongo", "mongodb").ReplaceOne
                    keys = self._request.keys
                    ops = [replace_one(_key_filter(d, keys), d, upsert=True) for d in part]
                    self._collection.bulk_write(ops, ordered=True, session=self._session)
                else:
                    self._collection.insert_many(part, ordered=False, session=self._session)
            self._rows += batch.num_rows
            self._bytes += batch.nbytes
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc

    def commit(self) -> WriteResult:
        if self._done:
            raise WriteError("the write is already finished")
        try:
            self._session.commit_transaction()
        except BaseException as exc:
            self.abort()
            raise self._as_write_error(exc) from exc
        self._done = True
        self._end()
        return WriteResult(
            dataset=self._request.dataset,
            rows_written=self._rows,
            bytes_written=self._bytes,
            schema=self._request.schema,
        )

    def abort(self) -> None:
        """Roll the write back; safe in every state (before start, after failures, twice)."""
        if self._done:
            return
        self._done = True
        session = self._session
        try:
            if session is not None and session.in_transaction:
                session.abort_transaction()
        except Exception:  # the server aborts an unfinished transaction itself
            pass
        finally:
            self._end()

    def _end(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):  # ending a session is best effort
                session.end_session()


def _key_filter(doc: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for key in keys:
        value: Any = doc
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
    return out

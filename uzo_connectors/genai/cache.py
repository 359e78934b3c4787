"""A response cache for model calls: in-memory LRU, optionally backed by SQLite on disk.

Keys are SHA-256 digests of the canonical JSON of (model, messages, params), so
the same prompt to the same model with the same parameters is answered once.
The SQLite file (``genai-cache.sqlite3`` under the given directory) is created
on first use, never on construction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uzo_connectors.genai.client import Usage

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_FILE = "genai-cache.sqlite3"


@dataclass(frozen=True)
class CachedResponse:
    text: str
    usage: Usage  # what the original call cost


def cache_key(model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"model": model, "messages": list(messages), "params": dict(params)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """Thread-safe; ``directory`` None keeps everything in memory."""

    def __init__(self, max_entries: int = 10_000, directory: str | Path | None = None) -> None:
        self.max_entries = max_entries
        self.directory = Path(directory) if directory is not None else None
        self._memory: OrderedDict[str, CachedResponse] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0

    def _connection(self) -> sqlite3.Connection | None:
        if self.directory is None:
            return None
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.directory / _FILE, check_same_thread=False)
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, text TEXT NOT NULL, usage TEXT NOT NULL, created REAL)"
            )
            db.commit()
            self._db = db
        return self._db

    def _remember(self, key: str, value: CachedResponse) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return value
            db = self._connection()
            row = None
            if db is not None:
                row = db.execute(
                    "SELECT text, usage FROM responses WHERE key = ?", (key,)
                ).fetchone()
            if row is None:
                self.misses += 1
                return None
            usage = json.loads(row[1])
            value = CachedResponse(text=row[0], usage=Usage(**usage))
            self._remember(key, value)
            self.hits += 1
            return value

    def put(self, key: str, value: CachedResponse) -> None:
        with self._lock:
            self._remember(key, value)
            db = self._connection()
            if db is not None:
                usage = value.usage
                db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                    (
                        key,
                        value.text,
                        json.dumps(
                            {
                                "prompt_tokens": usage.prompt_tokens,
                                "completion_tokens": usage.completion_tokens,
                                "total_tokens": usage.total_tokens,
                            }
                        ),
                        time.time(),
                    ),
                )
                db.commit()

    def __len__(self) -> int:
        return len(self._memory)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

"""The persistent LLM response cache: ``<workspace>/.torchscout/llm_cache.sqlite``.

One row per distinct request, keyed by a SHA-256 over (purpose, prompt version, model
identity, the exact messages). A repeated request is answered from here without calling the
model, so a research run can be replayed for free and identically. SQLite gives atomic,
concurrent-safe writes across processes (WAL mode) without a lock file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TypedDict

CACHE_FILE_NAME = "llm_cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def cache_key(*, purpose: str, prompt_version: str, model: str, messages: list[dict[str, str]]) -> str:
    """The stable key of one request (messages as ``[{"role", "content"}]``)."""
    canonical = json.dumps(
        {"purpose": purpose, "prompt_version": prompt_version, "model": model, "messages": messages},
        sort_keys=True, ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CacheStats(TypedDict):
    entries: int
    by_purpose: dict[str, int]  # purpose -> cached responses


class ResponseCache:
    """A small keyed store of LLM responses in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            with connection:  # commits on success, rolls back on error
                yield connection

    def get(self, key: str) -> str | None:
        if not self.path.exists():
            return None
        with self._connect() as connection:
            row = connection.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, *, purpose: str, prompt_version: str, model: str,
            messages: list[dict[str, str]], response: str) -> None:
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, purpose, prompt_version, model, json.dumps(messages, ensure_ascii=False),
                 response, time.time()),
            )

    def stats(self) -> CacheStats:
        """Row counts per purpose (for reports and tests)."""
        if not self.path.exists():
            return {"entries": 0, "by_purpose": {}}
        with self._connect() as connection:
            rows = connection.execute("SELECT purpose, COUNT(*) FROM responses GROUP BY purpose").fetchall()
        by_purpose = {purpose: count for purpose, count in rows}
        return {"entries": sum(by_purpose.values()), "by_purpose": by_purpose}

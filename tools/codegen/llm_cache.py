"""The persistent LLM response cache: ``<workspace>/.torchscout/llm_cache.sqlite``.

One row per distinct request, keyed by a SHA-256 over (purpose, prompt version, model
identity, the exact messages, and the options that change the answer such as a temperature).
A repeated request is answered from here without calling the model, so a research run can be
replayed for free and identically. SQLite gives atomic, concurrent-safe writes across
processes (WAL mode) without a lock file.

Only answers that were *used* are replayed: every reply is stored as pending, and the caller
marks the replies of a generation, plan or analysis that succeeded as accepted
(:meth:`ResponseCache.accept`). A failed generation is never answered from the cache, so running
it again asks the model again. Rows of older versions (before the ``accepted`` column) count as
not accepted for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
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
    created_at REAL NOT NULL,
    accepted INTEGER NOT NULL DEFAULT 0
)
"""


def cache_key(*, purpose: str, prompt_version: str, model: str, messages: list[dict[str, str]],
              options: Mapping[str, object] | None = None) -> str:
    """The stable key of one request (messages as ``[{"role", "content"}]``; ``options`` only when set,
    so a plain request keeps the key it always had)."""
    request: dict[str, object] = {"purpose": purpose, "prompt_version": prompt_version, "model": model,
                               "messages": messages}
    if options:
        request["options"] = options
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CacheStats(TypedDict):
    entries: int                 # accepted answers (the ones a replay uses)
    by_purpose: dict[str, int]   # purpose -> accepted answers


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
            columns = {row[1] for row in connection.execute("PRAGMA table_info(responses)")}
            if "accepted" not in columns:  # a cache written before answers were checked
                connection.execute("ALTER TABLE responses ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0")
            with connection:  # commits on success, rolls back on error
                yield connection

    def get(self, key: str) -> str | None:
        """The accepted answer stored under ``key``, or None."""
        if not self.path.exists():
            return None
        with self._connect() as connection:
            row = connection.execute("SELECT response FROM responses WHERE key = ? AND accepted = 1",
                                     (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, *, purpose: str, prompt_version: str, model: str,
            messages: list[dict[str, str]], response: str) -> None:
        """Store a reply as pending (not replayed until :meth:`accept`)."""
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (key, purpose, prompt_version, model, json.dumps(messages, ensure_ascii=False),
                 response, time.time()),
            )

    def accept(self, keys: list[str]) -> None:
        """Mark the replies under ``keys`` as used: later identical requests are answered with them."""
        if not keys or not self.path.exists():
            return
        with self._connect() as connection:
            connection.executemany("UPDATE responses SET accepted = 1 WHERE key = ?", [(key,) for key in keys])

    def stats(self) -> CacheStats:
        """Accepted answers per purpose (for reports and tests)."""
        if not self.path.exists():
            return {"entries": 0, "by_purpose": {}}
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT purpose, COUNT(*) FROM responses WHERE accepted = 1 GROUP BY purpose").fetchall()
        by_purpose = {purpose: count for purpose, count in rows}
        return {"entries": sum(by_purpose.values()), "by_purpose": by_purpose}

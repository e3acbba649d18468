"""A LangGraph SQLite checkpointer on a long-lived connection (research runs and agent threads alike).

The connection is shared by LangGraph's worker threads (``check_same_thread=False``) and in WAL
mode, so ``torchscout history`` can read a run while another process is still writing it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver


def open_sqlite_saver(path: Path) -> SqliteSaver:
    """A SqliteSaver on the database file ``path`` (created with its folder when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(connection)
    saver.setup()
    return saver

"""Run names and the checkpoint threads behind them: one name, one run, per workspace.

A run started by the CLI is the thread named after it; a run started through a LangGraph server
(``langgraph dev``) lives in a thread with the server's id (a UUID). Both claim their name in
``runs/<name>/thread.json`` before they write anything else there, so ``torchscout runs``,
``history``, ``resume``, ``report`` and ``replay`` find a server's run by its name, and a second
run with a used name is refused instead of mixing two runs in one folder. Runs written before
this index existed have no ``thread.json``: their thread is their name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import resolve, workspace_root

THREAD_FILE = "thread.json"


def used_name_message(run_name: str) -> str:
    """The one-line refusal of a used run name, with the three ways out."""
    return (f"a run named {run_name!r} already exists in this workspace: start a new run with another name "
            f"(--name), finish it with `torchscout resume {run_name}`, or fork it with "
            f"`torchscout replay {run_name} --checkpoint ID`")


def _index_file(run_name: str) -> Path:
    return resolve(f"runs/{run_name}/{THREAD_FILE}", kind="run folder")


def _read_claim(path: Path) -> str:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["thread_id"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ToolError(f"{path.parent.name}/{THREAD_FILE} is damaged ({exc}); it should read "
                        f'{{"run_name": "{path.parent.name}", "thread_id": "<the run\'s thread>"}}') from exc


def recorded_thread(run_name: str) -> str | None:
    """The thread recorded for ``run_name`` (None when the run has no index entry)."""
    path = _index_file(run_name)
    if not path.is_file():
        return None
    return _read_claim(path)


def claim_run(run_name: str, thread_id: str) -> None:
    """Record that ``run_name`` is thread ``thread_id``; refuse a name another thread holds.

    Claiming again from the same thread (a resumed or re-run ``setup``) is a no-op. The file is
    created exclusively, so two processes starting the same name cannot both win.
    """
    path = _index_file(run_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if recorded_thread(run_name) != thread_id:
            raise ToolError(used_name_message(run_name)) from None
        return
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"run_name": run_name, "thread_id": thread_id}, handle)


def thread_of(run_name: str) -> str:
    """The checkpoint thread of run ``run_name`` (its own name for CLI runs and older runs)."""
    return recorded_thread(run_name) or run_name


def names_by_thread() -> dict[str, str]:
    """Thread id -> run name for every indexed run whose thread is not its name (server runs)."""
    names = {}
    for path in sorted((workspace_root() / "runs").glob(f"*/{THREAD_FILE}")):
        thread_id = _read_claim(path)
        if thread_id != path.parent.name:
            names[thread_id] = path.parent.name
    return names


def folder_in_use(run_name: str) -> bool:
    """Whether ``runs/<name>/`` already holds a run (its task.yaml, or a claim by a thread)."""
    folder = resolve(f"runs/{run_name}", kind="run folder")
    return (folder / "task.yaml").is_file() or (folder / THREAD_FILE).is_file()

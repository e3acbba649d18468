"""One process at a time per run: a lock file in the state folder, holding the holder's pid.

``<workspace>/.torchscout/locks/<run>.lock`` is locked with ``flock`` for as long as a process
runs, resumes or replays that run; a second process asking for the same run is refused with a
message naming the holder. The kernel releases the lock when its process ends however it ends
(``kill -9`` included), so a lock file left by a dead process is simply taken over and its pid
replaced: there is no stale lock to clean up by hand.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError

LOCKS_FOLDER = "locks"
# the rule every run name follows (a task name's): one plain path segment
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RunLockedError(ToolError):
    """Another process is running this run; nothing was started."""


def lock_path(run_name: str) -> Path:
    if not isinstance(run_name, str) or not RUN_NAME_PATTERN.match(run_name):
        raise ToolError(f"{run_name!r} is not a run name (letters, digits, '_', '-' or '.', at most 64); "
                        "`torchscout runs` lists the runs of this workspace")
    return get_settings().state_dir / LOCKS_FOLDER / f"{run_name}.lock"


@contextlib.contextmanager
def run_lock(run_name: str) -> Iterator[None]:
    """Hold run ``run_name``'s lock for the block; raise RunLockedError when another process holds it."""
    path = lock_path(run_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunLockedError(
                f"run {run_name!r} is already running in another process (pid {holder}); wait for it to finish "
                f"(`torchscout runs` shows it), or stop that process first. Nothing was started") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # the file stays (others may be waiting on it); the pid goes
    finally:
        os.close(descriptor)  # releases the flock


def lock_holder(run_name: str) -> str | None:
    """The pid of the process holding run ``run_name``'s lock right now, or None when nobody holds it."""
    path = lock_path(run_name)
    if not path.exists():
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
        return None
    finally:
        os.close(descriptor)

"""The client side of the warm fork server: start it, send jobs, wait for their replies.

Jobs from several threads run side by side: each gets an ``id``; one reader thread hands every
reply line to the caller waiting for that id. A server that dies or stops answering is replaced;
the jobs it was running come back as ``SandboxServerLost``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from torchscout.tools.errors import ToolError
from torchscout.tools.sandbox.environment import child_environment
from torchscout.tools.sandbox.types import SandboxJob, SandboxReply

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("server.py")
SERVER_START_TIMEOUT_S = 120.0
# slack on top of a job's own limit for fork, result transfer and the server's bookkeeping
CLIENT_SLACK_S = 30.0
# imported once in the server so that jobs (which use torchscout's loaders and probes) start warm
PRELOAD_MODULES = ["torchscout.tools", "torchscout.tools.sandbox.runner:prime_torch"]
LOST: SandboxReply = {"ok": False, "error_type": "SandboxServerLost",
        "error": "the sandbox server stopped answering; it has been restarted"}


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: SandboxReply = {}
        self.server: subprocess.Popen | None = None


class ForkServer:
    """One warm fork server process and the replies on their way back from it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # starting, stopping and writing to the server
        self._process: subprocess.Popen | None = None
        self._starting: subprocess.Popen | None = None  # started, not yet ready: no job runs in it
        self._waiting: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)

    def _start(self) -> subprocess.Popen:
        started = time.monotonic()
        process = subprocess.Popen(
            # -P: do not put tools/sandbox/ on sys.path (its modules must not shadow top-level ones)
            [sys.executable, "-P", str(SERVER_SCRIPT), *PRELOAD_MODULES],
            # every job is a fork of the server, and /proc/self/environ shows the environment the server
            # started with: it gets no secret, whatever a job is allowed later (jobs get theirs one by one)
            env=child_environment(os.environ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=str(SERVER_SCRIPT.parent.parent),
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
        )
        assert process.stdout is not None
        self._starting = process
        try:
            ready, _, _ = select.select([process.stdout], [], [], SERVER_START_TIMEOUT_S)
            hello = process.stdout.readline() if ready else b""
        finally:
            self._starting = None
        if not hello or not json.loads(hello).get("ready"):
            self._stop(process)
            raise ToolError("the sandbox server did not start (could it import torch?)")
        threading.Thread(target=self._read_replies, args=(process,), name="sandbox-replies", daemon=True).start()
        logger.debug("sandbox server %d ready after %.2f s", process.pid, time.monotonic() - started)
        return process

    def _read_replies(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            reply = json.loads(line)
            waiter = self._waiting.pop(int(reply.pop("id", 0)), None)
            if waiter is not None:
                waiter.reply = reply
                waiter.done.set()
        self._fail_waiting(process)

    def _fail_waiting(self, process: subprocess.Popen) -> None:
        with self._lock:
            if self._process is process:
                self._process = None
            lost = [waiter for waiter in self._waiting.values() if waiter.server is process]
        for waiter in lost:
            waiter.reply = dict(LOST)
            waiter.done.set()

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            process.kill()
            process.wait()

    def stop_at_exit(self) -> None:
        """:meth:`stop`, except that a server still starting is killed instead of waited for: a command
        that started it early and then failed (a bad task file) exits at once, not seconds later."""
        starting = self._starting
        if starting is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(starting.pid, signal.SIGKILL)  # its own session: the server and nothing else
        self.stop()

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            self._stop(process)

    def ensure_started(self) -> subprocess.Popen:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            return self._process

    def _send(self, job: SandboxJob, waiter: _Waiter) -> subprocess.Popen:
        line = json.dumps(job).encode("utf-8") + b"\n"
        for attempt in (1, 2):
            process = self.ensure_started()
            waiter.server = process
            try:
                with self._lock:
                    assert process.stdin is not None
                    process.stdin.write(line)
                    process.stdin.flush()
                return process
            except (BrokenPipeError, ValueError):
                with self._lock:
                    if self._process is process:
                        self._process = None
                if attempt == 2:
                    raise ToolError("the sandbox server died and could not be restarted") from None
        raise AssertionError("unreachable")

    def submit(self, job: SandboxJob) -> SandboxReply:
        """Send ``job`` and wait for its reply (a dict with ``ok``)."""
        job_id = next(self._ids)
        waiter = _Waiter()
        self._waiting[job_id] = waiter
        process = self._send({**job, "id": job_id}, waiter)
        if waiter.done.wait(float(job["timeout_s"]) + CLIENT_SLACK_S):
            return waiter.reply
        # the server itself is stuck: replace it; this job (and any other it runs) is reported lost
        self._waiting.pop(job_id, None)
        with self._lock:
            if self._process is process:
                self._process = None
        process.kill()
        self._stop(process)
        return dict(LOST)


SERVER = ForkServer()
atexit.register(SERVER.stop_at_exit)

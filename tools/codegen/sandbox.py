"""Run code in a child process with a time limit and a memory limit; get structured JSON back.

Every tool that executes generated or user code it has not vetted (model validation, the model
summary, custom optimizer probes) goes through :func:`run_in_sandbox`::

    from torchscout.tools.codegen.sandbox import run_in_sandbox

    result = run_in_sandbox(probe_optimizer, {"script_path": "/abs/ws/opt.py"}, timeout_s=60)
    if not result.ok:
        raise result.to_error("validating the optimizer")   # UserCodeError with the traceback tail
    report = result.value                                    # whatever probe_optimizer returned

The job function must be a **module-level function importable by name** (it is called as
``module:qualname`` in the child), take JSON-able keyword arguments and return JSON-able data
(dicts, lists, str, int, float, bool, None). An exception it raises becomes
``ok=False`` with ``error_type``, ``error`` and the last lines of the ``traceback``; an
exception may carry ``sandbox_details`` (JSON-able) which arrives as ``details``.

How it runs. A warm fork server (``sandbox_server.py``, started on first use, once per
process) imports torch once; each job is a fresh ``fork()`` of it, so a job costs a few
milliseconds instead of the ~1.5-2 s of importing torch in a new interpreter. The child gets
the caller's current environment and working directory (plus ``TORCHSCOUT_WORKSPACE`` set to
the resolved workspace, so settings made with ``configure()`` reach it), its own process group
(a timeout kills it and everything it started), stdin from /dev/null, and its stdout/stderr
captured (the tail comes back as ``output``). The server also imports ``torchscout.tools``
and primes torch's lazy set-up (meta kernels, FlopCounterMode tables) once, so jobs start warm;
a job's own module is imported in the server after its first clean run. Workspace code is
loaded fresh in every job (``loading.load_module`` keys modules by content hash), but edits
to torchscout's own source reach jobs only after :func:`shutdown` (or a new process).

Memory limit. ``RLIMIT_AS`` (address space) is unusable with torch: importing torch alone
maps several GiB of virtual address space, and CUDA reserves far more. The child instead
lowers its soft ``RLIMIT_DATA``, which since Linux 4.7 counts private writable memory (heap
and anonymous mmaps -- where CPU tensors live) but not file mappings of shared libraries or
``PROT_NONE`` reservations. An allocation past the limit raises ``MemoryError`` /
"DefaultCPUAllocator: can't allocate memory" in the child, reported as an ordinary error.
The limit is counted on top of what the warm server already holds (torch and torchscout
imported: several hundred MB), so ``memory_limit_bytes`` is what the job itself may allocate.
It does not bound GPU memory. (Jobs here run on the CPU or the meta device; a job that
initialises CUDA in the child under this limit has not been exercised on a GPU machine.)

Jobs are serialised through one server (a lock); concurrent callers wait their turn.
"""

from __future__ import annotations

import atexit
import inspect
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from torchscout.tools.errors import CommandTimeoutError, ToolError, UserCodeError
from torchscout.tools.workspace import workspace_root

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("sandbox_server.py")
SERVER_START_TIMEOUT_S = 120.0
# slack on top of a job's own limit for fork, result transfer and the server's bookkeeping
CLIENT_SLACK_S = 30.0
DEFAULT_TIMEOUT_S = 120.0
# imported once in the server so that jobs (which use torchscout's loaders and probes) start warm
PRELOAD_MODULES = ["torchscout.tools", "torchscout.tools.codegen.sandbox:prime_torch"]


def _default_memory_limit() -> int:
    """Half the machine's RAM, at most 16 GiB: room for a ResNet-50 forward, not for a runaway."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        physical = 8 << 30
    return int(min(physical // 2, 16 << 30))


DEFAULT_MEMORY_LIMIT_BYTES = _default_memory_limit()


class SandboxJob(TypedDict):
    """One job as the client sends it to the fork server (a JSON line)."""

    function: str  # module:qualname
    kwargs: dict[str, Any]  # the job function's keyword arguments, JSON-able
    timeout_s: float
    memory_limit_bytes: int | None  # the child's soft RLIMIT_DATA on top of the server's own
    threads: int | None  # torch intra-op threads in the child
    cwd: str
    env: dict[str, str]
    sys_path: list[str]  # prepended to the child's sys.path


class _SandboxOutcome(TypedDict):
    ok: bool


class SandboxReply(_SandboxOutcome, total=False):
    """The fork server's answer to one job (a JSON line); :class:`SandboxResult` is what callers get."""

    value: Any  # the job function's return value
    error_type: str  # the exception's class name, or Timeout, Killed, NoResult, SandboxServerLost, ...
    error: str
    traceback: str  # the last lines
    details: Any  # the exception's sandbox_details
    output: str  # the tail of the child's stdout and stderr
    duration_s: float
    timed_out: bool
    signal: int  # Killed: the signal number


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed job left behind (all plain data)."""

    ok: bool
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    traceback: str = ""
    details: Any = None
    output: str = ""
    duration_s: float = 0.0
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def error_text(self) -> str:
        """One block an agent or an LLM can act on: the error and the traceback tail."""
        if self.ok:
            return ""
        lines = [f"{self.error_type}: {self.error}"]
        if self.traceback:
            lines.append(self.traceback)
        if self.output.strip():
            lines.append(f"[output of the child]\n{self.output.strip()[-1500:]}")
        return "\n".join(lines)

    def to_error(self, doing: str) -> ToolError:
        """The exception to raise for a failed job: a timeout or the user code's error."""
        if self.timed_out:
            return CommandTimeoutError(f"{doing}: {self.error}")
        return UserCodeError(f"{doing} failed with {self.error_type}: {self.error}", self.traceback)


def job_target(function: Callable[..., Any]) -> str:
    """``module:qualname`` for a module-level function, or a ToolError explaining the rule."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname or not inspect.isfunction(function):
        raise ToolError(
            f"{function!r} cannot run in the sandbox: pass a module-level function importable by name"
        )
    return f"{module}:{qualname}"


def prime_torch() -> None:
    """Pay torch's lazy one-time set-up in the server, not in every forked job.

    The first forward on the ``meta`` device loads torch's meta registrations (~0.4 s) and the
    first ``FlopCounterMode`` use loads its op tables (~1 s). Tensors here are tiny so no
    intra-op thread pool starts before the fork.
    """
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        layer = nn.Conv2d(1, 1, 1)
    layer(torch.empty(1, 1, 2, 2, device="meta"))
    with FlopCounterMode(display=False):
        nn.Linear(2, 2)(torch.zeros(1, 2))


def _import_root(function: Callable[..., Any]) -> str | None:
    """The sys.path entry the function's module was imported from (so the child can import it too)."""
    if function.__module__.split(".")[0] == "torchscout":
        return None  # installed: importable in the child as it is here
    module = sys.modules.get(function.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    if Path(file).name == "__init__.py":
        root = root.parent
    for _ in range(function.__module__.count(".")):
        root = root.parent
    return str(root)


class _ForkServer:
    """The client side of one warm fork server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        started = time.monotonic()
        process = subprocess.Popen(
            # -P: do not put tools/ on sys.path (tools/tokenizers.py would shadow `tokenizers`)
            [sys.executable, "-P", str(SERVER_SCRIPT), *PRELOAD_MODULES],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=str(SERVER_SCRIPT.parent.parent),
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
        )
        hello = self._read_line(process, SERVER_START_TIMEOUT_S)
        if not hello or not json.loads(hello).get("ready"):
            self._stop(process)
            raise ToolError("the sandbox server did not start (could it import torch?)")
        logger.debug("sandbox server %d ready after %.2f s", process.pid, time.monotonic() - started)
        return process

    @staticmethod
    def _read_line(process: subprocess.Popen, timeout_s: float) -> bytes | None:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout_s)
        if not ready:
            return None
        return process.stdout.readline() or None

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            process.kill()
            process.wait()

    def stop(self) -> None:
        with self._lock:
            if self._process is not None:
                self._stop(self._process)
                self._process = None

    def ensure_started(self) -> None:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()

    def submit(self, job: SandboxJob) -> SandboxReply:
        line = json.dumps(job).encode("utf-8") + b"\n"
        with self._lock:
            for attempt in (1, 2):
                if self._process is None or self._process.poll() is not None:
                    self._process = self._start()
                process = self._process
                try:
                    assert process.stdin is not None
                    process.stdin.write(line)
                    process.stdin.flush()
                except BrokenPipeError:
                    self._process = None
                    if attempt == 2:
                        raise ToolError("the sandbox server died and could not be restarted") from None
                    continue
                reply = self._read_line(process, float(job["timeout_s"]) + CLIENT_SLACK_S)
                if reply is None:
                    # the server itself is stuck or died: replace it, report this job as failed
                    if process.poll() is None:
                        process.kill()
                    self._stop(process)  # reaps it (no zombie) and closes its pipes
                    self._process = None
                    return {"ok": False, "error_type": "SandboxServerLost",
                            "error": "the sandbox server stopped answering; it has been restarted"}
                return json.loads(reply)
        raise AssertionError("unreachable")


_server = _ForkServer()
atexit.register(_server.stop)


def warm_up() -> None:
    """Start the fork server now (it takes ~2 s) rather than on the first job."""
    _server.ensure_started()


def shutdown() -> None:
    """Stop the fork server (a later job starts a new one)."""
    _server.stop()


def run_in_sandbox(
    function: Callable[..., Any],
    kwargs: dict[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES,
    cwd: str | Path | None = None,
    extra_sys_path: list[str | Path] | None = None,
    threads: int | None = None,
) -> SandboxResult:
    """Call ``function(**kwargs)`` in a forked child; return its result or its error as data.

    ``function`` is a module-level function (see the module docstring); ``kwargs`` must be
    JSON-able. ``timeout_s`` kills the child and its process group; ``memory_limit_bytes``
    is the child's soft RLIMIT_DATA (None for no limit). ``cwd`` defaults to the workspace root.
    ``threads`` sets torch's intra-op threads in the child (None keeps torch's default); small
    probes should use 1: on a busy machine OpenMP threads spinning for cores can make a tiny
    forward (an LSTM on a dummy batch) a thousand times slower.
    Never raises for a failure of the job itself; raises ToolError for unusable arguments.
    """
    if timeout_s <= 0:
        raise ToolError(f"timeout_s must be positive, got {timeout_s}")
    arguments = kwargs or {}
    try:
        json.dumps(arguments)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"sandbox job arguments must be JSON-able: {exc}") from exc
    root = workspace_root()
    environment = dict(os.environ)
    environment["TORCHSCOUT_WORKSPACE"] = str(root)
    job: SandboxJob = {
        "function": job_target(function),
        "kwargs": arguments,
        "timeout_s": float(timeout_s),
        "memory_limit_bytes": memory_limit_bytes,
        "threads": threads,
        "cwd": str(cwd or root),
        "env": environment,
        "sys_path": [str(path) for path in (extra_sys_path or [])] + [
            root for root in [_import_root(function)] if root is not None],
    }
    reply = _server.submit(job)
    known = {"ok", "value", "error_type", "error", "traceback", "details", "output", "duration_s", "timed_out"}
    return SandboxResult(
        ok=bool(reply.get("ok")),
        value=reply.get("value"),
        error_type=reply.get("error_type"),
        error=reply.get("error"),
        traceback=reply.get("traceback") or "",
        details=reply.get("details"),
        output=reply.get("output") or "",
        duration_s=float(reply.get("duration_s") or 0.0),
        timed_out=bool(reply.get("timed_out")),
        extra={key: value for key, value in reply.items() if key not in known},
    )

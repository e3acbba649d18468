"""Run a Python function in a confined child with time and memory limits; get structured JSON back.

Every tool that executes generated or user code (model validation, the model summary, custom
optimizer probes, candidate evaluations and training) goes through :func:`run_in_sandbox`::

    from torchscout.tools.sandbox.runner import run_in_sandbox

    result = run_in_sandbox(probe_optimizer, {"script_path": "/abs/ws/opt.py"}, timeout_s=60)
    if not result.ok:
        raise result.to_error("validating the optimizer")   # UserCodeError with the traceback tail
    report = result.value                                    # whatever probe_optimizer returned

The job function must be a **module-level function importable by name** (it is called as
``module:qualname`` in the child), take JSON-able keyword arguments and return JSON-able data.
An exception it raises becomes ``ok=False`` with ``error_type``, ``error`` and the last lines of the
``traceback``; an exception may carry ``sandbox_details`` (JSON-able), which arrives as ``details``.

How it runs. A warm fork server (``server.py``, started on first use, once per process) imports
torch once; each job is a fresh ``fork()`` of it, confined (``confine.py``) by the policy of its
``profile`` (``policy.py``): namespaces, Landlock (write only the workspace and a private temp
folder, no network), limits, an allow-listed environment without secrets (``environment.py``),
the whole process tree killed at the deadline. A job costs milliseconds, not the ~2 s of importing
torch in a new interpreter. Jobs from several threads run side by side. Workspace code is loaded
fresh in every job; edits to torchscout's own source reach jobs only after :func:`shutdown`.

Memory limit. ``RLIMIT_AS`` is unusable with torch (importing it maps several GiB of address
space; CUDA reserves far more). The child lowers ``RLIMIT_DATA`` instead, which counts private
writable memory (heap, anonymous mmaps: where CPU tensors live) but not shared-library mappings or
``PROT_NONE`` reservations, on top of what the warm server holds. An allocation past it raises
``MemoryError`` / "DefaultCPUAllocator: can't allocate memory", reported as an ordinary error. It
does not bound GPU memory. The GPU device files and driver libraries stay readable in the child
(not exercised on a GPU machine yet).

A job is PID 1 of its own PID namespace, where the kernel ignores the signals a process sends
itself with their default action: ``abort()`` ends it with SIGSEGV rather than SIGABRT, and
``os.kill(os.getpid(), ...)`` has no effect unless a handler is installed.

A job started from inside a confined job (a nested call) runs in that job's own process: it is
confined already, and the outer job's time limit bounds it.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchscout.settings import get_settings
from torchscout.tools.errors import CommandTimeoutError, ToolError, UserCodeError
from torchscout.tools.sandbox import child
from torchscout.tools.sandbox.capabilities import checked_policy
from torchscout.tools.sandbox.environment import cache_environment, child_environment
from torchscout.tools.sandbox.policy import DEFAULT_MEMORY_LIMIT_BYTES
from torchscout.tools.sandbox.server_client import SERVER
from torchscout.tools.sandbox.types import SandboxJob, SandboxReply
from torchscout.tools.workspace import workspace_root

DEFAULT_TIMEOUT_S = 120.0
__all__ = ["DEFAULT_MEMORY_LIMIT_BYTES", "DEFAULT_TIMEOUT_S", "SandboxResult", "run_in_sandbox", "shutdown",
           "warm_up"]


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
        """The exception to raise for a failed job: a timeout, an unavailable sandbox, or the user code's error."""
        if self.timed_out:
            return CommandTimeoutError(f"{doing}: {self.error}")
        if self.error_type == "SandboxUnavailable":
            return ToolError(f"{doing}: {self.error}")
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


def settings_environment() -> dict[str, str]:
    """The resolved settings a child needs, so that values set with configure() reach it too."""
    settings = get_settings()
    return {"TORCHSCOUT_WORKSPACE": str(settings.workspace), "TORCHSCOUT_DATA_DIR": str(settings.data_dir),
            "TORCHSCOUT_WANDB_MODE": settings.wandb_mode, "TORCHSCOUT_PROGRESS": "1" if settings.progress else "0"}


def warm_up() -> None:
    """Start the fork server now (it takes ~2 s) rather than on the first job."""
    SERVER.ensure_started()


def shutdown() -> None:
    """Stop the fork server (a later job starts a new one)."""
    SERVER.stop()


def _result(reply: SandboxReply) -> SandboxResult:
    known = {"ok", "value", "error_type", "error", "traceback", "details", "output", "duration_s", "timed_out"}
    return SandboxResult(
        ok=bool(reply.get("ok")), value=reply.get("value"), error_type=reply.get("error_type"),
        error=reply.get("error"), traceback=reply.get("traceback") or "", details=reply.get("details"),
        output=reply.get("output") or "", duration_s=float(reply.get("duration_s") or 0.0),
        timed_out=bool(reply.get("timed_out")), extra={key: value for key, value in reply.items() if key not in known})


def run_in_sandbox(
    function: Callable[..., Any],
    kwargs: dict[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES,
    cwd: str | Path | None = None,
    extra_sys_path: list[str | Path] | None = None,
    threads: int | None = None,
    profile: str = "validation",
    network: bool = False,
    warm: list[str] | None = None,
) -> SandboxResult:
    """Call ``function(**kwargs)`` in a confined child; return its result or its error as data.

    ``function`` is a module-level function (see the module docstring); ``kwargs`` must be
    JSON-able. ``timeout_s`` kills the child and everything it started; ``memory_limit_bytes`` is
    the child's RLIMIT_DATA on top of the server's (None for no limit). ``cwd`` defaults to the
    workspace root. ``threads`` sets torch's intra-op threads in the child (None keeps torch's
    default); small probes should use 1: on a busy machine OpenMP threads spinning for cores can
    make a tiny forward a thousand times slower. ``profile`` picks the policy (``policy.PROFILES``).
    ``warm`` names trusted modules (``"module"``, or ``"module:function"`` to call) that the server
    imports once after this job ran cleanly, so that later jobs start warm; never workspace code.
    Never raises for a failure of the job itself; raises ToolError for unusable arguments and,
    under ``sandbox: required``, when this kernel cannot confine the job.
    """
    if timeout_s <= 0:
        raise ToolError(f"timeout_s must be positive, got {timeout_s}")
    try:
        kwargs = json.loads(json.dumps(kwargs or {}))
    except (TypeError, ValueError) as exc:
        raise ToolError(f"sandbox job arguments must be JSON-able: {exc}") from exc
    sys_path = [str(path) for path in (extra_sys_path or [])] + [
        root for root in [_import_root(function)] if root is not None]
    job: SandboxJob = {"function": job_target(function), "kwargs": kwargs, "threads": threads,
                           "sys_path": sys_path, "warm": list(warm or [])}
    if os.environ.get(child.SANDBOX_MARKER):
        return _result(child.call_job({**job, "threads": None}))
    folder = tempfile.mkdtemp(prefix="torchscout-sandbox-")
    try:
        policy = checked_policy(profile, temp_dir=folder, network=network, memory_bytes=memory_limit_bytes,
                                memory_on_top=True, timeout_s=timeout_s, extra_read=sys_path)
        environment = child_environment(os.environ, user_allowed=get_settings().sandbox_env_allow, network=network)
        environment.update({**settings_environment(), **cache_environment(get_settings().state_dir),
                            "TMPDIR": folder})
        job.update(timeout_s=float(timeout_s), cwd=str(cwd or workspace_root()), env=environment, policy=policy)
        return _result(SERVER.submit(job))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

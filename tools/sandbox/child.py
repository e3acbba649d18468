"""The body of a confined Python job: call ``module:function(**kwargs)``, write its result as JSON.

Runs in the job process after ``confine.py`` has confined it (the fork server's jobs), or in the
caller's own process for a job started from inside a confined job (it is confined already).
The result is one JSON object: ``{"ok": true, "value": ...}`` or ``{"ok": false, "error_type",
"error", "traceback", "details"}``; an exception may carry ``sandbox_details`` (JSON-able),
which arrives as ``details``. Standard library only (torch is imported when a job asks for threads).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import sys
import tempfile
import traceback
from typing import Any

from torchscout.tools.sandbox.allocator import keep_freed_memory

TRACEBACK_LINES = 25
SANDBOX_MARKER = "TORCHSCOUT_IN_SANDBOX"  # set in a confined job's environment


def import_function(target: str) -> Any:
    module_name, _, function_name = target.partition(":")
    function: Any = importlib.import_module(module_name)
    for part in function_name.split("."):
        function = getattr(function, part)
    return function


def call_job(job: dict) -> dict:
    """Call the job's function here; return the payload (never raises, SystemExit included)."""
    try:
        if job.get("threads"):
            import torch

            torch.set_num_threads(int(job["threads"]))
        for folder in reversed(job.get("sys_path") or []):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        function = import_function(job["function"])
        return {"ok": True, "value": function(**job.get("kwargs", {}))}
    except BaseException as exc:  # noqa: BLE001 - the job reports everything, including SystemExit
        # free the memory limit's headroom first: a MemoryError must still be reportable
        with contextlib.suppress(Exception):
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))
        return {"ok": False, "error_type": type(exc).__name__, "error": str(exc),
                "traceback": _traceback_text(exc), "details": getattr(exc, "sandbox_details", None)}


def _traceback_text(exc: BaseException) -> str:
    """The user's frames and the failing call (see ``traceback_tail``); Python's last lines if that cannot run."""
    try:
        from torchscout.tools.errors import traceback_tail  # (already imported by the warm server's modules)

        return traceback_tail(exc, TRACEBACK_LINES)
    except Exception:  # noqa: BLE001 - e.g. out of memory: the plain traceback still reports the job's error
        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
        return "\n".join(lines[-TRACEBACK_LINES:])


def encode_payload(payload: dict) -> bytes:
    try:
        return json.dumps(payload, default=repr).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        return json.dumps({"ok": False, "error_type": "ResultNotJSON",
                           "error": f"the job's result could not be encoded as JSON: {exc}",
                           "traceback": ""}).encode("utf-8")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_job(job: dict, result_fd: int, mechanisms: list[str]) -> int:
    """The confined job process's body: environment, folder, the call, the result; the exit status.

    ``mechanisms`` (what confines this job) travel back with the result as ``sandbox``.
    """
    keep_freed_memory()  # (before the job's environment replaces the server's, which says if the user chose)
    os.environ.clear()
    os.environ.update(job["env"])
    os.environ[SANDBOX_MARKER] = "1"
    tempfile.tempdir = None  # the server may have cached its own; the job's is the private TMPDIR
    os.chdir(job["cwd"])
    payload = {**call_job(job), "sandbox": mechanisms}
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    write_all(result_fd, encode_payload(payload))
    os.close(result_fd)
    return 0


def report_setup_error(result_fd: int, message: str) -> None:
    """The job did not run: the sandbox could not be put in place (``sandbox: required``)."""
    write_all(result_fd, json.dumps({"ok": False, "error_type": "SandboxUnavailable", "error": message,
                                     "traceback": ""}).encode("utf-8"))

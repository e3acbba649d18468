"""The warm fork server behind :mod:`torchscout.tools.codegen.sandbox` (run as a script, not imported).

It imports torch once (the ~1.5 s every fresh interpreter would pay), then reads one JSON job
per line on stdin, forks a child per job, and answers one JSON result per line on its private
protocol descriptor. A child:

1. becomes the leader of its own process group (so a timeout kills whatever it started),
2. sends its stdout/stderr to a temporary file (user code may print; the protocol stays clean),
3. lowers its soft ``RLIMIT_DATA`` to its current data segment plus the job's memory limit,
4. takes the job's working directory and environment (the server's own are stale),
5. imports ``module:function`` and calls it with the job's keyword arguments,
6. writes ``{"ok": true, "value": ...}`` or ``{"ok": false, "error_type", "error", "traceback"}``
   to a pipe and exits.

The server never runs job code itself, so a crashing, hanging or memory-hungry job cannot take
it down. It is a script run by path (``python sandbox_server.py``) so that starting it does not
import the torchscout package; job modules are imported in the children, and their imports are
then kept warm in the server by importing the same module there once it imported cleanly.

Stdlib and torch only: nothing here may import torchscout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import select
import signal
import sys
import tempfile
import time
import traceback

TRACEBACK_LINES = 25
OUTPUT_TAIL_CHARS = 4000
MAX_RESULT_BYTES = 64 * 1024 * 1024


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


def _import_function(target: str):
    module_name, _, function_name = target.partition(":")
    module = importlib.import_module(module_name)
    function = module
    for part in function_name.split("."):
        function = getattr(function, part)
    return function


def _data_segment_bytes() -> int:
    """This process's current data segment (VmData: what RLIMIT_DATA counts)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_job_in_child(job: dict, result_fd: int, output_fd: int) -> None:
    """Body of the forked child; never returns (os._exit)."""
    status = 0
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the server's stdin carries the protocol; user code must not read it
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        limit = job.get("memory_limit_bytes")
        if limit:
            # the limit is what the job may allocate on top of what the warm server already holds
            limit += _data_segment_bytes()
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        if job.get("env") is not None:
            os.environ.clear()
            os.environ.update(job["env"])
        if job.get("cwd"):
            os.chdir(job["cwd"])
        if job.get("threads"):
            import torch

            torch.set_num_threads(int(job["threads"]))
        for folder in reversed(job.get("sys_path") or []):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        function = _import_function(job["function"])
        value = function(**job.get("kwargs", {}))
        payload = {"ok": True, "value": value}
    except BaseException as exc:  # noqa: BLE001 - the child reports everything, including SystemExit
        # free the memory limit first: a MemoryError must still be reportable
        with contextlib.suppress(Exception):
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))
        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
        payload = {
            "ok": False,
            "error_type": type(exc).__name__,
            "error": str(exc),
            "traceback": "\n".join(lines[-TRACEBACK_LINES:]),
            "details": getattr(exc, "sandbox_details", None),
        }
    try:
        encoded = json.dumps(payload, default=repr).encode("utf-8")
    except BaseException as exc:  # noqa: BLE001
        encoded = json.dumps({"ok": False, "error_type": "ResultNotJSON",
                              "error": f"the job's result could not be encoded as JSON: {exc}",
                              "traceback": ""}).encode("utf-8")
        status = 1
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    view = memoryview(encoded)
    while view:
        written = os.write(result_fd, view)
        view = view[written:]
    os.close(result_fd)
    os._exit(status)


def _read_until_eof(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Read ``fd`` until EOF or the deadline; returns (data, timed_out)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return b"".join(chunks), True
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_RESULT_BYTES:
            return b"".join(chunks), False
        chunks.append(chunk)


def _kill_child_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _read_output(output_file) -> str:
    output_file.seek(0)
    return _tail(output_file.read().decode("utf-8", errors="replace"), OUTPUT_TAIL_CHARS)


def run_job(job: dict) -> dict:
    """Fork a child for ``job``, wait for it with the job's timeout, return the result."""
    started = time.monotonic()
    timeout_s = float(job.get("timeout_s", 60))
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as output_file:
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _run_job_in_child(job, write_fd, output_file.fileno())
        os.close(write_fd)
        try:
            data, timed_out = _read_until_eof(read_fd, started + timeout_s)
        finally:
            os.close(read_fd)
        if timed_out:
            _kill_child_group(pid)
        _, wait_status = os.waitpid(pid, 0)
        # anything the job started in its process group goes with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        result: dict = {"duration_s": round(time.monotonic() - started, 4), "output": _read_output(output_file)}
    if timed_out:
        result.update(ok=False, timed_out=True, error_type="Timeout",
                      error=f"the job ran past its {timeout_s:g} s time limit and was killed")
        return result
    if os.WIFSIGNALED(wait_status):
        signal_number = os.WTERMSIG(wait_status)
        result.update(ok=False, error_type="Killed", signal=signal_number,
                      error=f"the job was killed by signal {signal.Signals(signal_number).name} "
                            "(out of memory, a crash in native code, or an explicit kill)")
        return result
    try:
        result.update(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        result.update(ok=False, error_type="NoResult",
                      error=f"the job exited with code {os.WEXITSTATUS(wait_status)} without reporting a result")
    return result


def _warm_import(job: dict) -> None:
    """After a job imported its module cleanly in a child, import it here so later forks inherit it."""
    module_name = job["function"].partition(":")[0]
    if module_name in sys.modules:
        return
    saved_environment, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    try:
        if job.get("env") is not None:
            os.environ.clear()
            os.environ.update(job["env"])
        sys.path[:0] = [folder for folder in job.get("sys_path") or [] if folder not in sys.path]
        importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - warming is an optimisation; the child reports real import errors
        sys.modules.pop(module_name, None)
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path


def serve(protocol_fd: int, preload: list[str]) -> None:
    import torch  # noqa: F401 - the point of the server: pay torch's import once

    for entry in preload:
        try:
            # "module" is imported; "module:function" is imported and called (a priming step)
            if ":" in entry:
                _import_function(entry)()
            else:
                importlib.import_module(entry)
        except Exception as exc:  # noqa: BLE001 - a broken module only costs its jobs the import
            sys.stderr.write(f"sandbox server: preloading {entry} failed: {exc!r}\n")

    os.write(protocol_fd, b'{"ready": true}\n')
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        result = run_job(job)
        if result.get("ok") or result.get("error_type") not in {"ModuleNotFoundError", "ImportError"}:
            _warm_import(job)
        os.write(protocol_fd, json.dumps(result, default=repr).encode("utf-8") + b"\n")


def main() -> None:
    # started with `python -P`, but be sure: the folder of this script (torchscout's tools/codegen/,
    # whose llm.py or safety.py could shadow other packages) must never be importable as top-level modules
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    # keep the protocol on a private descriptor; stray prints (ours or a library's) go to stderr
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client stops us by closing stdin
    serve(protocol_fd, sys.argv[1:])


if __name__ == "__main__":
    main()

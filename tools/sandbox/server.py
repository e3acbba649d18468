"""The warm fork server behind :mod:`torchscout.tools.sandbox.runner` (run as a script, not imported).

It imports torch once (the ~1.5 s every fresh interpreter would pay), then reads JSON jobs, one per
line, on stdin, and answers one JSON line per job, tagged with the job's ``id``, on a private
protocol descriptor. Jobs run side by side: for each it forks a *supervisor* (``confine.py``)
that confines a job process and runs :func:`child.run_job` in it, and it watches every job's
three pipes (result, output, supervisor status) and the supervisor's pidfd in one ``select`` loop:

- output is kept to a bounded head and tail in memory (``output.py``), never spooled to disk;
- the supervisor enforces the job's time limit; the server kills a supervisor that overstays
  it by :data:`GRACE_S` (its job process then dies with it);
- a forked supervisor closes the protocol and every other job's pipes first, so a job can neither
  answer for the server nor read another job's output.

The server never runs job code itself, so a crashing, hanging or memory-hungry job cannot take it
down. After a job imported its module cleanly, the server imports the module too, so later forks
start warm. Job modules are imported in the children; the server itself imports only torch, the
preload list and this package's standard-library modules.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from torchscout.tools.sandbox import child, confine
from torchscout.tools.sandbox.output import BoundedOutput

OUTPUT_LIMIT = 8000
MAX_RESULT_BYTES = 64 * 1024 * 1024
GRACE_S = 10.0
DRAIN_S = 1.0
RUNNING_SUPERVISORS: set[int] = set()  # pids of this server's live supervisors


@dataclass
class RunningJob:
    job: dict
    pid: int
    pidfd: int
    fds: dict[int, str]  # read end -> "result" | "output" | "status"
    deadline: float
    started: float = field(default_factory=time.monotonic)
    result: bytearray = field(default_factory=bytearray)
    status: bytearray = field(default_factory=bytearray)
    output: BoundedOutput = field(default_factory=lambda: BoundedOutput(OUTPUT_LIMIT))
    killed_by_server: bool = False


def _supervisor(job: dict, pipes: dict[str, tuple[int, int]], inherited: list[int]) -> None:
    """The forked supervisor: its own process group, no foreign descriptors, then confine.supervise."""
    try:
        os.setpgid(0, 0)
        for fd in inherited + [read for read, _ in pipes.values()]:
            with contextlib.suppress(OSError):
                os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(pipes["output"][1], 1)
        os.dup2(pipes["output"][1], 2)
        os.close(pipes["output"][1])
        result_fd, status_fd = pipes["result"][1], pipes["status"][1]
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            confine.supervise(job["policy"], lambda: child.run_job(job, result_fd),
                              timeout_s=float(job["timeout_s"]), status_fd=status_fd,
                              on_setup_error=lambda message: child.report_setup_error(result_fd, message))
        except Exception as exc:  # noqa: BLE001 - whatever broke, the caller gets it as the job's error
            child.report_setup_error(result_fd, f"the sandbox could not be set up: {type(exc).__name__}: {exc}")
    finally:
        os._exit(confine.SETUP_FAILED)


def start(job: dict, inherited: list[int]) -> RunningJob:
    pipes = {name: os.pipe() for name in ("result", "output", "status")}
    pid = os.fork()
    if pid == 0:
        _supervisor(job, pipes, inherited)
    fds = {}
    for name, (read, write) in pipes.items():
        os.close(write)
        os.set_blocking(read, False)
        fds[read] = name
    RUNNING_SUPERVISORS.add(pid)
    return RunningJob(job=job, pid=pid, pidfd=os.pidfd_open(pid), fds=fds,
                      deadline=time.monotonic() + float(job["timeout_s"]) + GRACE_S)


def drain(running: RunningJob, fd: int) -> bool:
    """Read what ``fd`` holds now; False at end of file (the descriptor is then closed)."""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            os.close(fd)
            del running.fds[fd]
            return False
        kind = running.fds[fd]
        if kind == "output":
            running.output.feed(chunk)
        elif kind == "status":
            running.status += chunk
        elif len(running.result) <= MAX_RESULT_BYTES:
            running.result += chunk


def _failure(running: RunningJob, status: dict, wait_status: int) -> dict:
    timeout = float(running.job["timeout_s"])
    if status.get("timed_out") or running.killed_by_server:
        return {"ok": False, "timed_out": True, "error_type": "Timeout",
                "error": f"the job ran past its {timeout:g} s time limit and was killed"}
    signal_number = status.get("signal") or (os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None)
    if signal_number:
        return {"ok": False, "error_type": "Killed", "signal": signal_number,
                "error": f"the job was killed by signal {signal.Signals(signal_number).name} "
                         "(out of memory, a crash in native code, or an explicit kill)"}
    return {"ok": False, "error_type": "NoResult",
            "error": f"the job exited with code {status.get('exit_code')} without reporting a result"}


def _collect(running: RunningJob) -> int:
    """Reap the supervisor, kill what is left of its job, read its pipes to the end; its wait status."""
    os.close(running.pidfd)
    _, wait_status = os.waitpid(running.pid, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(running.pid, signal.SIGKILL)
    give_up = time.monotonic() + DRAIN_S
    while running.fds:
        for fd in list(running.fds):
            drain(running, fd)
        if running.fds and time.monotonic() > give_up:
            # only without a PID namespace, and only when the supervisor itself was killed: its job's
            # orphans came to this server (a subreaper); they die here
            confine.kill_orphans(keep=RUNNING_SUPERVISORS)
            for fd in list(running.fds):
                drain(running, fd)
                if fd in running.fds:
                    os.close(fd)
                    del running.fds[fd]
        elif running.fds:
            time.sleep(0.005)
    return wait_status


def finish(running: RunningJob) -> dict:
    """The supervisor has exited: collect what is left and build the reply."""
    wait_status = _collect(running)
    try:
        status = json.loads(running.status.decode() or "{}")
    except json.JSONDecodeError:
        status = {}
    reply: dict = {"id": running.job["id"], "duration_s": round(time.monotonic() - running.started, 4),
                   "output": running.output.tail_text(OUTPUT_LIMIT), "sandbox": status.get("mechanisms", [])}
    if len(running.result) > MAX_RESULT_BYTES:
        reply.update(ok=False, error_type="ResultTooLarge",
                     error=f"the job's result is larger than {MAX_RESULT_BYTES >> 20} MiB")
    elif running.result and not running.killed_by_server:
        try:
            reply.update(json.loads(running.result.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply.update(_failure(running, status, wait_status))
    else:
        reply.update(_failure(running, status, wait_status))
    return reply


def _warm_import(job: dict) -> None:
    """After a job imported its module cleanly in a child, import it here so later forks inherit it."""
    module_name = job["function"].partition(":")[0]
    if module_name in sys.modules:
        return
    saved_environment, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    try:
        os.environ.update(job.get("env") or {})
        sys.path[:0] = [folder for folder in job.get("sys_path") or [] if folder not in sys.path]
        importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - warming is an optimisation; the child reports real import errors
        sys.modules.pop(module_name, None)
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path


class Server:
    def __init__(self, protocol_fd: int) -> None:
        self.protocol_fd = protocol_fd
        self.running: dict[int, RunningJob] = {}  # pidfd -> job
        self.pending = b""
        self.stdin_open = True

    def _descriptors(self) -> list[int]:
        return [fd for running in self.running.values() for fd in (running.pidfd, *running.fds)]

    def _read_jobs(self) -> None:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            self.stdin_open = False
            return
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.strip():
                job = json.loads(line)
                running = start(job, [self.protocol_fd, *self._descriptors()])
                self.running[running.pidfd] = running

    def _reply(self, running: RunningJob) -> None:
        reply = finish(running)
        RUNNING_SUPERVISORS.discard(running.pid)
        del self.running[running.pidfd]
        child.write_all(self.protocol_fd, json.dumps(reply, default=repr).encode("utf-8") + b"\n")
        if reply.get("ok") or reply.get("error_type") not in {"ModuleNotFoundError", "ImportError"}:
            _warm_import(running.job)

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for running in self.running.values():
            if now >= running.deadline and not running.killed_by_server:
                running.killed_by_server = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(running.pid, signal.SIGKILL)

    def serve(self) -> None:
        import select

        while self.stdin_open or self.running:
            deadlines = [running.deadline for running in self.running.values() if not running.killed_by_server]
            wait_s = max(min(deadlines) - time.monotonic(), 0) if deadlines else None
            watched = ([0] if self.stdin_open else []) + self._descriptors()
            ready, _, _ = select.select(watched, [], [], wait_s)
            for fd in ready:
                if fd == 0:
                    self._read_jobs()
                elif fd in self.running:
                    self._reply(self.running[fd])
                else:
                    for running in list(self.running.values()):
                        if fd in running.fds:
                            drain(running, fd)
            self._kill_overdue()
            if not self.stdin_open:
                for running in self.running.values():
                    running.killed_by_server = True
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(running.pid, signal.SIGKILL)


def main() -> None:
    # keep the protocol on a private descriptor; stray prints (ours or a library's) go to stderr
    protocol_fd = os.dup(1)
    fcntl.fcntl(protocol_fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client stops us by closing stdin
    confine.become_subreaper()  # orphans of a killed supervisor's job come here, to be killed
    import torch  # noqa: F401 - the point of the server: pay torch's import once

    for entry in sys.argv[1:]:
        try:
            # "module" is imported; "module:function" is imported and called (a priming step)
            if ":" in entry:
                child.import_function(entry)()
            else:
                importlib.import_module(entry)
        except Exception as exc:  # noqa: BLE001 - a broken module only costs its jobs the import
            sys.stderr.write(f"sandbox server: preloading {entry} failed: {exc!r}\n")
    os.write(protocol_fd, b'{"ready": true}\n')
    Server(protocol_fd).serve()


if __name__ == "__main__":
    main()

"""The warm fork server behind :mod:`torchscout.tools.sandbox.runner` (run as a script, not imported).

It imports torch once (the ~1.5 s every fresh interpreter would pay), then reads JSON jobs, one per
line, on stdin, and answers one JSON line per job, tagged with the job's ``id``, on a private
protocol descriptor. Jobs run side by side: each runs in one job process, which confines itself
(``confine.confine_forked_job``) and runs :func:`child.run_job`; the server watches every job's two
pipes (result, output) and its pidfd in one ``select`` loop:

- one job process is forked ahead of time and waits for its job (a :class:`Spare`), so the fork of
  a server holding torch (tens of milliseconds) is not on a job's critical path;
- the server is PID 1 of a user and PID namespace of its own (``namespaces.enter_server_namespaces``),
  so each job can be PID 1 of a PID namespace of its own: killing it at its deadline, or its normal
  end, ends everything it started (``setsid`` escapees included), at the cost of a single fork;
- output is kept to a bounded head and tail in memory (``output.py``), never spooled to disk;
- a job process closes the protocol and every other job's pipes first, so a job can neither
  answer for the server nor read another job's output.

The server never runs job code itself, so a crashing, hanging or memory-hungry job cannot take it
down. After a job imported its module cleanly, the server imports the module too, so later forks
start warm. Job modules are imported in the children; the server itself imports only torch, the
preload list and this package's standard-library modules.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass, field

from torchscout.tools.sandbox import child, confine, namespaces
from torchscout.tools.sandbox.output import BoundedOutput

OUTPUT_LIMIT = 8000
MAX_RESULT_BYTES = 64 * 1024 * 1024
DRAIN_S = 1.0
RUNNING_JOBS: set[int] = set()  # pids of this server's live jobs
WARMED: set[str] = set()  # modules and priming functions imported or called here already


@dataclass
class RunningJob:
    job: dict
    pid: int
    pidfd: int
    fds: dict[int, str]  # read end -> "result" | "output"
    deadline: float
    own_pid_namespace: bool
    started: float = field(default_factory=time.monotonic)
    result: bytearray = field(default_factory=bytearray)
    output: BoundedOutput = field(default_factory=lambda: BoundedOutput(OUTPUT_LIMIT))
    killed_by_server: bool = False


class Namespaces:
    """What the server could set up for its jobs (see ``namespaces.enter_server_namespaces``)."""

    user = False
    own_pid: int | None = None  # the server's PID namespace, when each job may get one of its own


@dataclass
class Spare:
    """A job process forked ahead of time, waiting for its job: the fork (tens of milliseconds for a
    server holding torch) happens while the server is idle, not on the job's critical path."""

    pid: int
    isolated: bool  # PID 1 of a PID namespace of its own
    job_fd: int  # where the server writes the job (then closes it)
    fds: dict[int, str]  # read ends: "result", "output"


def _read_job(fd: int) -> dict | None:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return json.loads(b"".join(chunks)) if chunks else None


def _job_process(pipes: dict[str, tuple[int, int]], inherited: list[int], own_pid_namespace: bool) -> None:
    """The forked job process: no foreign descriptors, wait for the job, confine, run it; never returns."""
    code = confine.SETUP_FAILED
    result_fd = pipes["result"][1]
    try:
        os.setpgid(0, 0)
        for fd in inherited + [pipes["result"][0], pipes["output"][0], pipes["job"][1]]:
            with contextlib.suppress(OSError):
                os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(pipes["output"][1], 1)
        os.dup2(pipes["output"][1], 2)
        os.close(pipes["output"][1])
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        job = _read_job(pipes["job"][0])
        if job is None:  # a spare the server no longer needs
            code = 0
            return
        try:
            mechanisms = confine.confine_forked_job(job["policy"], server_namespace=Namespaces.user,
                                                    own_pid_namespace=own_pid_namespace)
        except (OSError, confine.SetupError) as exc:
            child.report_setup_error(result_fd, str(exc))
            return
        code = child.run_job(job, result_fd, mechanisms)
        if not own_pid_namespace:
            confine.kill_orphans()  # what the job left running (it is their subreaper)
    finally:
        os._exit(code)


def fork_spare(inherited: list[int]) -> Spare:
    pipes = {name: os.pipe() for name in ("result", "output", "job")}
    if Namespaces.own_pid is not None:
        pid, isolated = namespaces.fork_in_new_pid_namespace(Namespaces.own_pid)
    else:
        pid, isolated = os.fork(), False
    if pid == 0:
        _job_process(pipes, inherited, isolated)
    os.close(pipes["job"][0])
    fds = {}
    for name in ("result", "output"):
        read, write = pipes[name]
        os.close(write)
        os.set_blocking(read, False)
        fds[read] = name
    RUNNING_JOBS.add(pid)
    return Spare(pid=pid, isolated=isolated, job_fd=pipes["job"][1], fds=fds)


def discard(spare: Spare) -> None:
    """Let a spare go: it reads an empty job and exits."""
    os.close(spare.job_fd)
    for fd in spare.fds:
        os.close(fd)
    os.waitpid(spare.pid, 0)
    RUNNING_JOBS.discard(spare.pid)


def dispatch(spare: Spare, job: dict) -> RunningJob:
    """Hand ``job`` to ``spare``; raises OSError when the spare is gone."""
    try:
        child.write_all(spare.job_fd, json.dumps(job).encode("utf-8"))
    finally:
        os.close(spare.job_fd)
    return RunningJob(job=job, pid=spare.pid, pidfd=os.pidfd_open(spare.pid), fds=spare.fds,
                      own_pid_namespace=spare.isolated, deadline=time.monotonic() + float(job["timeout_s"]))


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
        elif len(running.result) <= MAX_RESULT_BYTES:
            running.result += chunk


def _collect(running: RunningJob) -> int:
    """Reap the job, kill what is left of it, read its pipes to the end; its wait status."""
    os.close(running.pidfd)
    _, wait_status = os.waitpid(running.pid, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(running.pid, signal.SIGKILL)
    if not running.own_pid_namespace and running.killed_by_server:
        # no PID namespace and the job was killed: its orphans came to this server (a subreaper)
        confine.kill_orphans(keep=RUNNING_JOBS - {running.pid})
    give_up = time.monotonic() + DRAIN_S
    while running.fds:
        for fd in list(running.fds):
            drain(running, fd)
        if running.fds and time.monotonic() > give_up:
            for fd in list(running.fds):  # a writer that escaped (it cannot in a PID namespace): stop reading
                os.close(fd)
                del running.fds[fd]
        elif running.fds:
            time.sleep(0.005)
    return wait_status


def _failure(running: RunningJob, wait_status: int) -> dict:
    timeout = float(running.job["timeout_s"])
    if running.killed_by_server:
        return {"ok": False, "timed_out": True, "error_type": "Timeout",
                "error": f"the job ran past its {timeout:g} s time limit and was killed"}
    if os.WIFSIGNALED(wait_status):
        signal_number = os.WTERMSIG(wait_status)
        return {"ok": False, "error_type": "Killed", "signal": signal_number,
                "error": f"the job was killed by signal {signal.Signals(signal_number).name} "
                         "(out of memory, a crash in native code, or an explicit kill)"}
    return {"ok": False, "error_type": "NoResult",
            "error": f"the job exited with code {os.WEXITSTATUS(wait_status)} without reporting a result"}


def finish(running: RunningJob) -> dict:
    """The job process has exited: collect what is left and build the reply."""
    wait_status = _collect(running)
    reply: dict = {"id": running.job["id"], "duration_s": round(time.monotonic() - running.started, 4),
                   "output": running.output.tail_text(OUTPUT_LIMIT)}
    if len(running.result) > MAX_RESULT_BYTES:
        reply.update(ok=False, error_type="ResultTooLarge",
                     error=f"the job's result is larger than {MAX_RESULT_BYTES >> 20} MiB")
    elif running.result and not running.killed_by_server:
        try:
            reply.update(json.loads(running.result.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply.update(_failure(running, wait_status))
    else:
        reply.update(_failure(running, wait_status))
    return reply


def _warm_import(job: dict) -> bool:
    """After a job ran cleanly in a child, import its module here (and the modules the client named in
    ``warm``: trusted libraries such as ``sklearn.datasets``, never workspace code) so later forks inherit them."""
    module = job["function"].partition(":")[0]
    names = [name for name in [module, *job.get("warm", [])] if name not in WARMED and name not in sys.modules]
    if not names:
        return False
    WARMED.update(names)
    saved_environment, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    try:
        os.environ.update(job.get("env") or {})
        sys.path[:0] = [folder for folder in job.get("sys_path") or [] if folder not in sys.path]
        for name in names:
            if ":" in name:
                child.import_function(name)()  # a priming function
            else:
                importlib.import_module(name)
    except Exception:  # noqa: BLE001 - warming is an optimisation; the child reports real import errors
        sys.modules.pop(module, None)
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
    return True


class Server:
    def __init__(self, protocol_fd: int) -> None:
        self.protocol_fd = protocol_fd
        self.running: dict[int, RunningJob] = {}  # pidfd -> job
        self.pending = b""
        self.stdin_open = True
        self.spare: Spare | None = None

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
                running = self._start(json.loads(line))
                self.running[running.pidfd] = running

    def _watched(self) -> list[int]:
        return ([0] if self.stdin_open else []) + self._descriptors()

    def _inherited(self) -> list[int]:
        """Descriptors a new process must close: the protocol, every job's, the current spare's."""
        spare = [self.spare.job_fd, *self.spare.fds] if self.spare else []
        return [self.protocol_fd, *self._descriptors(), *spare]

    def keep_a_spare(self) -> None:
        if self.spare is None and self.stdin_open:
            # objects the server holds go to the collector's permanent generation: a job's collections
            # then never walk them, so its pages stay shared with the server instead of being copied
            gc.freeze()
            self.spare = fork_spare(self._inherited())

    def drop_the_spare(self) -> None:
        if self.spare is not None:
            discard(self.spare)
            self.spare = None

    def _start(self, job: dict) -> RunningJob:
        for _attempt in (1, 2):
            self.keep_a_spare()
            spare, self.spare = self.spare, None
            try:
                return dispatch(spare, job)
            except OSError:  # the spare died waiting (killed from outside): reap it, fork another
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(spare.pid, 0)
                RUNNING_JOBS.discard(spare.pid)
        raise RuntimeError("could not start a job process")

    def _reply(self, running: RunningJob) -> None:
        reply = finish(running)
        RUNNING_JOBS.discard(running.pid)
        del self.running[running.pidfd]
        child.write_all(self.protocol_fd, json.dumps(reply, default=repr).encode("utf-8") + b"\n")
        if reply.get("ok") or reply.get("error_type") not in {"ModuleNotFoundError", "ImportError"}:
            if _warm_import(running.job):
                self.drop_the_spare()  # forked before these imports: the next job would start cold

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for running in self.running.values():
            if now >= running.deadline and not running.killed_by_server:
                running.killed_by_server = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(running.pid, signal.SIGKILL)

    def serve(self) -> None:
        while self.stdin_open or self.running:
            deadlines = [running.deadline for running in self.running.values() if not running.killed_by_server]
            wait_s = max(min(deadlines) - time.monotonic(), 0) if deadlines else None
            ready, _, _ = select.select(self._watched(), [], [], wait_s)
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
            if self.spare is None and self.stdin_open and not select.select(self._watched(), [], [], 0)[0]:
                self.keep_a_spare()  # only while nothing waits to be read: a reply never waits for a fork
            if not self.stdin_open:
                self.drop_the_spare()
                for running in self.running.values():
                    running.killed_by_server = True
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(running.pid, signal.SIGKILL)


def main() -> None:
    # first, single-threaded and before torch: PID 1 of namespaces of its own (each job gets its own PID
    # namespace under it); the process the client started stays behind as this server's parent
    Namespaces.user = namespaces.enter_server_namespaces()
    Namespaces.own_pid = namespaces.own_pid_namespace() if Namespaces.user else None
    # keep the protocol on a private descriptor; stray prints (ours or a library's) go to stderr
    protocol_fd = os.dup(1)
    fcntl.fcntl(protocol_fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client stops us by closing stdin
    confine.become_subreaper()  # without PID namespaces, a killed job's orphans come here, to be killed
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
    server = Server(protocol_fd)
    server.keep_a_spare()
    os.write(protocol_fd, b'{"ready": true}\n')
    server.serve()


if __name__ == "__main__":
    main()

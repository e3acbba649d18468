"""Confine one job: the kernel mechanisms in the order they must come, and a supervisor for commands.

Two entry points. :func:`confine_forked_job` confines a job process the fork server forked (it is
PID 1 of a PID namespace of its own already; ``server.py``). :func:`supervise` runs in the command
launcher (``launcher.py``), a fresh single-threaded process, the *supervisor*, that exists only for
one command. It enters new namespaces (``namespaces.py``), forks the *job process* and waits for
it. The job process, before it runs the job's body (a forked server job does the same from step 2):

1. asks for SIGKILL when the supervisor dies (so killing the supervisor kills the job),
2. in a new PID namespace: its own ``/proc`` and a cap on the PIDs the namespace may use,
3. lowers its resource limits (memory, file size, open files, CPU time, core dumps; processes
   with RLIMIT_NPROC where a user namespace of its own makes that count only its processes),
4. restricts itself with Landlock (``landlock.py``): read the policy's ``read`` trees, write its
   ``write`` trees (workspace, private temp dir), use its ``devices``; TCP denied when the job
   has no network and no network namespace; no abstract Unix sockets or signals outside,
5. drops every capability, then runs the body.

The supervisor enforces the wall-clock limit: past it, it kills the job process; in a PID
namespace that kills everything the job started (``setsid`` and double-fork escapees included).
Without one, the supervisor is a child subreaper: every orphan of the job becomes its child, and
it kills them all when the job ends, normally or not. It then writes one JSON status line
(mechanisms in effect, exit code or signal, timed out, leftovers killed) to ``status_fd``.

The policy is a plain dict (``policy.SandboxPolicy``, built by ``policy.py``). Standard library and
this package's other kernel modules only.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable

from torchscout.tools.sandbox import landlock, namespaces

SETUP_FAILED = 125
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
MEMORY_ERROR_ROOM = 256 << 20  # above the memory limit: room to report a MemoryError
_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(RuntimeError):
    """A mechanism the policy requires could not be put in place; the job does not run."""


class _Stopped(Exception):
    """The supervisor was asked to stop (SIGTERM, SIGINT, SIGHUP)."""


def missing_for_required(policy: dict, mechanisms: list[str]) -> list[str]:
    """What ``sandbox: required`` needs and ``mechanisms`` lacks (empty when all is there)."""
    missing = []
    if "landlock_fs" not in mechanisms:
        missing.append("file-system rules (Landlock)")
    if not policy["network"] and "network" not in mechanisms and "landlock_tcp" not in mechanisms:
        missing.append("network isolation (a network namespace or Landlock ABI 4)")
    if "pid_max" not in mechanisms and "nproc_rlimit" not in mechanisms:
        missing.append("a process-count limit (a PID namespace on Linux 6.14+, or a user namespace for a non-root user)")
    return missing


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _data_segment_bytes() -> int:
    """This process's data segment now (VmData: what RLIMIT_DATA counts)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def apply_limits(limits: dict, own_user_namespace: bool) -> list[str]:
    """Lower the resource limits (soft and hard: the job cannot raise them again)."""
    _set_limit(resource.RLIMIT_CORE, 0)
    memory = limits.get("memory_bytes")
    if memory:
        # a job forked from the warm server may allocate this much on top of what the server holds
        soft = memory + (_data_segment_bytes() if limits.get("memory_on_top") else 0)
        _set_limit(resource.RLIMIT_DATA, soft, soft + MEMORY_ERROR_ROOM)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    _set_limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if limits.get("cpu_seconds"):
        cpu = int(limits["cpu_seconds"])
        _set_limit(resource.RLIMIT_CPU, cpu, cpu + 5)
    done = ["rlimits"]
    # RLIMIT_NPROC counts the user's processes in its user namespace, and root is exempt from it
    if own_user_namespace and os.getuid() != 0:
        _set_limit(resource.RLIMIT_NPROC, int(limits["processes"]))
        done.append("nproc_rlimit")
    return done


def apply_landlock(policy: dict, network_namespace: bool, private_tmp: tuple[str, ...] = ()) -> list[str]:
    """Restrict this process with the policy's rules; ``private_tmp``: folders that are the job's own tmpfs."""
    abi = landlock.abi_version()
    if abi < 1:
        return []
    deny_tcp = not policy["network"] and not network_namespace
    ruleset = landlock.Ruleset(abi, network=not deny_tcp)
    for key, rights in (("read", landlock.READ), ("write", landlock.WRITE), ("devices", landlock.DEVICE),
                        ("list", landlock.LIST)):
        for path in policy[key]:
            ruleset.allow(path, rights)
    ruleset.allow("/proc", landlock.READ | landlock.WRITE_FILE)  # /proc/self/...; other processes: ptrace rules
    for folder in private_tmp:  # (programs that write /tmp itself: wandb's service socket, compilers)
        ruleset.allow(folder, landlock.WRITE)
    ruleset.restrict_self()
    done = ["landlock_fs", f"landlock_abi_{abi}"]
    if deny_tcp and abi >= 4:
        done.append("landlock_tcp")
    if abi >= 6:
        done.append("landlock_scopes")
    return done


def drop_capabilities() -> None:
    """No capabilities (those a user namespace grants included); with no_new_privs, exec gives none back."""
    header = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if _libc.capset(header, data) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"capset: {os.strerror(error)}")


def _restrict(policy: dict, outer: list[str]) -> list[str]:
    """Limits, Landlock, no capabilities; then check ``sandbox: required``. What took effect."""
    done = apply_limits(policy["limits"], "user" in outer)
    private_tmp = tuple(folder for folder in namespaces.PRIVATE_TMP if f"hidden {folder}" in outer)
    done += apply_landlock(policy, "network" in outer, private_tmp)
    drop_capabilities()
    missing = missing_for_required(policy, outer + done) if policy.get("required") else []
    if missing:
        raise SetupError("the sandbox is required (sandbox: required) but this kernel does not provide "
                         + "; ".join(missing) + ". Run `torchscout doctor` to see what is enforced here.")
    return done


def _confine_job_process(policy: dict, outer: list[str], supervisor_alive: int) -> list[str]:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if select.select([supervisor_alive], [], [], 0)[0]:
        os._exit(1)  # the supervisor died before the line above took effect
    done: list[str] = []
    if "pid" in outer and "mount" in outer:
        done += namespaces.enter_pid_namespace(int(policy["limits"]["processes"]))
    return done + _restrict(policy, outer + done)


def confine_forked_job(policy: dict, *, server_namespace: bool, own_pid_namespace: bool) -> list[str]:
    """Confine a job the fork server forked; what took effect.

    The job's capabilities for its own mount, IPC and network namespaces come from the server's
    user namespace (``server_namespace``); as PID 1 of its own PID namespace (``own_pid_namespace``)
    its end or its kill ends everything it started. Without one it is a child subreaper instead
    (the caller kills its orphans when it ends).
    """
    done = ["user"] if server_namespace else []
    if own_pid_namespace:
        done.append("pid")
    if server_namespace and policy["namespaces"]:
        done += namespaces.enter(network=bool(policy["network"]), writable=policy["write"], hidden=policy["hidden"],
                                 keep=policy["read"] + policy["devices"], shm_bytes=int(policy["shm_bytes"]),
                                 new_user=False)
    if own_pid_namespace and "mount" in done:
        done += namespaces.enter_pid_namespace(int(policy["limits"]["processes"]))
    if not own_pid_namespace:
        become_subreaper()
        done.append("subreaper")
    return done + _restrict(policy, done)


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
    return found


def become_subreaper() -> None:
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_orphans(keep: set[int] | frozenset[int] = frozenset()) -> int:
    """Kill and reap every child this subreaper holds (the job's orphans) but ``keep``, until none is left."""
    killed = 0
    for _ in range(100):
        children = [pid for pid in _children(os.getpid()) if pid not in keep]
        if not children:
            break
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return killed


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stopped


def _exited(pid: int, pidfd: int | None, wait_s: float | None) -> bool:
    if pidfd is not None:
        return bool(select.select([pidfd], [], [], wait_s)[0])
    time.sleep(min(wait_s if wait_s is not None else 0.05, 0.05))  # no pidfd (Linux < 5.3): poll
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait(pid: int, timeout_s: float | None) -> tuple[int, bool]:
    """Wait for the job process; kill it at the deadline or when asked to stop. (wait status, timed out)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    timed_out = False
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = None
    try:
        while not _exited(pid, pidfd, None if deadline is None else max(deadline - time.monotonic(), 0)):
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
    except _Stopped:
        os.kill(pid, signal.SIGKILL)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # from here on the supervisor only reports
    return os.waitpid(pid, 0)[1], timed_out


def _run_as_init(body: Callable[[], int]) -> int:
    """PID 1 of the job's namespace: run ``body`` in a child, reap every orphan; the child's wait status.

    (The job does not run as PID 1 itself: the kernel ignores signals PID 1 sends itself, so
    ``abort()`` or ``kill(getpid(), ...)`` would not work as everywhere else.)
    """
    job = os.fork()
    if job == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    while True:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            return 1 << 8
        if pid == job:
            return wait_status


def _job_process(policy: dict, body: Callable[[], int], outer: list[str], pipes: dict[str, int],
                 on_setup_error: Callable[[str], None]) -> None:
    """The confined job process (PID 1 of its namespace when there is one); never returns."""
    code = 1
    try:
        try:
            report: dict = {"mechanisms": _confine_job_process(policy, outer, pipes["alive"])}
        except (OSError, SetupError) as exc:
            on_setup_error(str(exc))
            code = SETUP_FAILED
            return
        if "pid" in outer:
            report["job_status"] = _run_as_init(body)
            code = 0
        os.write(pipes["report"], json.dumps(report).encode())
        os.close(pipes["report"])
        if "pid" not in outer:
            code = body()
    finally:
        os._exit(code)


def _status(outer: list[str], report: dict, wait_status: int, timed_out: bool, leftovers: int) -> dict:
    wait_status = report.get("job_status", wait_status)
    return {"mechanisms": outer + report.get("mechanisms", []), "timed_out": timed_out, "leftovers_killed": leftovers,
            "exit_code": os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else None,
            "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None}


def supervise(policy: dict, body: Callable[[], int], *, timeout_s: float | None,
              on_setup_error: Callable[[str], None], status_fd: int) -> None:
    """Run ``body`` in a confined job process (see the module docstring); never returns."""
    outer = namespaces.enter(network=bool(policy["network"]), writable=policy["write"], hidden=policy["hidden"],
                             keep=policy["read"] + policy["devices"],
                             shm_bytes=int(policy["shm_bytes"])) if policy["namespaces"] else []
    if "pid" not in outer:
        become_subreaper()
        outer.append("subreaper")
    alive_read, alive_write = os.pipe()
    report_read, report_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        for fd in (alive_write, report_read, status_fd):
            os.close(fd)
        _job_process(policy, body, outer, {"alive": alive_read, "report": report_write}, on_setup_error)
    os.close(alive_read)
    os.close(report_write)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    wait_status, timed_out = _wait(pid, timeout_s)
    leftovers = 0 if "pid" in outer else kill_orphans()
    with os.fdopen(report_read, "rb") as source:
        try:
            report = json.loads(source.read() or b"{}")
        except json.JSONDecodeError:
            report = {}
    status = _status(outer, report, wait_status, timed_out, leftovers)
    os.write(status_fd, json.dumps(status).encode() + b"\n")
    os._exit(status["exit_code"] if status["exit_code"] is not None else 128 + (status["signal"] or 0))

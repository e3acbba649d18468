"""Linux namespaces for one confined job, entered without privileges (a user namespace first).

:func:`enter` is called in a fresh, single-threaded process (``unshare(CLONE_NEWUSER)`` refuses a
threaded caller). It moves the process into its own user, PID, mount and IPC namespaces (and a
network namespace of its own when the job gets no network), maps its user and group to
themselves (files it writes keep their owner), then in the new mount namespace:

- makes every mount private (nothing propagates back) and read-only (chmod, chown and utime
  outside the job's folders fail too, which Landlock alone does not cover),
- re-binds the job's writable folders read-write,
- mounts a private ``/dev/shm`` (DataLoader workers and POSIX semaphores live there) and hides
  the folders where host sockets and users' files live (``/tmp``, ``/run``, ``/home``, ``/root``,
  ...) behind empty ones, binding back only the paths the job may use beneath them (Landlock
  cannot stop a ``connect()`` to a Unix socket by its path; a path that does not exist can),
- brings up the loopback interface of its new network namespace (a local TCP store for
  torchrun or wandb's service still works; nothing leaves the namespace).

The process's next child is PID 1 of the new PID namespace: when that child ends, the kernel kills
everything else in the namespace, ``setsid`` escapees included. :func:`enter_pid_namespace`
(run in that child) mounts its own ``/proc`` and caps the number of PIDs the namespace may use
(``/proc/sys/kernel/pid_max`` is per PID namespace since Linux 6.14).

Each step that the kernel refuses is left out and missing from the returned names, so the caller
knows what is enforced. Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import signal
import socket
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
SYS_MOUNT_SETATTR = 442
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY = 0x1
SIOCSIFFLAGS, IFF_UP, IFF_RUNNING = 0x8914, 0x1, 0x40
MIN_PID_MAX = 301  # the kernel's floor for pid_max
PR_SET_PDEATHSIG = 1
PRIVATE_TMP = ("/tmp", "/var/tmp")  # hidden, these become the job's own (memory-backed) temporary folders
PRIVATE_TMP_BYTES = 1 << 30

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> None:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _encode(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = _encode
    _check(_libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
           f"mount {target}")


def _set_readonly(target: str, readonly: bool, *, recursive: bool) -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY if readonly else 0, 0 if readonly else MOUNT_ATTR_RDONLY, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, target.encode(), flags, ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))), f"mount_setattr {target}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_ids(uid: int, gid: int) -> None:
    """Map this process's user and group to themselves in its new user namespace."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _unshare(network: bool, new_user: bool) -> list[str]:
    flags = CLONE_NEWNS | CLONE_NEWIPC | (0 if network else CLONE_NEWNET)
    if new_user:
        flags |= CLONE_NEWUSER | CLONE_NEWPID
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(flags) != 0:
        return []
    if new_user:
        _map_ids(uid, gid)
    return (["user", "pid"] if new_user else []) + ["mount", "ipc"] + ([] if network else ["network"])


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", IFF_UP | IFF_RUNNING))


def _beneath(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _hide(folder: str, keep: list[str]) -> None:
    """Put an empty tmpfs over ``folder``, then bind back the ``keep`` paths beneath it (the holes).

    (``/tmp`` and ``/var/tmp`` so become private temporary folders: Landlock lets the job write there.)

    The holes are opened before the folder disappears and bound from those descriptors, each with the
    flags of the mount it came from (read-only, or read-write for the job's writable folders).
    """
    holes: list[str] = []
    for path in sorted({item for item in keep if _beneath(item, folder)}):  # (real paths: see policy.py)
        if os.path.exists(path) and not any(_beneath(path, outer) for outer in holes):
            holes.append(path)
    opened = [(path, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path in holes]
    try:
        size = PRIVATE_TMP_BYTES if folder in PRIVATE_TMP else 1 << 20
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={1777 if folder in PRIVATE_TMP else 755}")
        for path, fd in opened:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    finally:
        for _, fd in opened:
            os.close(fd)


def _remount(writable: list[str], hidden: list[str], keep: list[str], shm_bytes: int) -> list[str]:
    """The mount-namespace steps; returns the names of those that took effect."""
    done: list[str] = []
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    try:
        _set_readonly("/", True, recursive=True)
        for path in writable:
            if os.path.isdir(path):
                _mount(path, path, None, MS_BIND | MS_REC)
                _set_readonly(path, False, recursive=False)  # (a read-only mount inside it stays so)
        done.append("readonly_root")
    except OSError:
        _set_writable_again()
    if os.path.isdir("/dev/shm"):
        with contextlib.suppress(OSError):
            _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={shm_bytes},mode=1777")
            done.append("private_shm")
    for folder in hidden:
        if os.path.isdir(folder) and not os.path.islink(folder):
            with contextlib.suppress(OSError):
                _hide(folder, [*keep, *writable])
                done.append(f"hidden {folder}")
    return done


def _set_writable_again() -> None:
    """A half-done read-only root would break the job: undo it (the job then relies on Landlock)."""
    with contextlib.suppress(OSError):
        _set_readonly("/", False, recursive=True)


def enter(*, network: bool, writable: list[str], hidden: list[str], keep: list[str], shm_bytes: int,
          new_user: bool = True) -> list[str]:
    """Enter new namespaces (see the module docstring); returns what took effect, [] when none did.

    ``hidden`` folders are replaced by empty ones but for the ``keep`` and ``writable`` paths beneath
    them (so a home folder shows the workspace and the virtual environment, nothing else).
    ``new_user=False``: the caller already holds capabilities in a user namespace of its own (a job
    forked by the fork server) and needs no new user or PID namespace.
    """
    try:
        done = _unshare(network, new_user)
    except OSError:
        return []  # e.g. a user namespace without a uid map (AppArmor's restriction): nothing usable
    if not done:
        return []
    try:
        done += _remount(writable, hidden, keep, shm_bytes)
    except OSError:
        done.remove("mount")
    if "network" in done:
        try:
            _loopback_up()
        except OSError:
            done.append("loopback_down")
    return done


def enter_pid_namespace(max_processes: int) -> list[str]:
    """In PID 1 of the new namespace: its own /proc and a cap on the PIDs it may use."""
    done: list[str] = []
    with contextlib.suppress(OSError):
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        done.append("private_proc")
    with contextlib.suppress(OSError):
        _write("/proc/sys/kernel/pid_max", str(max(max_processes + 1, MIN_PID_MAX)))
        done.append("pid_max")
    return done


def enter_server_namespaces() -> bool:
    """At the fork server's start: become PID 1 of a user and PID namespace of its own.

    Called single-threaded, before torch is imported. This process forks; the child, PID 1 of the
    new PID namespace and holding capabilities in the new user namespace, returns True and goes on
    as the server. The parent stays behind without its standard streams, waits for it and exits with
    its status (it never returns); when the parent is killed, the server and every job die with it.
    Returns False, changing nothing, when the kernel refuses the namespaces.
    """
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0:
        return False
    try:
        _map_ids(uid, gid)
        mapped = True
    except OSError:
        mapped = False  # (the PID namespace still stands: fork into it all the same, without capabilities)
    alive_read, alive_write = os.pipe()
    server = os.fork()
    if server == 0:
        os.close(alive_write)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if select.select([alive_read], [], [], 0)[0]:
            os._exit(1)
        os.close(alive_read)
        return mapped
    os.close(alive_read)
    for fd in (0, 1, 2):
        os.close(fd)
    _, wait_status = os.waitpid(server, 0)
    os._exit(os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 1)


def own_pid_namespace() -> int | None:
    """A descriptor of this process's PID namespace, when it may give each child a new one (else None).

    Checked without changing anything: re-entering the namespace one is in must be allowed, or
    the server could not come back after giving a child its own (see :func:`fork_in_new_pid_namespace`).
    """
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    if _libc.setns(fd, CLONE_NEWPID) != 0:
        os.close(fd)
        return None
    return fd


def fork_in_new_pid_namespace(own_namespace: int) -> tuple[int, bool]:
    """``os.fork()``, the child being PID 1 of a new PID namespace when the kernel allows; (pid, own namespace)."""
    isolated = _libc.unshare(CLONE_NEWPID) == 0
    try:
        pid = os.fork()
    except OSError:
        _come_back(own_namespace, isolated)
        raise
    if pid:
        _come_back(own_namespace, isolated)  # the server, never the child, returns to its own namespace
    return pid, isolated


def _come_back(own_namespace: int, isolated: bool) -> None:
    if isolated:
        _check(_libc.setns(own_namespace, CLONE_NEWPID), "setns back to the server's PID namespace")

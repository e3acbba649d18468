"""Landlock through ctypes: the kernel's unprivileged file-system (and TCP) access control.

A process builds a ruleset ("these rights are handled, i.e. denied unless a rule grants them"),
adds one rule per directory tree it may use, and restricts itself; the restriction is inherited
by every child and can never be lifted. Nothing needs installing: three system calls
(``landlock_create_ruleset``, ``landlock_add_rule``, ``landlock_restrict_self``, numbered
444-446 on every architecture Linux supports) and the structures of ``<linux/landlock.h>``::

    ruleset = Ruleset(abi_version(), network=False)
    ruleset.allow("/usr", READ)
    ruleset.allow(workspace, WRITE)
    ruleset.restrict_self()          # from here on, open() elsewhere fails with EACCES

What each ABI version adds (the rights of a newer ABI are left out on an older kernel):
1 file-system rights (Linux 5.13); 2 REFER, renaming and linking across folders (5.19);
3 TRUNCATE (6.2); 4 TCP bind/connect rules (6.7); 5 IOCTL_DEV (6.10); 6 scoping: abstract
Unix sockets and signals outside the domain (6.12); 7 audit-log flags (6.15).
Landlock also forbids ptrace (hence reading ``/proc/<pid>/environ`` or ``mem``) of any process
outside the domain, and mount changes inside it. It does not cover metadata changes (chmod,
chown, utime) nor connecting to a Unix socket by path: the mount namespace's read-only root
covers the first where user namespaces work (see ``namespaces.py``).

Standard library only: the launcher imports this before anything else.
"""

from __future__ import annotations

import ctypes
import os
import stat

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
RULE_NET_PORT = 2
PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
ALL_FS = (1 << 16) - 1
# rights that make sense on a file (not a folder); a rule on a file with any other right is EINVAL
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
         | MAKE_SYM | REFER | TRUNCATE)
DEVICE = READ_FILE | WRITE_FILE | IOCTL_DEV  # character devices: /dev/null, /dev/nvidia0, ...
LIST = READ_DIR  # see the names in a folder, open nothing in it


class LandlockError(OSError):
    """A Landlock call failed (the message names the call and the path)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _call(number: int, *args: object, what: str) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        error = ctypes.get_errno()
        raise LandlockError(error, f"{what}: {os.strerror(error)}")
    return int(result)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled at boot."""
    result = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(CREATE_RULESET_VERSION))
    return int(result) if result > 0 else 0


def handled_fs(abi: int) -> int:
    return _FS_BY_ABI.get(abi, ALL_FS) if abi > 0 else 0


class Ruleset:
    """One Landlock ruleset: every file-system right of ``abi`` is denied unless a rule allows it.

    ``network=False`` also denies TCP bind and connect (ABI 4+; UDP is not covered: use a
    network namespace for that). ``scoped`` (ABI 6+) keeps the process from connecting to
    abstract Unix sockets or signalling processes outside its own domain.
    """

    def __init__(self, abi: int, *, network: bool = True, scoped: bool = True) -> None:
        if abi < 1:
            raise LandlockError(0, "Landlock is not available on this kernel")
        self.abi = abi
        self.fs_rights = handled_fs(abi)
        net = 0 if network or abi < 4 else NET_BIND_TCP | NET_CONNECT_TCP
        scope = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scoped and abi >= 6 else 0
        attr = _RulesetAttr(self.fs_rights, net, scope)
        self.fd = _call(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                        ctypes.c_uint32(0), what="landlock_create_ruleset")
        self.rules = 0

    def allow(self, path: str, rights: int) -> bool:
        """Grant ``rights`` beneath ``path`` (a folder, or one file); False when the path does not exist."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return False
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            allowed = rights & self.fs_rights & (~0 if is_dir else FILE_RIGHTS)
            if not allowed:
                return False
            rule = _PathBeneathAttr(allowed, fd)
            _call(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(RULE_PATH_BENEATH),
                  ctypes.byref(rule), ctypes.c_uint32(0), what=f"landlock_add_rule {path}")
        finally:
            os.close(fd)
        self.rules += 1
        return True

    def restrict_self(self) -> None:
        """Enforce the ruleset on this process and its future children (for good)."""
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise LandlockError(error, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(error)}")
        try:
            _call(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0),
                  what="landlock_restrict_self")
        finally:
            os.close(self.fd)

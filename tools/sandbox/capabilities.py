"""What the sandbox enforces on this machine, found once per process by running one confined command.

``probe()`` runs ``true`` through the launcher with a no-network policy and reads back which
mechanisms took effect (``confine.py`` reports them). ``checked_policy()`` builds a job's policy
and applies the ``sandbox`` setting: with ``required`` it refuses a job this kernel cannot fully
confine; with ``auto`` it logs one warning per process naming what is not enforced.
``describe()`` is what ``torchscout doctor`` prints.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from typing import Any

from torchscout.tools.errors import ToolError
from torchscout.tools.sandbox import confine, landlock
from torchscout.tools.sandbox.commands import run_command
from torchscout.tools.sandbox.policy import PROCESSES_LIMIT, SandboxPolicy, make_policy

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 60.0
_warned: set[str] = set()


class SandboxUnavailableError(ToolError):
    """``sandbox: required`` and this kernel lacks a mechanism the job needs."""


@functools.lru_cache(maxsize=1)
def probe() -> tuple[str, ...]:
    """The mechanisms a confined job gets here (e.g. 'user', 'pid', 'network', 'landlock_fs', ...)."""
    with tempfile.TemporaryDirectory(prefix="torchscout-probe-") as folder:
        policy = make_policy("validation", temp_dir=folder, timeout_s=PROBE_TIMEOUT_S)
        policy["required"] = False
        result = run_command(["true"], timeout_s=PROBE_TIMEOUT_S, policy=policy, env={"PATH": os.defpath})
    return result.mechanisms


def _missing(policy: SandboxPolicy) -> list[str]:
    return confine.missing_for_required(dict(policy), list(probe()))


def missing_for_required() -> list[str]:
    """What ``sandbox: required`` needs for a job without network and this kernel lacks (empty: all there)."""
    with tempfile.TemporaryDirectory(prefix="torchscout-probe-") as folder:
        return _missing(make_policy("validation", temp_dir=folder))


def checked_policy(name: str, **options: Any) -> SandboxPolicy:
    """``make_policy(name, **options)``, refused under ``sandbox: required`` when the kernel falls short."""
    policy = make_policy(name, **options)
    missing = _missing(policy)
    if missing and policy["required"]:
        raise SandboxUnavailableError(
            f"the sandbox is required (sandbox: required) but this kernel does not provide {'; '.join(missing)}. "
            "Run `torchscout doctor` to see what is enforced, or set sandbox: auto to run with less.")
    key = ";".join(missing)
    if missing and key not in _warned:
        _warned.add(key)
        logger.warning("sandbox: not enforced on this kernel: %s (run `torchscout doctor`; set sandbox: required "
                       "to refuse instead)", "; ".join(missing))
    return policy


def describe() -> list[tuple[str, bool, str]]:
    """(what, enforced, how) for each protection, as ``torchscout doctor`` prints them."""
    found = set(probe())
    abi = landlock.abi_version()
    pid_ns = "pid" in found
    return [
        ("file system", "landlock_fs" in found,
         f"Landlock ABI {abi}: write only the workspace and a private temp folder; no home-folder secrets"
         if "landlock_fs" in found else "Landlock is not available: files outside the workspace are not protected"),
        ("read-only root", "readonly_root" in found,
         "mount namespace: chmod/chown/utime outside the workspace fail" if "readonly_root" in found
         else "no mount namespace: metadata changes (chmod, chown) outside the workspace are not blocked"),
        ("network", "network" in found or "landlock_tcp" in found,
         "own network namespace: no network (loopback only)" if "network" in found else
         "Landlock TCP rules: no TCP (UDP is not blocked)" if "landlock_tcp" in found else "not isolated"),
        ("process tree", True,
         "PID namespace: a timeout or the end of a job kills every process it started" if pid_ns else
         "child subreaper: orphans are killed when the job ends (no PID namespace)"),
        ("process count", "pid_max" in found or "nproc_rlimit" in found,
         f"at most {PROCESSES_LIMIT} processes and threads per job" if "pid_max" in found or "nproc_rlimit" in found
         else "not limited (root without a PID namespace on Linux 6.14+)"),
        ("signals and sockets", "landlock_scopes" in found or pid_ns,
         "no signals or abstract Unix sockets outside the job" if "landlock_scopes" in found or pid_ns
         else "not scoped (Landlock ABI < 6, no PID namespace)"),
        ("limits", "rlimits" in found, "memory (RLIMIT_DATA), file size, open files, CPU time, no core dumps"),
        ("shared memory", "private_shm" in found,
         "private /dev/shm" if "private_shm" in found else "/dev/shm is shared with the host"),
    ]

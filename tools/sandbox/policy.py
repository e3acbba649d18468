"""What a confined child may do: one plain-data policy per kind of job, resolved from the settings.

Every policy (a JSON-able dict, applied in the child by ``confine.py``) allows:

- **read** (and execute): the system (``/usr``, ``/lib*``, ``/bin``, ``/opt``, ``/sys``, ``/etc``
  without ``shadow``, ``sudoers``, ``ssh/`` host keys and TLS private keys), the Python environment
  (prefixes and every ``sys.path`` folder), torchscout itself, the data folder and the model caches
  (``~/.cache/torch``, ``~/.cache/huggingface`` without its token files, matplotlib's);
  never the rest of a home folder (``~/.ssh``, ``~/.aws``, ``~/.config``) or other users' homes;
- **write**: the workspace and a private temporary folder (``TMPDIR``); ``/dev/shm`` is private;
- **devices**: ``/dev/null``, ``/dev/urandom``, ..., and the GPU's (``/dev/nvidia*``, ``/dev/dri``);
- **network**: none, except where the profile or the settings give it.

The kinds (``PROFILES``): ``validation`` (generated-code checks), ``evaluation`` and ``training``
(candidate models), ``shell`` (bash_run/python_run: network per ``sandbox_network``), ``packages``
(pip: network, and writing the Python environment).
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict

from torchscout.settings import get_settings

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("validation", "evaluation", "training", "shell", "packages")
SYSTEM_TREES = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/opt", "/sys", "/nix/store",
                "/snap", "/usr/local")
# /etc minus what holds credentials (paths relative to /etc)
ETC_SECRETS = frozenset({"shadow", "shadow-", "gshadow", "gshadow-", "sudoers", "sudoers.d", "ssh", "ssl/private",
                         "security/opasswd", "krb5.keytab", "netrc", "wandb"})
HF_SECRETS = frozenset({"token", "stored_tokens"})
DEVICE_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
                "/dev/pts", "/dev/dri", "/dev/kfd")
# replaced by empty folders in the job's mount namespace, but for the paths it may use beneath them:
# host sockets (docker, dbus, ssh and gpg agents, X11) and other users' files live there
HIDDEN = ("/tmp", "/var/tmp", "/run", "/var/run", "/home", "/root", "/mnt", "/media", "/srv")
PROCESSES_LIMIT = 1024
FILE_SIZE_LIMIT = 16 << 30
OPEN_FILES_LIMIT = 16384
SHM_BYTES = 2 << 30


def _default_memory_limit() -> int:
    """Half the machine's RAM, at most 16 GiB: room for a ResNet-50 forward, not for a runaway."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        physical = 8 << 30
    return int(min(physical // 2, 16 << 30))


DEFAULT_MEMORY_LIMIT_BYTES = _default_memory_limit()


class Limits(TypedDict):
    memory_bytes: int | None  # RLIMIT_DATA per process (None: no limit)
    memory_on_top: bool  # counted on top of what the warm server already holds
    processes: int  # PIDs of the job's namespace (threads count)
    file_size_bytes: int
    open_files: int
    cpu_seconds: int | None


class SandboxPolicy(TypedDict):
    """Every path is a real path (symbolic links resolved), as the child compares them by prefix."""

    name: str
    required: bool  # sandbox: required -- the child refuses to run without every mechanism
    namespaces: bool
    network: bool
    read: list[str]
    write: list[str]
    devices: list[str]
    list: list[str]  # folders whose names may be listed, nothing opened (/dev)
    hidden: list[str]
    shm_bytes: int
    temp_dir: str
    limits: Limits


def _tree_except(root: Path, excluded: Iterable[str]) -> list[str]:
    """``root``'s entries as separate grants, leaving out ``excluded`` (relative paths, nested allowed)."""
    excluded = set(excluded)
    if not root.is_dir():
        return []
    grants = []
    for entry in sorted(root.iterdir()):
        nested = {item.split("/", 1)[1] for item in excluded if item.startswith(entry.name + "/")}
        if entry.name in excluded:
            continue
        if nested and entry.is_dir() and not entry.is_symlink():
            grants += _tree_except(entry, nested)
        else:
            grants.append(str(entry))
    return grants


@functools.lru_cache(maxsize=1)
def system_read_paths() -> tuple[str, ...]:
    """The system and the Python environment, readable by every confined child."""
    paths = [path for path in SYSTEM_TREES if os.path.exists(path)]
    paths += _tree_except(Path("/etc"), ETC_SECRETS)
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
              *site.getsitepackages(), site.getusersitepackages(), *sysconfig.get_paths().values()}
    python.update(entry for entry in sys.path if entry and os.path.isdir(entry))
    python.add(str(PACKAGE_ROOT))  # torchscout itself (an editable install is not on sys.path)
    paths += sorted(path for path in python if os.path.exists(path))
    return tuple(dict.fromkeys(os.path.realpath(path) for path in paths))


def cache_read_paths() -> list[str]:
    """Model and font caches under the home folder (no token files): pretrained weights, tokenizers."""
    home = Path.home()
    paths = [os.environ.get("TORCH_HOME") or str(home / ".cache" / "torch"), str(home / ".cache" / "matplotlib"),
             str(home / ".config" / "matplotlib")]
    paths += _tree_except(Path(os.environ.get("HF_HOME") or home / ".cache" / "huggingface"), HF_SECRETS)
    return [os.path.realpath(path) for path in paths if os.path.exists(path)]


@functools.lru_cache(maxsize=1)
def device_paths() -> tuple[str, ...]:
    gpus = sorted(str(path) for path in Path("/dev").glob("nvidia*"))
    return tuple(os.path.realpath(path) for path in (*DEVICE_FILES, *gpus) if os.path.exists(path))


def package_write_paths() -> list[str]:
    """Where pip writes: the environment's install folders and pip's cache."""
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib", "scripts", "data")}
    paths.add(str(Path.home() / ".cache" / "pip"))
    return sorted(os.path.realpath(path) for path in paths if os.path.isdir(path))


def _real(paths: Iterable[str]) -> list[str]:
    return [os.path.realpath(path) for path in paths]


def make_policy(name: str, *, temp_dir: str, network: bool = False, memory_bytes: int | None = None,
                memory_on_top: bool = False, timeout_s: float | None = None, extra_read: Iterable[str] = (),
                extra_write: Iterable[str] = ()) -> SandboxPolicy:
    """The policy for one job of kind ``name`` (see ``PROFILES``), from the current settings."""
    if name not in PROFILES:
        raise ValueError(f"unknown sandbox profile {name!r}; known: {', '.join(PROFILES)}")
    settings = get_settings()
    # /dev/shm: DataLoader workers' queues and POSIX semaphores (private to the job where a mount namespace is)
    write = _real([str(settings.workspace), temp_dir, *(["/dev/shm"] if os.path.isdir("/dev/shm") else []),
                   *extra_write])
    if name == "packages":
        write += package_write_paths()
    read = [*system_read_paths(), *cache_read_paths(), *_real([str(settings.data_dir), *extra_read])]
    if network:  # name resolution (resolv.conf may point into /run)
        read.append(os.path.dirname(os.path.realpath("/etc/resolv.conf")))
    if name == "packages":  # pip's own configuration
        read += _real([str(Path.home() / ".config" / "pip"), str(Path.home() / ".pip")])
    cpu = None if timeout_s is None else int(timeout_s * (os.cpu_count() or 1) * 1.2) + 60
    return SandboxPolicy(
        name=name, required=settings.sandbox == "required", namespaces=True, network=network,
        read=read, write=write, devices=[*device_paths()], list=["/dev"], hidden=list(HIDDEN), shm_bytes=SHM_BYTES,
        temp_dir=temp_dir,
        limits=Limits(memory_bytes=memory_bytes, memory_on_top=memory_on_top, processes=PROCESSES_LIMIT,
                      file_size_bytes=FILE_SIZE_LIMIT, open_files=OPEN_FILES_LIMIT, cpu_seconds=cpu),
    )

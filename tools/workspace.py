"""The workspace: the one folder every tool may touch.

Every path a tool receives goes through :func:`resolve`. Relative paths are taken from the
workspace root (``TORCHSCOUT_WORKSPACE`` or the current directory); a path that resolves
outside it -- through ``..``, an absolute path elsewhere, or a symlink pointing out -- is
refused. Writes go through :func:`atomic_write_text` / :func:`atomic_write_bytes` so a
crash never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from torchscout.settings import get_settings
from torchscout.tools.errors import WorkspaceError


def workspace_root() -> Path:
    """The resolved workspace root (symlinks resolved, so containment checks are exact)."""
    return Path(os.path.realpath(get_settings().workspace))


def resolve(path: str | os.PathLike[str], *, must_exist: bool = False, kind: str = "path") -> Path:
    """Return the absolute, symlink-free path for ``path`` inside the workspace.

    Raises :class:`WorkspaceError` when the path is empty, contains a NUL byte, escapes the
    workspace, or (with ``must_exist``) does not exist.
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise WorkspaceError(f"the {kind} is empty; give a path relative to the workspace root")
    if "\x00" in text:
        raise WorkspaceError(f"the {kind} {text!r} contains a NUL byte")
    _check_lengths(text, kind)
    root = workspace_root()
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    # realpath follows every symlink that exists, so a link pointing out of the workspace is
    # caught here as well as '..' segments and absolute paths elsewhere.
    resolved = Path(os.path.realpath(candidate))
    if resolved != root and not resolved.is_relative_to(root):
        raise WorkspaceError(
            f"the {kind} {text!r} resolves to {resolved}, which is outside the workspace {root}; "
            "use a path inside the workspace (set TORCHSCOUT_WORKSPACE to change the workspace)"
        )
    if must_exist and not resolved.exists():
        raise WorkspaceError(f"the {kind} {text!r} does not exist in the workspace {root}")
    return resolved


# What the file system takes (Linux: NAME_MAX and PATH_MAX, in bytes): longer names fail in open()
# with ENAMETOOLONG, which would otherwise surface as an unexpected error.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def _check_lengths(text: str, kind: str) -> None:
    encoded = os.fsencode(text)
    if len(encoded) > MAX_PATH_BYTES:
        raise WorkspaceError(f"the {kind} is {len(encoded)} bytes long; paths may be at most {MAX_PATH_BYTES}")
    for part in encoded.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            shown = os.fsdecode(part[:40]) + "..."
            raise WorkspaceError(f"the {kind} has a name of {len(part)} bytes ({shown!r}); file and folder "
                                 f"names may be at most {MAX_NAME_BYTES} bytes")


def relative_to_workspace(path: Path) -> str:
    """``path`` as a POSIX string relative to the workspace root (for results and messages)."""
    root = workspace_root()
    resolved = Path(os.path.realpath(path))
    try:
        return resolved.relative_to(root).as_posix() or "."
    except ValueError:
        return str(resolved)


@contextlib.contextmanager
def atomic_writer(target: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Open a temporary file next to ``target``; on success rename it over ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            # keep the permissions of the file being replaced (an executable script stays executable)
            os.chmod(temp_name, target.stat().st_mode & 0o7777)
        else:
            os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def atomic_write_text(target: Path, content: str) -> None:
    """Write ``content`` to ``target`` atomically (temp file in the same folder, then rename)."""
    with atomic_writer(target, "w") as handle:
        handle.write(content)


def atomic_write_bytes(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` atomically."""
    with atomic_writer(target, "wb") as handle:
        handle.write(content)

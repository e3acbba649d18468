"""What a tool may replace or remove: only folders a tool wrote, recognised by their marker file.

A tool that writes a whole folder (a tokenizer folder, say) writes it through
:func:`write_owned_folder`: the files go into a staging folder next to the target (so inside the
workspace), a marker ``.torchscout-owner.json`` listing the folder's kind and every file written
is added, and the staging folder is renamed into place. Writing the same target again is allowed
only when :func:`check_folder_target` finds one of three things there: nothing, an empty folder,
or a folder holding that kind's marker and no file the marker does not list. Anything else -- a
user's folder, the workspace root, torchscout's state folder or a folder holding it -- is refused
before any file is touched, and a replaced folder is removed file by file from its marker's list
(:func:`remove_owned_folder`), never with a recursive delete, so a file put there later survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, workspace_root

MARKER_NAME = ".torchscout-owner.json"


class ForeignTargetError(ToolError):
    """The target exists and is not something this tool wrote; nothing was changed."""


def _marker(folder: Path) -> dict | None:
    path = folder / MARKER_NAME
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    return marker


def _protected(folder: Path) -> str | None:
    """Why ``folder`` may never be replaced whatever it holds, or None."""
    root = workspace_root()
    state_dir = Path(os.path.realpath(get_settings().state_dir))
    if folder == root:
        return "it is the workspace root"
    if state_dir == folder or state_dir.is_relative_to(folder):
        return "it holds torchscout's state folder (.torchscout: the run database and the registry)"
    if folder.is_relative_to(state_dir):
        return "it is inside torchscout's state folder"
    return None


def check_not_state(path: Path, what: str) -> None:
    """Refuse a write at ``path`` inside torchscout's state folder (the run database, the registry)."""
    state_dir = Path(os.path.realpath(get_settings().state_dir))
    if path == state_dir or path.is_relative_to(state_dir):
        raise ForeignTargetError(f"{what} {relative_to_workspace(path)} is inside torchscout's state folder "
                                 "(the run database and the registry live there); write somewhere else")


def check_folder_target(folder: Path, kind: str, what: str) -> None:
    """Raise :class:`ForeignTargetError` unless ``folder`` may be (re)written as a ``kind`` folder.

    ``what`` names the argument for the message (``tokenizer_path 'src'``).
    """
    reason = _protected(folder)
    if reason is None and folder.exists() and not folder.is_dir():
        reason = "it is a file"
    if reason is None and folder.is_dir():
        entries = sorted(entry.name for entry in folder.iterdir())
        marker = _marker(folder)
        if entries and marker is None:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            reason = f"it already holds files torchscout did not write ({shown})"
        elif marker is not None and marker.get("kind") != kind:
            reason = f"it holds a {marker.get('kind')} folder, not a {kind} folder"
        elif marker is not None:
            foreign = sorted(set(entries) - set(marker["files"]) - {MARKER_NAME})
            if foreign:
                reason = f"files were added to it since torchscout wrote it ({', '.join(foreign[:5])})"
    if reason is not None:
        raise ForeignTargetError(f"{what} ({relative_to_workspace(folder)}) cannot be written: {reason}. "
                                 "Nothing was changed; choose a new or empty folder")


def _new_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``folder``, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def write_owned_folder(folder: Path, kind: str, what: str, write_files: Callable[[Path], None]) -> None:
    """Write a ``kind`` folder at ``folder`` as a whole: ``write_files(staging)`` fills it.

    Checks the target first (:func:`check_folder_target`), stages next to it, and replaces an
    earlier folder of the same kind only after the new one is complete. On failure the target is
    as it was and nothing this call created is left behind.
    """
    check_folder_target(folder, kind, what)
    created = _new_folders(folder.parent)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name[:40]}.staging-", dir=folder.parent))
    retired: Path | None = None
    try:
        write_files(staging)
        files = sorted(entry.name for entry in staging.iterdir())
        nested = [name for name in files if not (staging / name).is_file() or (staging / name).is_symlink()]
        if nested:  # the marker lists plain files only, so removal never needs to recurse
            raise ToolError(f"a {kind} folder holds plain files only, but {', '.join(nested)} is not one")
        atomic_write_text(staging / MARKER_NAME, json.dumps({"kind": kind, "files": files}, indent=2) + "\n")
        staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        check_folder_target(folder, kind, what)  # again: the folder may have changed while we worked
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        elif folder.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{folder.name[:40]}.retired-", dir=folder.parent))
            os.replace(folder, retired / folder.name)
        os.replace(staging, folder)
    except BaseException:
        if retired is not None and not folder.exists():
            os.replace(retired / folder.name, folder)
        shutil.rmtree(staging, ignore_errors=True)  # made by mkdtemp above: only this call's files
        if retired is not None:
            _remove_empty(retired)
        for parent in created:
            _remove_empty(parent)
        raise
    if retired is not None:
        remove_owned_folder(retired / folder.name, kind)
        _remove_empty(retired)


def remove_owned_folder(folder: Path, kind: str) -> None:
    """Delete a ``kind`` folder a tool wrote: the files its marker lists, the marker, the folder.

    A folder without that marker, or holding anything else, is left alone (a ForeignTargetError).
    """
    check_folder_target(folder, kind, f"the {kind} folder")
    marker = _marker(folder)
    for name in (marker or {}).get("files", []):
        with contextlib.suppress(FileNotFoundError):
            (folder / Path(name).name).unlink()
    with contextlib.suppress(FileNotFoundError):
        (folder / MARKER_NAME).unlink()
    folder.rmdir()


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()

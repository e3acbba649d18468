"""The workspace registry: what must outlive one tool call, usable by name from any process.

Registered optimizer configs, custom optimizers and tokenizers live in one JSON manifest,
``<workspace>/.torchscout/registry.json``::

    {"version": 1,
     "entries": {"optimizer_config": {"tuned_adamw": {"kind": ..., "name": ..., "registered_at": ...,
                                                      "data": {...}}},
                 "custom_optimizer": {...},
                 "tokenizer": {...}}}

Every change is a read-modify-write under a ``filelock.FileLock`` (so two processes
registering at once lose nothing) and the file is replaced atomically (so a reader, which
takes no lock, sees the old manifest or the new one, never half of one). Paths stored in
``data`` are workspace-relative so a workspace can be moved.

Names are unique within a kind; registering a name again replaces the entry and the
result says so. Looking up an unknown name raises a :class:`ToolError` that lists the
registered names and the close matches.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

from filelock import FileLock, Timeout

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.workspace import atomic_write_text

REGISTRY_FILE_NAME = "registry.json"
REGISTRY_VERSION = 1
KINDS = ("optimizer_config", "custom_optimizer", "tokenizer")
MAX_NAME_LENGTH = 128
# Waiting longer than this for another process means something is stuck holding the lock.
LOCK_TIMEOUT_S = 60.0

_KIND_LABELS = {
    "optimizer_config": "optimizer config",
    "custom_optimizer": "custom optimizer",
    "tokenizer": "tokenizer",
}


class RegistryEntry(TypedDict):
    """One registered name, as the manifest stores it."""

    kind: str  # one of KINDS
    name: str
    registered_at: str  # ISO 8601, UTC, to the second
    data: dict[str, Any]  # the family's own record: a normalised optimizer config, a tokenizer's files, ...


class Registration(TypedDict):
    """What :func:`register` did, for a tool's answer."""

    kind: str
    name: str
    replaced: bool  # an earlier entry of that kind and name was replaced
    message: str


class Manifest(TypedDict):
    version: int
    entries: dict[str, dict[str, RegistryEntry]]  # kind -> name -> entry


def registry_path() -> Path:
    """The manifest of the current workspace (it may not exist yet)."""
    return get_settings().state_dir / REGISTRY_FILE_NAME


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")


def _empty_manifest() -> Manifest:
    return {"version": REGISTRY_VERSION, "entries": {kind: {} for kind in KINDS}}


def _read_manifest(path: Path) -> Manifest:
    if not path.exists():
        return _empty_manifest()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ToolError(
            f"the workspace registry {path} is not valid JSON ({exc}); fix or delete it "
            "(deleting forgets every registered optimizer config, custom optimizer and tokenizer)"
        ) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), dict):
        raise ToolError(f"the workspace registry {path} has no 'entries' mapping; fix or delete it")
    for kind in KINDS:
        manifest["entries"].setdefault(kind, {})
    return cast(Manifest, manifest)  # as written by _locked_manifest


@contextlib.contextmanager
def _locked_manifest() -> Iterator[Manifest]:
    """Yield the manifest for changing; it is written back atomically when the block ends."""
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            manifest = _read_manifest(path)
            yield manifest
            atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except Timeout as exc:
        raise ToolError(
            f"another process has held the registry lock {lock.lock_file} for over {LOCK_TIMEOUT_S:.0f} s; "
            "wait for it to finish, or delete the lock file if no torchscout process is running"
        ) from exc


def check_name(kind: str, name: object) -> str:
    """Refuse a name :func:`register` would refuse, or a registry it could not write; tools call it
    before they touch the disk.

    A name is also a file or folder name (``tokenizers/<name>``, ``optimizers/<name>.py``), so it
    is one path segment: printable, no slash, not starting with a dot, at most 128 characters.
    """
    _check_kind(kind)
    label = _KIND_LABELS[kind]
    if not isinstance(name, str) or not name.strip():
        raise ToolError(f"a {label} needs a non-empty name")
    if len(name) > MAX_NAME_LENGTH:
        raise ToolError(f"the {label} name is {len(name)} characters long; use at most {MAX_NAME_LENGTH}")
    if name != name.strip() or not name.isprintable() or "/" in name or "\\" in name or name.startswith("."):
        raise ToolError(f"the {label} name {name!r} must be one plain name: printable, no slash or surrounding "
                        "spaces, not starting with '.' (e.g. 'bpe_8k')")
    _read_manifest(registry_path())  # a corrupt registry is reported now, before a tool writes its files
    return name


def register(kind: str, name: str, data: Mapping[str, object]) -> Registration:
    """Record ``data`` (JSON-able) under ``kind``/``name``, replacing an earlier entry.

    Returns ``{"kind", "name", "replaced": bool, "message"}``; ``message`` says whether an
    earlier entry was replaced.
    """
    check_name(kind, name)
    # Fail before taking the lock if the data cannot be stored.
    json.dumps(data)
    entry: RegistryEntry = {
        "kind": kind,
        "name": name,
        "registered_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "data": dict(data),
    }
    with _locked_manifest() as manifest:
        replaced = name in manifest["entries"][kind]
        manifest["entries"][kind][name] = entry
    label = _KIND_LABELS[kind]
    message = (f"replaced the earlier {label} registered as {name!r}" if replaced
               else f"registered {label} {name!r}")
    return {"kind": kind, "name": name, "replaced": replaced, "message": message}


def unregister(kind: str, name: str) -> bool:
    """Forget ``kind``/``name``; returns whether it was registered."""
    _check_kind(kind)
    with _locked_manifest() as manifest:
        return manifest["entries"][kind].pop(name, None) is not None


def list_entries(kinds: str | Iterable[str] | None = None) -> list[RegistryEntry]:
    """Every entry (``{"kind", "name", "registered_at", "data"}``) of ``kinds`` (default all), by name."""
    wanted = _as_kinds(kinds)
    manifest = _read_manifest(registry_path())
    entries = [entry for kind in wanted for entry in manifest["entries"][kind].values()]
    return sorted(entries, key=lambda entry: (entry["name"], entry["kind"]))


def names(kinds: str | Iterable[str] | None = None) -> list[str]:
    """The registered names of ``kinds`` (default all), sorted."""
    return sorted({entry["name"] for entry in list_entries(kinds)})


def find(kinds: str | Iterable[str], name: str) -> RegistryEntry | None:
    """The entry registered as ``name`` under the first of ``kinds`` that has it, else None."""
    manifest = _read_manifest(registry_path())
    for kind in _as_kinds(kinds):
        entry = manifest["entries"][kind].get(name)
        if entry is not None:
            return entry
    return None


def get(kinds: str | Iterable[str], name: str) -> RegistryEntry:
    """Like :func:`find`, but an unknown name raises a ToolError listing what is registered."""
    entry = find(kinds, name)
    if entry is not None:
        return entry
    raise ToolError(unknown_name_message(kinds, name))


def unknown_name_message(kinds: str | Iterable[str], name: str) -> str:
    """'no tokenizer named X is registered; did you mean ...? registered: ...' for an error."""
    wanted = _as_kinds(kinds)
    label = " or ".join(_KIND_LABELS[kind] for kind in wanted)
    registered = names(wanted)
    close = difflib.get_close_matches(name, registered, n=3, cutoff=0.6)
    message = f"no {label} named {name!r} is registered in this workspace"
    if close:
        message += f"; did you mean {', '.join(repr(match) for match in close)}?"
    if registered:
        message += f" Registered: {', '.join(registered)}."
    else:
        message += f" Nothing of that kind is registered yet ({registry_path()})."
    return message


def _as_kinds(kinds: str | Iterable[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return KINDS
    wanted = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for kind in wanted:
        _check_kind(kind)
    return wanted

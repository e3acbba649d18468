"""A run's trace for other tools (``torchscout trace NAME --json``): a versioned, documented contract.

The document (:class:`TraceDocument`, JSON Schema in ``graphs/trace_schema.json``) lists every
checkpoint of every branch of the run, oldest first per branch, each with the node that wrote
it (recorded by the node at write time), its parent checkpoint, its branch, a UTC ISO-8601 time
and, by default, the state as a diff against its parent checkpoint:

- ``set``: JSON pointer (RFC 6901) -> new value, for keys added or changed;
- ``appended``: JSON pointer of a list -> the items added at its end (the decision log, failures);
- ``removed``: JSON pointers of keys that are gone.

Applying each step's diff to its parent's state rebuilds the state; the first checkpoint's diff is
against ``{}``. With ``full_state`` every step carries its whole state instead. The state is plain
data; anything that JSON cannot hold as is (a tuple, a non-finite float, an object) is converted,
and ``conversions`` says where, from which type and to what: nothing is stringified silently.

``schema_version`` is "MAJOR.MINOR": a reader written for MAJOR keeps working when MINOR grows.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict, Union

from langgraph.graph.state import CompiledStateGraph

from torchscout.graphs.branches import MAIN_BRANCH
from torchscout.graphs.checkpointing import (
    HistoryRow,
    by_branch,
    checkpoint_id_of,
    history_row,
    parent_id_of,
    snapshots,
    utc_time,
)

# Plain JSON data, as the trace holds it (the state after conversion).
JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]  # noqa: UP007
JsonObject = dict[str, JsonValue]

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = Path(__file__).with_name("trace_schema.json")


class StateDiff(TypedDict):
    set: JsonObject
    appended: dict[str, list[JsonValue]]
    removed: list[str]


class Conversion(TypedDict):
    """A value JSON could not hold as it was: where (first seen), what it was, what it became."""

    checkpoint_id: str
    path: str              # JSON pointer into the state ("/values/...") or the metadata ("/metadata/...")
    from_type: str         # the Python type, e.g. "tuple", "float" (nan), "pathlib.PosixPath"
    to: Literal["array", "string"]


class TraceStep(HistoryRow):
    metadata: JsonObject              # LangGraph's checkpoint metadata (source, step, parents, ...)
    state: JsonObject | None          # the whole state (state_mode "full"), else None
    state_diff: StateDiff | None          # the change from the parent checkpoint (state_mode "diff")


class BranchInfo(TypedDict):
    branch: str
    parent_checkpoint_id: str | None      # the checkpoint a fork started from (None for main)
    run_dir: str | None                   # where the branch writes its files


class TraceDocument(TypedDict):
    schema_version: str
    run_name: str
    thread_id: str
    generated_at: str                     # UTC ISO-8601
    state_mode: Literal["diff", "full"]
    branches: list[BranchInfo]
    steps: list[TraceStep]
    conversions: list[Conversion]


def trace_document(graph: CompiledStateGraph, run_name: str, thread_id: str, *,
                   full_state: bool = False) -> TraceDocument:
    """The trace of run ``run_name`` (its checkpoint thread ``thread_id``)."""
    snapshot_list = by_branch(snapshots(graph, thread_id))
    by_id = {checkpoint_id_of(snapshot): snapshot for snapshot in snapshot_list}
    converter = _Converter()
    plain_states: dict[str, JsonObject] = {}
    steps: list[TraceStep] = []
    branches: dict[str, BranchInfo] = {}
    for snapshot in snapshot_list:
        row = history_row(snapshot, by_id.get(parent_id_of(snapshot)))
        checkpoint_id = row["checkpoint_id"]
        row["time"] = utc_time(snapshot, timespec="milliseconds")
        state = converter.plain(dict(snapshot.values or {}), checkpoint_id, "/values")
        plain_states[checkpoint_id] = state
        parent_state = plain_states.get(row["parent_checkpoint_id"] or "", {})
        steps.append(TraceStep(**row, metadata=converter.plain(dict(snapshot.metadata or {}), checkpoint_id,
                                                               "/metadata"),
                               state=state if full_state else None,
                               state_diff=None if full_state else state_diff(parent_state, state)))
        if row["branch"] not in branches:
            record = state.get("branch") or {}
            branches[row["branch"]] = BranchInfo(
                branch=row["branch"], parent_checkpoint_id=record.get("parent_checkpoint_id"),
                run_dir=state.get("run_dir") if row["branch"] != MAIN_BRANCH else f"runs/{run_name}")
    return TraceDocument(schema_version=SCHEMA_VERSION, run_name=run_name, thread_id=thread_id,
                         generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         state_mode="full" if full_state else "diff", branches=list(branches.values()),
                         steps=steps, conversions=converter.conversions)


def pointer(path: str, key: str) -> str:
    """``path`` extended by ``key``, escaped as RFC 6901 asks."""
    return f"{path}/{key.replace('~', '~0').replace('/', '~1')}"


def state_diff(old: JsonObject, new: JsonObject) -> StateDiff:
    """What changed from ``old`` to ``new`` (both plain JSON data), key by key, recursing into objects."""
    diff = StateDiff(set={}, appended={}, removed=[])
    _diff_into(diff, old, new, "")
    return diff


def _diff_into(diff: StateDiff, old: JsonObject, new: JsonObject, path: str) -> None:
    for key, value in new.items():
        here = pointer(path, key)
        if key not in old:
            diff["set"][here] = value
        elif old[key] == value:
            continue
        elif isinstance(value, dict) and isinstance(old[key], dict):
            _diff_into(diff, old[key], value, here)
        elif isinstance(value, list) and isinstance(old[key], list) and value[:len(old[key])] == old[key]:
            diff["appended"][here] = value[len(old[key]):]
        else:
            diff["set"][here] = value
    diff["removed"].extend(pointer(path, key) for key in old if key not in new)


class _Converter:
    """Makes values JSON data, recording each conversion once (by path and type)."""

    def __init__(self) -> None:
        self.conversions: list[Conversion] = []
        self._seen: set[tuple[str, str]] = set()

    def _note(self, checkpoint_id: str, path: str, value: Any, to: Literal["array", "string"]) -> None:
        kind = type(value)
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        if (path, name) not in self._seen:
            self._seen.add((path, name))
            self.conversions.append(Conversion(checkpoint_id=checkpoint_id, path=path, from_type=name, to=to))

    def plain(self, value: Any, checkpoint_id: str, path: str) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            self._note(checkpoint_id, path, value, "string")
            return str(value)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    self._note(checkpoint_id, pointer(path, str(key)), key, "string")
            return {str(key): self.plain(item, checkpoint_id, pointer(path, str(key))) for key, item in value.items()}
        if isinstance(value, list | tuple):
            if isinstance(value, tuple):
                self._note(checkpoint_id, path, value, "array")
            return [self.plain(item, checkpoint_id, f"{path}/{index}") for index, item in enumerate(value)]
        self._note(checkpoint_id, path, value, "string")
        return str(value)

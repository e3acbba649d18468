"""The planner registry: a name in the task file (``planner: builtin``) -> a Planner object.

Planners register themselves with :func:`register_planner` (the same pattern as the dataset
registry): ``builtin`` (``builtin_planner.py``) and ``llm`` (``llm_planner.py``) are loaded on
first lookup, and a new planner is a class with ``propose`` / ``propose_optimizers`` (the
:class:`~torchscout.agent.proposal.Planner` protocol) decorated with ``@register_planner("name", ...)``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torchscout.tools.errors import ToolError

# Modules whose planners register themselves when imported (loaded on the first lookup).
_SOURCE_MODULES = ("torchscout.agent.builtin_planner", "torchscout.agent.llm_planner")


@dataclass(frozen=True)
class PlannerEntry:
    create: Callable[[], Any]   # returns a Planner (see proposal.Planner)
    description: str


PLANNERS: dict[str, PlannerEntry] = {}


def register_planner(name: str, *, description: str) -> Callable:
    """Class decorator: record a planner class (created without arguments) under ``name``."""

    def record(planner_class: type) -> type:
        PLANNERS[name] = PlannerEntry(planner_class, description)
        return planner_class

    return record


def _load_sources() -> None:
    for module in _SOURCE_MODULES:
        importlib.import_module(module)


def planner_names() -> list[str]:
    """Every registered planner name."""
    _load_sources()
    return sorted(PLANNERS)


def unknown_planner_message(name: str) -> str:
    near = difflib.get_close_matches(name, PLANNERS, n=2)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return f"unknown planner {name!r}{hint}; choose one of {planner_names()}"


def get_planner(name: str) -> Any:
    """A new planner object for ``name``; an unknown name raises a ToolError listing the known ones."""
    _load_sources()
    entry = PLANNERS.get(name)
    if entry is None:
        raise ToolError(unknown_planner_message(name))
    return entry.create()

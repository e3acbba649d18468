"""The planner registry: a name in the task file (``planner: builtin``) -> a Planner object.

Planners register themselves in :data:`PLANNERS` with :func:`register_planner` (the registry
pattern of :mod:`torchscout.tools.lookup`, as datasets and metrics do): ``builtin``
(``builtin_planner.py``) and ``llm`` (``llm_planner.py``) are loaded on first lookup, and a new
planner is a class with ``propose`` / ``propose_optimizers`` (the
:class:`~torchscout.agent.proposal.Planner` protocol) decorated with ``@register_planner("name", ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchscout.tools.lookup import Registry

# Each entry is a planner class, created without arguments; its modules are loaded on the first lookup.
PLANNERS: Registry[Callable[[], Any]] = Registry(
    "planner", sources=("torchscout.agent.builtin_planner", "torchscout.agent.llm_planner"))


def register_planner(name: str, *, description: str) -> Callable:
    """Class decorator: record a planner class (created without arguments) under ``name``."""
    return PLANNERS.register(name, description=description)


def planner_names() -> list[str]:
    """Every registered planner name."""
    return sorted(PLANNERS)


def get_planner(name: str) -> Any:
    """A new planner object for ``name``; an unknown name raises UnknownNameError (a ToolError)."""
    return PLANNERS.get(name)()

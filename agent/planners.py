"""Which planner proposes a run's candidates: a name in the task file -> a Planner object.

``builtin`` is always available. ``llm`` lives in ``torchscout.agent.llm_planner`` (the LLM
side of the research loop); when that module is not part of this installation the error says
so and how to run with the builtin planner instead.
"""

from __future__ import annotations

from importlib import import_module

from torchscout.agent.proposal import Planner
from torchscout.tools.errors import ToolError

# planner name -> "module:class"
PLANNERS: dict[str, str] = {
    "builtin": "torchscout.agent.builtin_planner:BuiltinPlanner",
    "llm": "torchscout.agent.llm_planner:LLMPlanner",
}


def get_planner(name: str) -> Planner:
    """A new planner object for ``name`` (see :data:`PLANNERS`)."""
    target = PLANNERS.get(name)
    if target is None:
        raise ToolError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    module_name, class_name = target.split(":")
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise ToolError(f"the {name!r} planner is not available in this installation ({module_name} is "
                        "missing); set `planner: builtin` in the task file or pass --planner builtin") from exc
    return getattr(module, class_name)()

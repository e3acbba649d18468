"""torchscout: an autonomous PyTorch research agent.

The public API, imported lazily so ``import torchscout`` stays cheap:

- ``ALL_TOOLS``: the 15 LangChain tools (also ``torchscout.tools.<name>``),
- ``configure(**settings)``: set the workspace, the internal LLM, the W&B mode, ...,
- ``get_settings()``: the resolved settings,
- ``build_optimizer(model, spec)``: an optimizer from a registered name or a spec dict,
- ``research(task, name=...)``: run the research graph on a task file or dict,
- ``resume(name, approve=None)``: finish an interrupted or paused run,
- ``build_graph(checkpointer=None)``: the compiled research graph,
- ``build_agent(llm=None, checkpointer=None)``: the tool-calling agent with all 15 tools.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY_EXPORTS = {
    "ALL_TOOLS": "torchscout.tools:ALL_TOOLS",
    "configure": "torchscout.settings:configure",
    "get_settings": "torchscout.settings:get_settings",
    "build_optimizer": "torchscout.tools.optim.configurator:build_optimizer",
    "research": "torchscout.graphs.driver:research",
    "resume": "torchscout.graphs.driver:resume",
    "build_graph": "torchscout.graphs.graph:build_graph",
    "build_agent": "torchscout.agent.react_agent:build_agent",
}


def __getattr__(name: str) -> Any:
    target = _LAZY_EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'torchscout' has no attribute {name!r}")
    module_name, attribute = target.split(":")
    return getattr(import_module(module_name), attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_EXPORTS])


__all__ = ["__version__", *_LAZY_EXPORTS]

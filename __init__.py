"""torchscout: an autonomous PyTorch research agent.

The public API is imported lazily (each name from its module on first use) so ``import torchscout``
stays cheap; ``torchscout.EXPORTS.descriptions()`` lists it:

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

import os
from typing import Any

# OpenMP threads that wait for work sleep instead of spinning (unless the user chose otherwise). Set
# before torch loads its OpenMP runtime, here and in every process started from here (the sandbox's
# fork server, torchrun workers). On a machine whose cores are busy with anything else, spinning
# threads steal the cores from each other: a small CNN's training step measured 10-20x slower with
# 2 spinning threads than with passive ones (evals/bench_training.py prints the comparison).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from torchscout.tools.lookup import Registry

__version__ = "0.1.0"


def _exports() -> Registry[Any]:
    exports: Registry[Any] = Registry("public name of torchscout", plural="public names")
    exports.add_lazy("ALL_TOOLS", "torchscout.tools:ALL_TOOLS", description="the 15 LangChain tools")
    exports.add_lazy("configure", "torchscout.settings:configure")
    exports.add_lazy("get_settings", "torchscout.settings:get_settings")
    exports.add_lazy("build_optimizer", "torchscout.tools.optim.configurator:build_optimizer")
    exports.add_lazy("research", "torchscout.graphs.driver:research")
    exports.add_lazy("resume", "torchscout.graphs.driver:resume")
    exports.add_lazy("build_graph", "torchscout.graphs.graph:build_graph")
    exports.add_lazy("build_agent", "torchscout.agent.react_agent:build_agent")
    return exports


EXPORTS = _exports()


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:  # an AttributeError, as hasattr() and `from torchscout import x` expect
        raise AttributeError(f"module 'torchscout' has no attribute {name!r}")
    return EXPORTS.get(name)


def __dir__() -> list[str]:
    return sorted([*globals(), *EXPORTS])


__all__ = ["__version__", *EXPORTS]

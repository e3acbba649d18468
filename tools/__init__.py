"""torchscout's 15 tools as LangChain ``StructuredTool`` objects, named as in the PRD.

``torchscout.tools.<tool_name>`` is the tool object (``.invoke({...})`` returns plain
JSON-able data, or an ``Error: ...`` string for bad input); the plain functions behind them,
which raise instead, live in the modules (``torchscout.tools.files.operations.read_file``, ...).

Tools are imported on first use (PEP 562 ``__getattr__``): ``import torchscout.tools.workspace``
or a sandbox child that needs one module does not pay for torch, scikit-learn and the
training engine.
"""

from __future__ import annotations

from typing import Any

from torchscout.tools.lookup import Registry

# tool name -> module under torchscout.tools, in the PRD's order (section 5)
TOOL_MODULES: dict[str, str] = {
    "read_file": "files.operations",
    "write_file": "files.operations",
    "append_to_file": "files.operations",
    "bash_run": "shell.commands",
    "python_run": "shell.commands",
    "list_directory": "files.operations",
    "create_directory": "files.operations",
    "pytorch_model_assembler": "modeling.assembler",
    "pytorch_model_summary": "modeling.summary",
    "pytorch_quick_evaluator": "training.evaluation",
    "pytorch_full_trainer": "training.evaluation",
    "pytorch_optimizer_configurator": "optim.configurator",
    "pytorch_tokenizer_manager": "text.tokenizer_manager",
    "pip_install_pytorch_package": "packages.pip_install",
    "create_pytorch_project_scaffold": "scaffold.project",
}


def _tool_registry() -> Registry[Any]:
    """Each tool is imported from its module when first used; its description is the tool's own."""
    tools: Registry[Any] = Registry("tool")
    for tool_name, module_name in TOOL_MODULES.items():
        tools.add_lazy(tool_name, f"torchscout.tools.{module_name}:{tool_name}_tool")
    return tools


TOOLS = _tool_registry()
TOOL_NAMES: list[str] = TOOLS.names()


def get_tool(name: str) -> Any:
    """The tool object called ``name``; an unknown name raises UnknownNameError (a KeyError) naming the known ones."""
    return TOOLS.get(name)


def __getattr__(name: str) -> Any:
    if name in TOOLS:
        return TOOLS.get(name)
    if name == "ALL_TOOLS":
        return [get_tool(tool_name) for tool_name in TOOL_NAMES]
    if name == "TOOLS_BY_NAME":
        return {tool_name: get_tool(tool_name) for tool_name in TOOL_NAMES}
    raise AttributeError(f"module 'torchscout.tools' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "ALL_TOOLS", "TOOLS_BY_NAME", *TOOL_NAMES])


__all__ = ["ALL_TOOLS", "TOOLS_BY_NAME", "TOOL_NAMES", "get_tool", *TOOL_NAMES]

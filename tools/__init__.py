"""torchscout's 15 tools as LangChain ``StructuredTool`` objects, named as in the PRD.

``torchscout.tools.<tool_name>`` is the tool object (``.invoke({...})`` returns plain
JSON-able data, or an ``Error: ...`` string for bad input); the plain functions behind them,
which raise instead, live in the modules (``torchscout.tools.files.read_file``, ...).

Tools are imported on first use (PEP 562 ``__getattr__``): ``import torchscout.tools.workspace``
or a sandbox child that needs one module does not pay for torch, scikit-learn and the
training engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# tool name -> module under torchscout.tools, in the PRD's order (section 5)
TOOL_MODULES: dict[str, str] = {
    "read_file": "files",
    "write_file": "files",
    "append_to_file": "files",
    "bash_run": "shell",
    "python_run": "shell",
    "list_directory": "files",
    "create_directory": "files",
    "pytorch_model_assembler": "assembler",
    "pytorch_model_summary": "summary",
    "pytorch_quick_evaluator": "evaluation",
    "pytorch_full_trainer": "evaluation",
    "pytorch_optimizer_configurator": "optimizers",
    "pytorch_tokenizer_manager": "tokenizers",
    "pip_install_pytorch_package": "packages",
    "create_pytorch_project_scaffold": "scaffold",
}
TOOL_NAMES: list[str] = list(TOOL_MODULES)


def get_tool(name: str) -> Any:
    """The tool object called ``name``; an unknown name raises KeyError listing the known ones."""
    module_name = TOOL_MODULES.get(name)
    if module_name is None:
        raise KeyError(f"unknown tool {name!r}; known tools: {', '.join(TOOL_NAMES)}")
    return getattr(import_module(f"torchscout.tools.{module_name}"), f"{name}_tool")


def __getattr__(name: str) -> Any:
    if name in TOOL_MODULES:
        return get_tool(name)
    if name == "ALL_TOOLS":
        return [get_tool(tool_name) for tool_name in TOOL_NAMES]
    if name == "TOOLS_BY_NAME":
        return {tool_name: get_tool(tool_name) for tool_name in TOOL_NAMES}
    raise AttributeError(f"module 'torchscout.tools' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "ALL_TOOLS", "TOOLS_BY_NAME", *TOOL_NAMES])


__all__ = ["ALL_TOOLS", "TOOLS_BY_NAME", "TOOL_NAMES", "get_tool", *TOOL_NAMES]

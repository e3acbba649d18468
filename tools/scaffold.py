"""create_pytorch_project_scaffold (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

create_pytorch_project_scaffold_tool = pending_tool("create_pytorch_project_scaffold", _AnyArgs, "foundation issue")

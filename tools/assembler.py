"""pytorch_model_assembler (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

pytorch_model_assembler_tool = pending_tool("pytorch_model_assembler", _AnyArgs, "assembler issue")

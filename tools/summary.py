"""pytorch_model_summary (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

pytorch_model_summary_tool = pending_tool("pytorch_model_summary", _AnyArgs, "summary issue")

"""pytorch_quick_evaluator and pytorch_full_trainer (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

pytorch_quick_evaluator_tool = pending_tool("pytorch_quick_evaluator", _AnyArgs, "training engine issue")
pytorch_full_trainer_tool = pending_tool("pytorch_full_trainer", _AnyArgs, "training engine issue")

"""pytorch_optimizer_configurator (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

pytorch_optimizer_configurator_tool = pending_tool("pytorch_optimizer_configurator", _AnyArgs, "optimizers issue")

"""pytorch_tokenizer_manager (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

pytorch_tokenizer_manager_tool = pending_tool("pytorch_tokenizer_manager", _AnyArgs, "tokenizers issue")

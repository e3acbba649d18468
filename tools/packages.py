"""pip_install_pytorch_package (pending)."""

from torchscout.tools.pending import _AnyArgs, pending_tool

pip_install_pytorch_package_tool = pending_tool("pip_install_pytorch_package", _AnyArgs, "foundation issue")

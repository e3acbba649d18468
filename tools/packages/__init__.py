"""The package tool: pip_install_pytorch_package (``pip_install.py``)."""

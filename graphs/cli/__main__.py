"""``python -m torchscout.graphs.cli ...`` is the ``torchscout`` command."""

from torchscout.graphs.cli import main

main()

"""torchscout.graphs."""

"""torchscout.agent."""

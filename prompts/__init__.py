"""torchscout.prompts."""

"""Bounds a blueprint must keep before the assembler recurses into it or builds it.

Parsing and compiling walk the layer tree recursively and build every layer: a layer list that
contains itself, streams nested hundreds deep, a zero-sized layer or a model too large to train
here are refused first, with the location, instead of a RecursionError or gigabytes allocated.
"""

from __future__ import annotations

from torchscout.tools.limits import nesting_problem

# Constructor arguments that are sizes: a layer with 0 of them has no weights or no output.
SIZE_ARGUMENTS = frozenset({
    "in_features", "out_features", "in1_features", "in2_features", "in_channels", "out_channels",
    "num_features", "num_channels", "num_groups", "hidden_size", "input_size", "num_layers",
    "num_embeddings", "embedding_dim", "embed_dim", "num_heads", "nhead", "d_model", "dim_feedforward",
    "kernel_size", "normalized_shape", "output_size",
})


def structure_problem(config: object) -> str | None:
    """Why the raw ``model_config`` cannot be walked: nested too deep, too large, or containing itself."""
    return nesting_problem(config, "model_config")


def size_argument_problem(params: dict, where: str) -> str | None:
    """Why a layer's size arguments are invalid (zero or negative), or None."""
    for key, value in params.items():
        if key not in SIZE_ARGUMENTS:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, int) and not isinstance(item, bool) and item < 1 for item in values):
            return f"model_config.{where}.params.{key} is {value!r}; a size must be at least 1"
    return None

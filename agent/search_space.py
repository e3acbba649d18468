"""The builtin planner's search spaces: one per input modality, each axis a list of choices.

A *blueprint* is a point in a space (``{"blocks": 2, "width": 32, ...}``); ``compile_blueprint``
turns it into the assembler's ``model_config`` using plain ``torch.nn`` layer names plus the
assembler's ``Residual`` / ``Parallel`` streams and ``Mean`` / ``Max`` / ``Last`` reductions.

- images: conv nets (blocks of conv-norm-activation, optional residual or Inception-style
  parallel branches, pooling, dropout, a linear head);
- flat features: MLPs (depth, width, normalisation, dropout, optional residual blocks);
- token ids: an embedding followed by a bag-of-embeddings, TextCNN, GRU or Transformer encoder.

Every axis is categorical with its choices in a meaningful order, so a mutation can step to
a neighbouring choice (wider, deeper, larger kernel) instead of jumping anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchscout.agent.task import Modality, Task
from torchscout.tools.modeling.types import BlueprintSpec, LayerSpec

# One choice on an axis: a size, a rate, a name or a switch.
Choice = int | float | str | bool
# A point in a space: axis name -> its choice, e.g. {"blocks": 2, "width": 32, "norm": "batch", ...}.
Blueprint = dict[str, Choice]
# A space: axis name -> its choices, in a meaningful order.
Space = dict[str, list[Choice]]
# A layer's keyword argument in the assembler's format (a kernel size may be a pair).
LayerArgument = int | float | str | bool | list[int]


TRAINING_AXES: Space = {
    "optimizer": ["AdamW", "Adam", "SGD"],
    "lr": [3e-4, 1e-3, 3e-3, 1e-2],
}

SPACES: dict[Modality, Space] = {
    "image": {
        "blocks": [1, 2, 3],
        "width": [16, 32, 64],
        "kernel": [3, 5],
        "norm": ["none", "batch"],
        "activation": ["relu", "gelu"],
        "stream": ["plain", "residual", "parallel"],
        "dropout": [0.0, 0.1, 0.3],
        "head": ["avgpool", "flatten"],
        **TRAINING_AXES,
    },
    "flat": {
        "depth": [1, 2, 3],
        "width": [64, 128, 256, 512],
        "norm": ["none", "layer", "batch"],
        "activation": ["relu", "gelu"],
        "residual": [False, True],
        "dropout": [0.0, 0.1, 0.3],
        **TRAINING_AXES,
    },
    "tokens": {
        "encoder": ["bag", "textcnn", "gru", "transformer"],
        "embed_dim": [32, 64, 128],
        "hidden": [64, 128],
        "layers": [1, 2],
        "kernel": [3, 5],
        "pooling": ["mean", "max", "last"],
        "dropout": [0.0, 0.1, 0.3],
        **TRAINING_AXES,
    },
}

# Axes that mean nothing for some choices of another axis: dropped so duplicates are recognised.
_TOKEN_AXES_USED = {
    "bag": {"embed_dim", "hidden", "dropout"},
    "textcnn": {"embed_dim", "hidden", "kernel", "dropout"},
    "gru": {"embed_dim", "hidden", "layers", "pooling", "dropout"},
    "transformer": {"embed_dim", "layers", "pooling", "dropout"},
}

# A sound first candidate per modality, so round 1 always contains one well-known design.
BASELINES: dict[Modality, Blueprint] = {
    "image": {"blocks": 2, "width": 32, "kernel": 3, "norm": "batch", "activation": "relu", "stream": "plain",
              "dropout": 0.1, "head": "avgpool", "optimizer": "AdamW", "lr": 3e-3},
    "flat": {"depth": 2, "width": 128, "norm": "layer", "activation": "relu", "residual": False,
             "dropout": 0.1, "optimizer": "AdamW", "lr": 1e-3},
    "tokens": {"encoder": "bag", "embed_dim": 64, "hidden": 64, "dropout": 0.1, "optimizer": "AdamW",
               "lr": 3e-3},
}


# Axes along which a design gets smaller, each with its choices from largest to smallest model.
# Numeric size axes shrink by stepping down their ordered choices; the others switch to the leaner
# option (a pooled head instead of flattening every position, a plain conv instead of a second
# residual conv or extra parallel branches, no residual projection).
SHRINKS: dict[str, list[Choice] | None] = {
    "width": None, "blocks": None, "depth": None, "embed_dim": None, "hidden": None, "layers": None,
    "vocab_size": None,
    "head": ["flatten", "avgpool"],
    "stream": ["residual", "parallel", "plain"],
}


def smaller_choice(axis: str, current: Choice, choices: list[Choice]) -> Choice | None:
    """The neighbouring choice of ``axis`` that gives a smaller model, or None when there is none."""
    order = SHRINKS.get(axis)
    if order is None:
        below = [choice for choice in choices if choice < current]
        return max(below) if below else None
    if current not in order:
        return None
    leaner = [choice for choice in order[order.index(current) + 1:] if choice in choices]
    return leaner[0] if leaner else None


def space_for(modality: Modality) -> Space:
    return SPACES[modality]


def normalize(blueprint: Blueprint, modality: Modality) -> Blueprint:
    """Keep only the axes the blueprint's design uses (so two equal designs compare equal)."""
    if modality != "tokens":
        return {key: blueprint[key] for key in SPACES[modality] if key in blueprint}
    used = _TOKEN_AXES_USED[blueprint["encoder"]] | {"encoder", *TRAINING_AXES}
    if "vocab_size" in blueprint:
        used = used | {"vocab_size"}
    return {key: value for key, value in blueprint.items() if key in used}


def signature(blueprint: Blueprint) -> str:
    """A stable text key for duplicate detection."""
    return ",".join(f"{key}={blueprint[key]}" for key in sorted(blueprint))


def _activation(name: Choice) -> LayerSpec:
    return LayerSpec(type="GELU") if name == "gelu" else LayerSpec(type="ReLU")


@dataclass
class _Spatial:
    """Tracks the spatial size while a conv net is laid out, so pooling stops at 1x1."""

    height: int
    width: int

    def pool(self) -> bool:
        if min(self.height, self.width) < 2:
            return False
        self.height //= 2
        self.width //= 2
        return True


def _conv_block(bp: Blueprint, channels: int, pad: int) -> list[LayerSpec]:
    layers: list[LayerSpec] = [{"type": "Conv2d", "params": {
        "out_channels": channels, "kernel_size": bp["kernel"], "padding": pad,
        "bias": bp["norm"] == "none"}}]
    if bp["norm"] == "batch":
        layers.append({"type": "BatchNorm2d"})
    layers.append(_activation(bp["activation"]))
    return layers


def _compile_image(bp: Blueprint, task: Task) -> list[LayerSpec]:
    spatial = _Spatial(task.input_shape[1], task.input_shape[2])
    pad = bp["kernel"] // 2
    layers: list[LayerSpec] = []
    for index in range(bp["blocks"]):
        channels = bp["width"] * 2**index
        layers += _conv_block(bp, channels, pad)
        if bp["stream"] == "residual":
            # a second conv wrapped in a skip connection: same shape in and out
            layers.append({"type": "Residual", "layers": _conv_block(bp, channels, pad)})
        elif bp["stream"] == "parallel":
            # Inception-style: a 1x1 and a kxk view of the same features, concatenated on channels
            branch_1x1: list[LayerSpec] = [{"type": "Conv2d", "params": {"out_channels": channels // 2, "kernel_size": 1}},
                          _activation(bp["activation"])]
            branch_kxk: list[LayerSpec] = [{"type": "Conv2d", "params": {"out_channels": channels // 2,
                                                        "kernel_size": bp["kernel"], "padding": pad}},
                          _activation(bp["activation"])]
            layers.append({"type": "Parallel", "branches": [branch_1x1, branch_kxk], "merge": "concat", "dim": 1})
        if spatial.pool():
            layers.append({"type": "MaxPool2d", "params": {"kernel_size": 2}})
    if bp["head"] == "avgpool":
        layers.append({"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}})
    layers.append({"type": "Flatten"})
    if bp["dropout"] > 0:
        layers.append({"type": "Dropout", "params": {"p": bp["dropout"]}})
    layers.append({"type": "Linear", "params": {"out_features": task.num_classes}})
    return layers


def _compile_flat(bp: Blueprint, task: Task) -> list[LayerSpec]:
    def dense() -> list[LayerSpec]:
        block: list[LayerSpec] = [{"type": "Linear", "params": {"out_features": bp["width"]}}]
        if bp["norm"] == "layer":
            block.append({"type": "LayerNorm"})
        elif bp["norm"] == "batch":
            block.append({"type": "BatchNorm1d"})
        block.append(_activation(bp["activation"]))
        if bp["dropout"] > 0:
            block.append({"type": "Dropout", "params": {"p": bp["dropout"]}})
        return block

    layers = dense()  # the first block changes the width, so it cannot be residual
    for _ in range(bp["depth"] - 1):
        layers += [{"type": "Residual", "layers": dense()}] if bp["residual"] else dense()
    layers.append({"type": "Linear", "params": {"out_features": task.num_classes}})
    return layers


def _compile_tokens(bp: Blueprint, task: Task, vocab_size: int) -> list[LayerSpec]:
    seq_len = task.input_shape[0]
    embed = bp["embed_dim"]
    layers: list[LayerSpec] = [{"type": "Embedding", "params": {"num_embeddings": vocab_size,
                                                                     "embedding_dim": embed}}]
    encoder = bp["encoder"]
    if encoder == "bag":
        layers += [{"type": "Mean", "params": {"dim": 1}},
                   {"type": "Linear", "params": {"out_features": bp["hidden"]}}, {"type": "ReLU"}]
    elif encoder == "textcnn":
        # Kim (2014): convolve windows of k token embeddings, max-pool over time
        kernel = min(bp["kernel"], seq_len)
        layers += [{"type": "Unflatten", "params": {"dim": 1, "unflattened_size": [1, seq_len]}},
                   {"type": "Conv2d", "params": {"out_channels": bp["hidden"], "kernel_size": [kernel, embed]}},
                   {"type": "ReLU"},
                   {"type": "Flatten", "params": {"start_dim": 2}},
                   {"type": "Max", "params": {"dim": 2}}]
    elif encoder == "gru":
        layers.append({"type": "GRU", "params": {"input_size": embed, "hidden_size": bp["hidden"], "num_layers": bp["layers"],
                                                 "batch_first": True}, "output_index": 0})
        layers.append({"type": bp["pooling"].capitalize(), "params": {"dim": 1}})
    else:
        heads = 4 if embed % 4 == 0 else 1
        for _ in range(bp["layers"]):
            layers.append({"type": "TransformerEncoderLayer", "params": {
                "d_model": embed, "nhead": heads, "dim_feedforward": 2 * embed,
                "dropout": bp["dropout"], "batch_first": True}})
        pooling = "Mean" if bp["pooling"] == "last" else bp["pooling"].capitalize()
        layers.append({"type": pooling, "params": {"dim": 1}})
    if bp["dropout"] > 0:
        layers.append({"type": "Dropout", "params": {"p": bp["dropout"]}})
    layers.append({"type": "Linear", "params": {"out_features": task.num_classes}})
    return layers


def compile_blueprint(blueprint: Blueprint, task: Task, model_name: str,
                      vocab_size: int | None = None) -> BlueprintSpec:
    """The assembler ``model_config`` for ``blueprint`` on ``task``'s inputs."""
    modality = task.modality
    if modality == "image":
        layers = _compile_image(blueprint, task)
    elif modality == "flat":
        layers = _compile_flat(blueprint, task)
    else:
        if vocab_size is None:
            raise ValueError("a token-id model needs the tokenizer's vocab_size")
        layers = _compile_tokens(blueprint, task, vocab_size)
    return BlueprintSpec(model_name=model_name, input_shape=list(task.input_shape), input_dtype=task.input_dtype,
                       layers=layers)


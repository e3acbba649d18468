"""The builtin planner's search spaces: one per input kind, each axis a list of choices.

A *blueprint* is a point in a space (``{"blocks": 2, "width": 32, ...}``); ``compile_blueprint``
turns it into the assembler's ``model_config`` using plain ``torch.nn`` layer names plus the
assembler's ``Residual`` / ``Parallel`` streams and helper ops (``Mean`` / ``Max`` / ``Last``,
``Transpose``, ``PositionalEmbedding``). The designs a strong practitioner tries first:

- images ``[C, H, W]``: conv nets of plain, depthwise-separable or inverted-residual blocks, with
  residual or Inception-style parallel streams and squeeze-excitation (:mod:`conv_designs`);
  random crops and flips as a searched training axis;
- signals ``[C, L]``: 1D conv stacks (kernel, dilation, width, residual, pooling, normalisation),
  GRU / LSTM (bidirectional), a Transformer encoder over the steps or over patches; a global-pool
  or flatten head; an MLP on the flattened signal for contrast; random shifts as a searched
  training axis (:mod:`sequence_designs`);
- flat features ``[F]``: a linear model or an MLP (depth, width, normalisation, residual blocks,
  dropout), with weight decay searched;
- token ids ``[L]``: an embedding followed by a bag-of-embeddings, TextCNN, GRU or Transformer encoder.

Every axis is categorical with its choices in a meaningful order, so a mutation can step to
a neighbouring choice (wider, deeper, larger kernel) instead of jumping anywhere.
:func:`vocabulary_text` describes a space and its layer types for the LLM planner's prompt.
"""

from __future__ import annotations

from torchscout.agent.conv_designs import image_layers, signal_conv_layers
from torchscout.agent.sequence_designs import flat_layers, signal_sequence_layers, token_layers
from torchscout.agent.task import Modality, Task
from torchscout.agent.training_configs import AugmentSpec
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
        "block": ["conv", "separable", "inverted"],
        "norm": ["none", "batch"],
        "activation": ["relu", "gelu"],
        "stream": ["plain", "residual", "parallel"],
        "se": [False, True],
        "dropout": [0.0, 0.1, 0.3],
        "head": ["avgpool", "flatten"],
        "augment": ["none", "crop", "crop_flip"],
        **TRAINING_AXES,
    },
    "signal": {
        "encoder": ["conv", "gru", "lstm", "transformer", "mlp"],
        "blocks": [1, 2, 3, 4],
        "width": [16, 32, 64],
        "kernel": [3, 5, 7, 9],
        "dilation": [1, 2],
        "residual": [False, True],
        "pooling": ["max", "none"],
        "norm": ["none", "batch"],
        "layers": [1, 2],
        "bidirectional": [False, True],
        "patch": [1, 4, 8],
        "activation": ["relu", "gelu"],
        "head": ["mean", "max", "flatten"],
        "dropout": [0.0, 0.1, 0.3],
        "augment": ["none", "shift"],
        **TRAINING_AXES,
    },
    "flat": {
        "depth": [0, 1, 2, 3],
        "width": [64, 128, 256, 512],
        "norm": ["none", "layer", "batch"],
        "activation": ["relu", "gelu"],
        "residual": [False, True],
        "dropout": [0.0, 0.1, 0.3],
        "weight_decay": [0.0, 1e-4, 1e-3, 1e-2, 1e-1],
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
_ENCODER_AXES_USED: dict[Modality, dict[str, set[str]]] = {
    "tokens": {
        "bag": {"embed_dim", "hidden", "dropout"},
        "textcnn": {"embed_dim", "hidden", "kernel", "dropout"},
        "gru": {"embed_dim", "hidden", "layers", "pooling", "dropout"},
        "transformer": {"embed_dim", "layers", "pooling", "dropout"},
    },
    "signal": {
        "conv": {"blocks", "width", "kernel", "dilation", "residual", "pooling", "norm", "activation", "head",
                 "dropout", "augment"},
        "gru": {"width", "layers", "bidirectional", "head", "dropout", "augment"},
        "lstm": {"width", "layers", "bidirectional", "head", "dropout", "augment"},
        "transformer": {"width", "layers", "patch", "activation", "head", "dropout", "augment"},
        "mlp": {"blocks", "width", "norm", "activation", "dropout", "augment"},
    },
}
# flat: a linear model (depth 0) has no hidden layers; one hidden layer has nothing to be residual to
_FLAT_AXES_UNUSED = {0: {"width", "norm", "activation", "residual", "dropout"}, 1: {"residual"}}
# images: depthwise blocks are always batch-normalised (conv_designs), so norm means nothing for them
_IMAGE_AXES_UNUSED = {"separable": {"norm"}, "inverted": {"norm"}}

# A sound first candidate per input kind, so round 1 always contains one well-known design.
BASELINES: dict[Modality, Blueprint] = {
    "image": {"blocks": 2, "width": 32, "kernel": 3, "block": "conv", "norm": "batch", "activation": "relu",
              "stream": "plain", "se": False, "dropout": 0.1, "head": "avgpool", "augment": "none",
              "optimizer": "AdamW", "lr": 3e-3},
    "signal": {"encoder": "conv", "blocks": 3, "width": 32, "kernel": 5, "dilation": 1, "residual": False,
               "pooling": "max", "norm": "batch", "activation": "relu", "head": "mean", "dropout": 0.1,
               "augment": "none", "optimizer": "AdamW", "lr": 3e-3},
    "flat": {"depth": 2, "width": 128, "norm": "layer", "activation": "relu", "residual": False,
             "dropout": 0.1, "weight_decay": 1e-2, "optimizer": "AdamW", "lr": 1e-3},
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
    "head": ["flatten", "avgpool", "mean"],
    "stream": ["residual", "parallel", "plain"],
    "se": [True, False],
    "bidirectional": [True, False],
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
    if modality in _ENCODER_AXES_USED:
        used = _ENCODER_AXES_USED[modality][str(blueprint["encoder"])] | {"encoder", *TRAINING_AXES}
        if "vocab_size" in blueprint:
            used = used | {"vocab_size"}
        return {key: value for key, value in blueprint.items() if key in used}
    if modality == "flat":
        unused = _FLAT_AXES_UNUSED.get(int(blueprint.get("depth", 2)), set())
    else:
        unused = _IMAGE_AXES_UNUSED.get(str(blueprint.get("block", "conv")), set())
    return {key: blueprint[key] for key in SPACES[modality] if key in blueprint and key not in unused}


def signature(blueprint: Blueprint) -> str:
    """A stable text key for duplicate detection."""
    return ",".join(f"{key}={blueprint[key]}" for key in sorted(blueprint))


def augmentation(blueprint: Blueprint, task: Task) -> AugmentSpec | None:
    """The training tools' ``augment`` for the blueprint's ``augment`` axis: a random crop of about an
    eighth of an image side (a tenth of a signal's length), plus flips for ``crop_flip``."""
    kind = blueprint.get("augment", "none")
    if kind == "none" or task.modality not in ("image", "signal"):
        return None
    if task.modality == "image":
        spec = AugmentSpec(random_crop=max(1, round(min(task.input_shape[1:]) / 8)))
        if kind == "crop_flip":
            spec["horizontal_flip"] = True
        return spec
    return AugmentSpec(random_crop=max(1, round(task.input_shape[1] / 10)))


def compile_blueprint(blueprint: Blueprint, task: Task, model_name: str,
                      vocab_size: int | None = None) -> BlueprintSpec:
    """The assembler ``model_config`` for ``blueprint`` on ``task``'s inputs."""
    modality, shape, outputs = task.modality, list(task.input_shape), task.output_size
    layers: list[LayerSpec]
    if modality == "image":
        layers = image_layers(blueprint, shape, outputs)
    elif modality == "signal":
        layers = (signal_conv_layers(blueprint, shape, outputs) if blueprint["encoder"] == "conv"
                  else signal_sequence_layers(blueprint, shape, outputs))
    elif modality == "flat":
        layers = flat_layers(blueprint, outputs)
    else:
        if vocab_size is None:
            raise ValueError("a token-id model needs the tokenizer's vocab_size")
        layers = token_layers(blueprint, shape[0], vocab_size, outputs)
    return BlueprintSpec(model_name=model_name, input_shape=shape, input_dtype=task.input_dtype, layers=layers)


# What each input kind's designs are built from, for a planner that writes blueprints itself.
LAYER_VOCABULARY: dict[Modality, str] = {
    "image": "Conv2d (groups=in_channels for depthwise), BatchNorm2d, ReLU/GELU, MaxPool2d, AdaptiveAvgPool2d, "
             "Flatten, Dropout, Linear; streams Residual (inverted residual: 1x1 expand, depthwise kxk, 1x1 "
             "project) and Parallel (merge concat for Inception branches, mul for squeeze-excitation: "
             "[[], [AdaptiveAvgPool2d(1), Conv2d 1x1, ReLU, Conv2d 1x1, Sigmoid]])",
    "signal": "input (N, C, L): Conv1d (dilation, groups), BatchNorm1d, ReLU/GELU, MaxPool1d, AdaptiveAvgPool1d, "
              "AdaptiveMaxPool1d, Residual, Parallel; Transpose(dim0=1, dim1=2) to (N, L, C) before GRU/LSTM "
              "(output_index 0, bidirectional) or TransformerEncoderLayer (embed patches with a strided Conv1d "
              "first, add PositionalEmbedding); Mean/Max/Last(dim=1) or Flatten, Dropout, Linear; an MLP: "
              "Flatten, then Linear blocks",
    "flat": "Linear (depth 0 is a linear model), LayerNorm, BatchNorm1d, ReLU/GELU, Dropout, Residual blocks",
    "tokens": "Embedding, then Mean (bag of embeddings), TextCNN (Unflatten, Conv2d over [k, embed_dim], Max), "
              "GRU (output_index 0) or TransformerEncoderLayer; Mean/Max/Last(dim=1), Dropout, Linear",
}


def vocabulary_text(modality: Modality) -> str:
    """The layer types and searched axes of one input kind's space, for the LLM planner's prompt."""
    axes = "; ".join(f"{name}: {', '.join(str(choice) for choice in choices)}"
                     for name, choices in SPACES[modality].items())
    return f"layers: {LAYER_VOCABULARY[modality]}\nsearched axes: {axes}"

"""A fixed corpus of model blueprints for the assembler and summary evals.

Drawn from the research search spaces (every stream and encoder kind, each normalisation, both
heads) plus hand-written blueprints the spaces do not produce (the PRD's SimpleCNN, an LSTM
with ``output_index``, nested streams, a Parallel with ``add``), plus the assembler's own
benchmark corpus ``evals/assembler_corpus.json``. Each entry says what the assembled model
must do: its output shape for a batch of two (None: any output with the batch dimension).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchscout.agent import search_space
from torchscout.agent.task import load_task

BATCH = 2
TOKEN_VOCAB = 300
ASSEMBLER_CORPUS = Path(__file__).resolve().parent / "assembler_corpus.json"

_TASKS = {
    "digits": {"name": "digits", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10},
    "cifar": {"name": "cifar", "dataset": "cifar10", "input_shape": [3, 32, 32], "num_classes": 10},
    "flat": {"name": "flat", "dataset": "dummy", "input_shape": [64], "num_classes": 5},
    "text": {"name": "text", "dataset": "text_classification", "input_shape": [32], "input_dtype": "int64",
             "num_classes": 4},
}

# (task, changes to the modality's baseline blueprint)
_SPACE_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("digits", {}),
    ("digits", {"stream": "residual"}),
    ("digits", {"stream": "parallel", "kernel": 5}),
    ("digits", {"blocks": 3, "norm": "none", "head": "flatten", "activation": "gelu"}),
    ("cifar", {}),
    ("cifar", {"stream": "residual", "blocks": 3, "width": 16}),
    ("cifar", {"stream": "parallel", "dropout": 0.3}),
    ("flat", {}),
    ("flat", {"residual": True, "depth": 3}),
    ("flat", {"norm": "batch", "activation": "gelu", "dropout": 0.0}),
    ("text", {}),
    ("text", {"encoder": "textcnn", "kernel": 5}),
    ("text", {"encoder": "gru", "layers": 2, "pooling": "last", "hidden": 64}),
    ("text", {"encoder": "transformer", "layers": 2, "pooling": "mean", "embed_dim": 32}),
]

_HAND_WRITTEN: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("prd_simple_cnn", "cifar", [
        {"type": "Conv2d", "params": {"in_channels": 3, "out_channels": 16, "kernel_size": 3, "padding": 1}},
        {"type": "ReLU"}, {"type": "MaxPool2d", "params": {"kernel_size": 2}}, {"type": "Flatten"},
        {"type": "Linear", "params": {"out_features": 10}}]),
    ("lstm_last", "text", [
        {"type": "Embedding", "params": {"num_embeddings": TOKEN_VOCAB, "embedding_dim": 32}},
        {"type": "LSTM", "params": {"hidden_size": 48, "batch_first": True}, "output_index": 0},
        {"type": "Last", "params": {"dim": 1}}, {"type": "Linear", "params": {"out_features": 4}}]),
    ("nested_streams", "digits", [
        {"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
        {"type": "Residual", "layers": [
            {"type": "Parallel", "merge": "add", "branches": [
                [{"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 1}}],
                [{"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
                 {"type": "BatchNorm2d"}]]},
            {"type": "ReLU"}]},
        {"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}}, {"type": "Flatten"},
        {"type": "Linear", "params": {"out_features": 10}}]),
    ("mlp_layernorm", "flat", [
        {"type": "Linear", "params": {"out_features": 32}}, {"type": "LayerNorm"}, {"type": "SiLU"},
        {"type": "Sequential", "layers": [{"type": "Linear", "params": {"out_features": 16}}, {"type": "Tanh"}]},
        {"type": "Linear", "params": {"out_features": 5}}]),
    ("conv1d_tokens", "text", [
        {"type": "Embedding", "params": {"num_embeddings": TOKEN_VOCAB, "embedding_dim": 16}},
        {"type": "Max", "params": {"dim": 1}}, {"type": "Linear", "params": {"out_features": 32}},
        {"type": "ReLU"}, {"type": "Dropout", "params": {"p": 0.2}}, {"type": "Linear", "params": {"out_features": 4}}]),
    ("deep_conv", "cifar", [
        *[layer for width in (16, 32, 64) for layer in (
            {"type": "Conv2d", "params": {"out_channels": width, "kernel_size": 3, "padding": 1, "bias": False}},
            {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "params": {"kernel_size": 2}})],
        {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 10}}]),
]


def task_spec(task_key: str) -> dict[str, Any]:
    return dict(_TASKS[task_key])


def corpus() -> list[dict[str, Any]]:
    """Every blueprint: ``{"name", "task", "model_config", "expected_output_shape"}``."""
    entries = []
    for index, (task_key, changes) in enumerate(_SPACE_VARIANTS):
        task = load_task(_TASKS[task_key])
        # every axis set (a changed encoder may use axes its baseline lacks), then the baseline, then the change
        defaults = {axis: choices[0] for axis, choices in search_space.space_for(task.modality).items()}
        blueprint = {**defaults, **search_space.BASELINES[task.modality], **changes}
        blueprint = search_space.normalize(blueprint, task.modality)
        name = f"space_{task_key}_{index}"
        config = search_space.compile_blueprint(blueprint, task, f"Space{task_key.title()}{index}",
                                                vocab_size=TOKEN_VOCAB if task.modality == "tokens" else None)
        entries.append({"name": name, "task": task_key, "model_config": config,
                        "expected_output_shape": [BATCH, task.num_classes]})
    for name, task_key, layers in _HAND_WRITTEN:
        task = load_task(_TASKS[task_key])
        class_name = "".join(part.title() for part in name.split("_"))
        config = {"model_name": class_name, "input_shape": list(task.input_shape), "input_dtype": task.input_dtype,
                  "layers": layers}
        entries.append({"name": name, "task": task_key, "model_config": config,
                        "expected_output_shape": [BATCH, task.num_classes]})
    if ASSEMBLER_CORPUS.is_file():
        for config in json.loads(ASSEMBLER_CORPUS.read_text(encoding="utf-8")):
            entries.append({"name": f"corpus_{config['model_name']}", "task": "assembler_corpus",
                            "model_config": config, "expected_output_shape": None})
    return entries

"""The search spaces a strong practitioner tries first: every design of every input kind compiles
exactly through the assembler's builtin compiler, and the planner searches them deterministically."""

from __future__ import annotations

import random

import pytest
import torch

from torchscout.agent import search_space
from torchscout.agent.builtin_planner import BuiltinPlanner, training_of
from torchscout.agent.proposal import CandidateOutcome, PlanningContext
from torchscout.agent.task import load_task
from torchscout.tools.loading import load_class
from torchscout.tools.modeling.assembler import pytorch_model_assembler

TASKS = {
    "image": {"name": "img", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10},
    "signal": {"name": "sig", "dataset": "signals_synthetic", "input_shape": [2, 40], "num_classes": 5},
    "flat": {"name": "tab", "dataset": "diabetes", "input_shape": [10], "task_type": "regression", "num_targets": 2},
    "tokens": {"name": "txt", "dataset": "text_classification", "input_shape": [16], "input_dtype": "int64",
               "num_classes": 4},
}
DESIGNS_PER_KIND = 8  # random points per space, besides the baseline


def _designs(modality: str) -> list[dict]:
    rng = random.Random(7)
    space = search_space.space_for(modality)
    points = [dict(search_space.BASELINES[modality])]
    points += [{axis: rng.choice(choices) for axis, choices in space.items()} for _ in range(DESIGNS_PER_KIND)]
    if modality == "signal":  # every encoder at least once
        points += [{**points[1], "encoder": encoder} for encoder in space["encoder"]]
    if modality == "image":  # every block kind with squeeze-excitation
        points += [{**points[0], "block": block, "se": True, "stream": "residual"} for block in space["block"]]
    return [search_space.normalize(point, modality) for point in points]


@pytest.mark.parametrize("modality", list(TASKS))
def test_every_design_compiles_to_a_model_of_the_measured_size_and_output(workspace, modality):
    task = load_task(TASKS[modality])
    for index, design in enumerate(_designs(modality)):
        config = search_space.compile_blueprint(design, task, f"M{index}", vocab_size=50)
        answer = pytorch_model_assembler(config, f"models/m{index}.py")
        model = load_class(f"models/m{index}.py", f"M{index}")().eval()
        inputs = (torch.randint(0, 50, (3, *task.input_shape)) if task.input_dtype == "int64"
                  else torch.randn(3, *task.input_shape))
        with torch.no_grad():
            outputs = model(inputs)
        assert outputs.shape == (3, task.output_size), design
        assert answer["total_params"] == sum(p.numel() for p in model.parameters()), design
        assert answer["output_shape"] == [task.output_size]


def test_signal_designs_use_the_layers_their_encoder_names():
    task = load_task(TASKS["signal"])
    base = search_space.BASELINES["signal"]

    def types(**changes) -> list[str]:
        layers = search_space.compile_blueprint(search_space.normalize({**base, **changes}, "signal"), task,
                                                "M")["layers"]
        return [layer["type"] for layer in layers]

    assert types()[:3] == ["Conv1d", "BatchNorm1d", "ReLU"] and "AdaptiveAvgPool1d" in types()
    assert "Residual" in types(residual=True) and "MaxPool1d" not in types(pooling="none")
    assert types(encoder="lstm", layers=1, bidirectional=True, width=16)[:2] == ["Transpose", "LSTM"]
    assert types(encoder="transformer", layers=1, patch=4)[:4] == ["Conv1d", "Transpose", "PositionalEmbedding",
                                                                   "TransformerEncoderLayer"]
    assert types(encoder="gru", layers=1, bidirectional=False, width=16, head="flatten")[-3:] == [
        "Flatten", "Dropout", "Linear"]
    dilated = search_space.compile_blueprint({**base, "dilation": 2, "pooling": "none"}, task, "M")["layers"]
    assert [layer["params"].get("dilation", 1) for layer in dilated if layer["type"] == "Conv1d"] == [1, 2, 4]


def test_image_blocks_squeeze_excitation_and_a_flat_linear_model():
    task = load_task(TASKS["image"])
    base = search_space.BASELINES["image"]
    separable = search_space.compile_blueprint({**base, "block": "separable"}, task, "M")["layers"]
    assert any(layer["params"].get("groups", 1) > 1 for layer in separable if layer["type"] == "Conv2d")
    # depthwise blocks are always batch-normalised, so the norm axis is not theirs
    unnormalised = search_space.normalize({**base, "block": "inverted", "norm": "none"}, "image")
    assert "norm" not in unnormalised
    inverted = search_space.compile_blueprint(unnormalised, task, "M")["layers"]
    assert sum(layer["type"] == "BatchNorm2d" for layer in inverted) == 3 * base["blocks"]
    squeezed = search_space.compile_blueprint({**base, "se": True}, task, "M")["layers"]
    gates = [layer for layer in squeezed if layer["type"] == "Parallel" and layer["merge"] == "mul"]
    assert len(gates) == base["blocks"] and gates[0]["branches"][1][-1]["type"] == "Sigmoid"
    flat = load_task(TASKS["flat"])
    linear = search_space.normalize({**search_space.BASELINES["flat"], "depth": 0}, "flat")
    assert search_space.compile_blueprint(linear, flat, "M")["layers"] == [
        {"type": "Linear", "params": {"out_features": 2}}]
    assert set(linear) == {"depth", "weight_decay", "optimizer", "lr"}  # nothing a linear model does not use


def test_augmentation_and_weight_decay_are_searched_training_axes():
    image, signal, flat = (load_task(TASKS[kind]) for kind in ("image", "signal", "flat"))
    crop_flip = training_of({**search_space.BASELINES["image"], "augment": "crop_flip"}, image)
    assert crop_flip.augment == {"random_crop": 1, "horizontal_flip": True}  # an eighth of 8 pixels
    assert training_of({**search_space.BASELINES["signal"], "augment": "shift"}, signal).augment == {"random_crop": 4}
    assert training_of(search_space.BASELINES["signal"], signal).augment is None
    decayed = training_of({**search_space.BASELINES["flat"], "weight_decay": 1e-4}, flat)
    assert decayed.weight_decay == 1e-4 and decayed.augment is None


def test_the_vocabulary_names_every_axis_and_the_layer_types():
    text = search_space.vocabulary_text("signal")
    for axis in search_space.space_for("signal"):
        assert f"{axis}:" in text
    for layer in ("Conv1d", "GRU", "LSTM", "TransformerEncoderLayer", "PositionalEmbedding", "Transpose"):
        assert layer in text


def _context(task: dict, round_index: int = 1, history=(), count: int = 4) -> PlanningContext:
    validated = load_task({**task, "budget": {"candidates_per_round": count}})
    return PlanningContext(task=validated, round=round_index, num_candidates=count, history=list(history))


def test_the_planner_searches_signals_from_the_conv_baseline_and_learns_across_encoders():
    planner = BuiltinPlanner()
    first = planner.propose(_context(TASKS["signal"]))
    assert first.candidates[0].blueprint["encoder"] == "conv"
    assert first.candidates[0].training.optimizer == "AdamW"
    assert len({search_space.signature(spec.blueprint) for spec in first.candidates}) == 4
    # designs of different encoders use different axes: TPE is told each with the axes it uses
    history = [CandidateOutcome(id=f"r1c{i}", round=1, status="evaluated", blueprint=spec.blueprint,
                                model_config=spec.model_config_, training=spec.training.model_dump(),
                                metric=0.5 + 0.1 * i, params=1000 * (i + 1))
               for i, spec in enumerate(first.candidates)]
    study = planner._told_study(_context(TASKS["signal"], 2, history), search_space.space_for("signal"))
    assert len(study.trials) == 4
    assert {frozenset(trial.params) for trial in study.trials} == {
        frozenset(search_space.normalize(item.blueprint, "signal")) for item in history}
    second = planner.propose(_context(TASKS["signal"], 2, history))
    assert second.mode == "improve" and second.candidates[0].parent == "r1c3"
    assert second.model_dump() == planner.propose(_context(TASKS["signal"], 2, history)).model_dump()


def test_a_regression_model_predicts_num_targets_values():
    proposal = BuiltinPlanner().propose(_context(TASKS["flat"]))
    for spec in proposal.candidates:
        assert spec.model_config_["layers"][-1] == {"type": "Linear", "params": {"out_features": 2}}

"""What the tools really return and record matches the TypedDicts that describe it.

Each tool runs once for real (digits, the sandbox, a small corpus) and its answer, plus the files
and records it writes, are checked key by key and value by value against its declared type.
"""

from __future__ import annotations

import json
from typing import Literal, NotRequired, TypedDict

import pytest
import yaml

from tests.optimizer_helpers import LION_SOURCE
from tests.shape_helpers import assert_shape
from tests.tokenizer_helpers import write_prose
from tests.training_helpers import one_thread, write_models  # noqa: F401 - fixture
from torchscout.tools import registry
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.modeling.summary import pytorch_model_summary
from torchscout.tools.modeling.types import AssemblerAnswer, SummaryAnswer
from torchscout.tools.optim.configurator import pytorch_optimizer_configurator
from torchscout.tools.optim.types import CustomOptimizerAnswer, OptimizerConfigAnswer
from torchscout.tools.registry import RegistryEntry
from torchscout.tools.text.tokenizer_manager import pytorch_tokenizer_manager
from torchscout.tools.text.types import (
    EncodedTexts,
    TokenizerLoadAnswer,
    TokenizerRecord,
    TokenizerTrainAnswer,
)
from torchscout.tools.training.checkpoints import CheckpointPayload, load_checkpoint
from torchscout.tools.training.evaluation import pytorch_full_trainer, pytorch_quick_evaluator
from torchscout.tools.training.types import (
    EpochRecord,
    ExperimentDescription,
    FullTrainAnswer,
    QuickEvalAnswer,
)

DIGITS = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "device": "cpu", "metrics": ["accuracy", "f1"]}


class _Example(TypedDict):
    name: str
    size: int
    ratio: float
    kind: Literal["a", "b"]
    tags: NotRequired[list[str]]


def test_the_shape_check_finds_missing_unknown_and_mistyped_keys():
    assert_shape({"name": "x", "size": 1, "ratio": 1, "kind": "a"}, _Example)  # an int is a fine float
    for broken, complaint in [
        ({"size": 1, "ratio": 0.5, "kind": "a"}, "missing required key 'name'"),
        ({"name": "x", "size": 1, "ratio": 0.5, "kind": "a", "extra": 1}, "key 'extra' is not in _Example"),
        ({"name": "x", "size": True, "ratio": 0.5, "kind": "a"}, "value.size: True"),
        ({"name": "x", "size": 1, "ratio": 0.5, "kind": "c"}, "'c' is not one of"),
        ({"name": "x", "size": 1, "ratio": 0.5, "kind": "a", "tags": ["ok", 2]}, r"value\.tags\[1\]: 2 \(int\) is not str"),
    ]:
        with pytest.raises(AssertionError, match=complaint):
            assert_shape(broken, _Example)


@pytest.mark.usefixtures("one_thread")
def test_quick_evaluator_answers_completed_diverged_and_failed(workspace):
    models = write_models(workspace)
    config = {**DIGITS, "epochs": 1, "sanity": "overfit_batch", "lr_find": True}
    completed = pytorch_quick_evaluator(models, "SmallCNN", config)
    assert completed["status"] == "completed", completed.get("error")
    assert_shape(completed, QuickEvalAnswer, "completed")
    assert {"sanity", "overfit_batch", "dataset", "lr_find", "monitor"} <= set(completed)

    diverged = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "optimizer": "SGD", "learning_rate": 1e6})
    assert diverged["status"] == "diverged"
    assert_shape(diverged, QuickEvalAnswer, "diverged")

    failed = pytorch_quick_evaluator(models, "RaisesInForward", DIGITS)
    assert failed["status"] == "failed" and "traceback" in failed
    assert_shape(failed, QuickEvalAnswer, "failed")


@pytest.mark.usefixtures("one_thread")
def test_full_trainer_answer_and_its_experiment_files(workspace):
    models = write_models(workspace)
    config = {**DIGITS, "epochs": 2, "wandb": {"mode": "disabled"},
              "early_stopping": {"metric": "accuracy", "patience": 3}}
    result = pytorch_full_trainer(models, "SmallCNN", config, experiment_name="typed")
    assert result["status"] == "completed", result.get("error")
    assert_shape(result, FullTrainAnswer, "answer")

    folder = workspace / "full_experiments" / "typed"
    assert_shape(json.loads((folder / "result.json").read_text()), FullTrainAnswer, "result.json")
    assert_shape(yaml.safe_load((folder / "config.yaml").read_text()), ExperimentDescription, "config.yaml")
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    assert_shape(lines, list[EpochRecord], "metrics.jsonl")
    assert_shape(load_checkpoint(folder / "checkpoints" / "last.pt"), CheckpointPayload, "last.pt")


def test_assembler_and_summary_answers(workspace):
    blueprint = {"model_name": "TypedNet", "input_shape": [3, 16, 16], "layers": [
        {"type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
        {"type": "Residual", "layers": [{"type": "Conv2d", "params": {"out_channels": 16, "kernel_size": 3,
                                                                      "padding": 1, "stride": 2}},
                                        {"type": "ReLU"}]},
        {"type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
        {"type": "Flatten"},
        {"type": "Linear", "params": {"out_features": 10}},
    ]}
    assembled = pytorch_model_assembler(blueprint, "src/typed_net.py")
    assert_shape(assembled, AssemblerAnswer, "assembler")
    assert any(key.endswith(".projection") for key in assembled["inferred"])

    summary = pytorch_model_summary("src/typed_net.py", "TypedNet", [1, 3, 16, 16])
    assert_shape(summary, SummaryAnswer, "summary")


def test_optimizer_configurator_answers_and_registry_entries(workspace):
    config = pytorch_optimizer_configurator("generate_config", "typed_adamw", {
        "type": "AdamW", "default_params": {"lr": 0.001, "betas": [0.9, 0.95]},
        "param_groups": [{"name_regex": "^head\\.", "lr": 0.01}], "no_decay_bias_norm": True})
    assert_shape(config, OptimizerConfigAnswer, "generate_config")

    (workspace / "lion.py").write_text(LION_SOURCE, encoding="utf-8")
    custom = pytorch_optimizer_configurator("register_custom_optimizer", "Lion",
                                            {"additional_params": {"betas": [0.9, 0.99]}}, source_path="lion.py")
    assert_shape(custom, CustomOptimizerAnswer, "register_custom_optimizer")
    assert_shape(registry.list_entries(), list[RegistryEntry], "registry")


def test_tokenizer_manager_answers_and_records(workspace):
    write_prose(workspace / "corpus.txt", lines=300)
    trained = pytorch_tokenizer_manager("train", "typed_bpe", {"auto": True, "data_files": ["corpus.txt"]})
    assert_shape(trained, TokenizerTrainAnswer, "train")
    assert trained["auto"]["chooser"] == "builtin"

    loaded = pytorch_tokenizer_manager("load", "typed_copy", tokenizer_path=trained["tokenizer_path"])
    assert_shape(loaded, TokenizerLoadAnswer, "load from a path")
    rechecked = pytorch_tokenizer_manager("load", "typed_bpe")
    assert_shape(rechecked, TokenizerLoadAnswer, "load of a registered name")
    assert "replaced" not in rechecked and rechecked["tokenizer_info"]["source"] == "trained"

    encoded = pytorch_tokenizer_manager("apply", "typed_bpe", text_input=["the quick fox", "a dog"],
                                        return_tokens=True)
    assert_shape(encoded, EncodedTexts, "apply")
    for entry in registry.list_entries("tokenizer"):
        assert_shape(entry["data"], TokenizerRecord, f"registry {entry['name']}")

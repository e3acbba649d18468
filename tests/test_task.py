"""The research task file: validation with messages that name the field, defaults, examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchscout.agent.task import TaskError, load_task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _minimal(**changes):
    task = {"name": "t", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10}
    task.update(changes)
    return task


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_every_shipped_example_is_a_valid_task(example):
    task = load_task(example)
    assert task.name == example.stem
    assert task.budget.max_minutes > 0


def test_examples_cover_images_tokens_signals_tabular_and_real_data():
    modalities = {load_task(path).dataset: load_task(path).modality for path in EXAMPLES.glob("*.yaml")}
    assert modalities == {"digits": "image", "text_classification": "tokens", "cifar10": "image",
                          "signals_synthetic": "signal", "diabetes": "flat", "breast_cancer": "flat"}


def test_defaults_and_derived_properties():
    task = load_task(_minimal(metric="val_loss"))
    assert task.mode == "min" and not task.maximize
    assert task.better(0.1, 0.2)
    assert load_task(_minimal()).mode == "max"
    assert load_task(_minimal(input_shape=[20])).modality == "flat"
    assert load_task(_minimal(input_shape=[16], input_dtype="int64")).modality == "tokens"
    assert load_task(_minimal(target=0.9)).reached_target(0.95)


@pytest.mark.parametrize(("changes", "field"), [
    ({"budget": {"max_round": 3}}, "budget.max_round"),
    ({"num_classes": 1}, "num_classes"),
    ({"input_shape": [1, 0, 8]}, "input_shape"),
    ({"input_shape": [2, 1, 8, 8]}, "input_shape"),  # [8, 8] is valid now: a signal of 8 channels
    ({"input_dtype": "int64"}, "input_shape"),
    ({"planner": "genius"}, "planner"),
    ({"name": "../escape"}, "name"),
    ({"budget": {"max_minutes": 0}}, "budget.max_minutes"),
])
def test_a_bad_task_is_refused_with_the_field_named(changes, field):
    with pytest.raises(TaskError) as caught:
        load_task(_minimal(**changes))
    assert field in str(caught.value)


def test_a_missing_required_field_and_an_unknown_key_are_both_reported(workspace):
    path = workspace / "bad.yaml"
    path.write_text("name: x\ndataset: digits\nnum_classes: 10\ncolour: blue\n")
    with pytest.raises(TaskError) as caught:
        load_task(path)
    message = str(caught.value)
    assert "input_shape: Field required" in message
    assert "colour: unknown field" in message
    assert "bad.yaml" in message


def test_missing_file_and_non_mapping_yaml(workspace):
    with pytest.raises(TaskError, match="does not exist"):
        load_task(workspace / "nope.yaml")
    (workspace / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(TaskError, match="must hold a mapping"):
        load_task(workspace / "list.yaml")
    (workspace / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(TaskError, match="not valid YAML"):
        load_task(workspace / "broken.yaml")


def test_overrides_replace_top_level_fields():
    task = load_task(_minimal(), planner="builtin", name="renamed")
    assert task.name == "renamed"

"""Task kinds and input kinds: regression next to classification; images, signals, flat features, tokens."""

from __future__ import annotations

import pytest
import yaml

from torchscout.agent.task import TaskError, load_task


def _regression(**changes):
    return {"name": "r", "dataset": "diabetes", "input_shape": [10], "task_type": "regression", **changes}


def test_a_regression_task_defaults_to_r2_maximised_and_mse_loss():
    task = load_task(_regression())
    assert (task.metric, task.mode, task.loss) == ("r2", "max", "MSELoss")
    assert task.is_regression and task.output_size == 1 and task.num_classes is None
    two = load_task(_regression(num_targets=2, metric="rmse", loss_function="HuberLoss"))
    assert (two.output_size, two.mode, two.loss) == (2, "min", "HuberLoss")


def test_a_classification_task_keeps_its_defaults():
    task = load_task({"name": "c", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10})
    assert (task.task_type, task.metric, task.mode, task.loss, task.output_size) == (
        "classification", "accuracy", "max", "CrossEntropyLoss", 10)


@pytest.mark.parametrize(("changes", "message"), [
    ({"metric": "accuracy"}, "metric: accuracy compares class labels"),
    ({"num_classes": 3}, "a regression task predicts num_targets values"),
    ({"loss_function": "CrossEntropyLoss"}, "a regression task trains with one of MSELoss"),
    ({"loss_function": "MSELos"}, "did you mean MSELoss"),
    ({"num_targets": 0}, "num_targets"),
])
def test_a_regression_task_refuses_what_does_not_fit_float_targets(changes, message):
    with pytest.raises(TaskError, match=message):
        load_task(_regression(**changes))


def test_a_classification_task_still_needs_its_classes():
    with pytest.raises(TaskError, match="a classification task needs the number of classes"):
        load_task({"name": "c", "dataset": "digits", "input_shape": [1, 8, 8]})


@pytest.mark.parametrize(("shape", "dtype", "modality"), [
    ([1, 8, 8], "float32", "image"), ([1, 40], "float32", "signal"), ([3, 100], "float32", "signal"),
    ([30], "float32", "flat"), ([64], "int64", "tokens"),
])
def test_the_input_shape_and_dtype_decide_the_input_kind(shape, dtype, modality):
    task = load_task({"name": "m", "dataset": "dummy", "input_shape": shape, "input_dtype": dtype, "num_classes": 4})
    assert task.modality == modality


def test_a_task_written_before_task_types_still_validates(tmp_path):
    """A task dumped by an older version (no task_type, num_targets or loss_function) loads as before."""
    old = {"name": "digits", "goal": "", "dataset": "digits", "dataset_params": {}, "data_root": None,
           "input_shape": [1, 8, 8], "input_dtype": "float32", "num_classes": 10, "metric": "accuracy",
           "mode": "max", "target": None, "budget": {"max_rounds": 2}, "planner": "builtin", "seed": 0,
           "tokenizer": {}, "approve": []}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    task = load_task(path)
    assert (task.task_type, task.loss, task.output_size, task.modality) == ("classification", "CrossEntropyLoss",
                                                                             10, "image")
    assert load_task(task.model_dump()) == task  # the dump of a new task reloads unchanged

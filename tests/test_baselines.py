"""Classical baselines: scikit-learn one-liners fitted on the run's own split and scored like the candidates."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, r2_score

from torchscout.agent.baselines import run_baselines
from torchscout.agent.task import load_task
from torchscout.tools.training.datasets import DatasetRequest, build_datasets


def _splits(task):
    request = DatasetRequest(name=task.dataset, params=dict(task.dataset_params), data_root=None,
                             input_shape=list(task.input_shape), num_classes=task.num_classes, seed=task.seed,
                             val_fraction=0.1)
    return build_datasets(request)


def test_regression_baselines_score_the_run_split_as_scikit_learn_does():
    task = load_task({"name": "d", "dataset": "diabetes", "input_shape": [10], "task_type": "regression", "seed": 2})
    records, note = run_baselines(task, ["r2", "rmse", "mae"])
    assert [record["name"] for record in records] == ["ridge", "hist_gradient_boosting"]
    assert records[1]["model"] == "HistGradientBoostingRegressor"
    splits = _splits(task)
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(splits.train.inputs.double().numpy(),
                                                        splits.train.targets.numpy())
    for split, key in ((splits.val, "validation"), (splits.test, "test")):
        predicted = ridge.predict(split.inputs.double().numpy())
        actual = split.targets.numpy()
        scores = records[0][key]
        assert scores["r2"] == pytest.approx(r2_score(actual, predicted), abs=1e-5)
        assert scores["rmse"] == pytest.approx(mean_squared_error(actual, predicted) ** 0.5, abs=1e-5)
        assert scores["mae"] == pytest.approx(mean_absolute_error(actual, predicted), abs=1e-5)
        assert scores["loss"] == pytest.approx(mean_squared_error(actual, predicted), abs=1e-5)
    assert 0.2 < records[0]["validation"]["r2"] < 0.8  # diabetes is about half explained by a linear model
    assert "ridge r2=" in note and records[0]["seconds"] >= 0


def test_classification_baselines_on_flattened_signals():
    task = load_task({"name": "s", "dataset": "signals_synthetic", "dataset_params": {"num_samples": 400},
                      "input_shape": [1, 64], "num_classes": 10})
    records, note = run_baselines(task, ["accuracy", "f1"])
    assert {record["name"]: record["model"] for record in records} == {
        "logistic_regression": "LogisticRegression", "hist_gradient_boosting": "HistGradientBoostingClassifier"}
    splits = _splits(task)
    flat = [split.inputs.reshape(len(split), -1).double().numpy() for split in (splits.train, splits.val)]
    reference = LogisticRegression(max_iter=2000).fit(flat[0], splits.train.targets.numpy())
    expected = accuracy_score(splits.val.targets.numpy(), reference.predict(flat[1]))
    assert records[0]["validation"]["accuracy"] == pytest.approx(expected)
    assert set(records[0]["validation"]) == {"loss", "accuracy", "f1"} and "test" in records[0]
    assert "logistic_regression accuracy=" in note


def test_images_and_token_ids_get_no_baselines():
    task = load_task({"name": "i", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10})
    records, note = run_baselines(task, ["accuracy"])
    assert records == [] and "image inputs" in note

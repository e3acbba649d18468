"""One metric-direction table: the task, the trainer's monitor, early stopping, the LR plateau
scheduler and the graph's ranking all take "which way is better" from the metric registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from torchscout.agent.task import load_task
from torchscout.tools.training.components import build_scheduler
from torchscout.tools.training.config import TrainerConfig, parse_config
from torchscout.tools.training.metrics import (
    METRICS,
    MeanError,
    check_metric_names,
    computed_metric_names,
    metric_mode,
    register_metric,
)
from torchscout.tools.training.runs import make_monitor

ROOT = Path(__file__).resolve().parents[1]
TASK = {"name": "t", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10}


def _trainer_monitor_mode(metric: str) -> str:
    """The mode the full trainer monitors (best.pt, early stopping) when early stopping watches ``metric``."""
    config = parse_config(TrainerConfig, {"dataset": "digits", "early_stopping": {"metric": metric},
                                          "metrics": computed_metric_names()}, "trainer_config")
    early = config.early_stopping
    return make_monitor(config.monitor, config.monitor_mode or early.mode, config.metrics).mode


def _plateau_mode(monitor_mode: str) -> str:
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    return build_scheduler("ReduceLROnPlateau", optimizer, 1, 1, monitor_mode).scheduler.mode


def _record_keys(name: str) -> list[str]:
    return ["val_loss", "train_loss", "loss"] if name == "loss" else [name, f"val_{name}"]


@pytest.mark.parametrize("name", METRICS.names())
def test_task_trainer_scheduler_and_ranking_agree_for_every_registered_metric(name):
    expected = METRICS.get(name).mode
    for key in _record_keys(name):
        task = load_task({**TASK, "metric": key})
        assert task.mode == metric_mode(key) == expected, key
        assert _trainer_monitor_mode(key) == expected, key
        assert _plateau_mode(_trainer_monitor_mode(key)) == expected, key
        # the graph ranks candidates and checks improvement with Task.better / Task.maximize
        assert task.better(2.0, 1.0) == (expected == "max") and task.maximize == (expected == "max")


def test_losses_and_perplexity_are_minimised_and_scores_maximised():
    modes = {name: metric_mode(name) for name in ("loss", "val_loss", "perplexity", "mse", "mae", "accuracy", "f1")}
    assert modes == {"loss": "min", "val_loss": "min", "perplexity": "min", "mse": "min", "mae": "min",
                     "accuracy": "max", "f1": "max"}


def test_an_explicit_mode_still_wins():
    assert load_task({**TASK, "metric": "accuracy", "mode": "min"}).mode == "min"
    assert make_monitor("accuracy", "min", ["accuracy"]).mode == "min"


def test_the_loss_is_recorded_not_listed_as_a_metric():
    assert "loss" not in computed_metric_names()
    with pytest.raises(ValueError, match="'loss' is recorded for every run"):
        check_metric_names(["accuracy", "loss"])


def test_a_new_metric_is_one_registry_line_and_everyone_follows_it():
    register_metric("rmse_demo", "min", "root of the mean squared error", lambda: RootMeanError())
    try:
        assert load_task({**TASK, "metric": "rmse_demo"}).mode == "min"
        assert make_monitor("rmse_demo", None, ["rmse_demo"]).mode == "min"
        metric = METRICS.get("rmse_demo").factory()
        metric.update(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.0]]))
        assert metric.compute() == pytest.approx(5 ** 0.5)
    finally:
        METRICS.remove("rmse_demo")


class RootMeanError(MeanError):
    def __init__(self) -> None:
        super().__init__(2)

    def compute(self) -> float:
        return super().compute() ** 0.5


def test_no_module_keeps_its_own_direction_table():
    """Names such as LOWER_IS_BETTER were the second and third copies of the table; none may come back."""
    copies = []
    for path in [ROOT / "__init__.py", *sorted(ROOT.glob("[!.]*/**/*.py"))]:
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name) and "IS_BETTER" in node.id.upper():
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.id}")
    assert not copies, copies

"""pytorch_quick_evaluator: real training on digits, sanity checks, failures reported as data."""

from __future__ import annotations

import pytest
import torch

from tests.training_helpers import one_thread, write_models  # noqa: F401 - fixture
from torchscout.tools import pytorch_quick_evaluator as quick_evaluator_tool
from torchscout.tools.errors import ToolError
from torchscout.tools.optim.configurator import pytorch_optimizer_configurator
from torchscout.tools.training.evaluation import pytorch_quick_evaluator

pytestmark = pytest.mark.usefixtures("one_thread")

DIGITS = {"dataset": "digits", "num_classes": 10, "batch_size": 32, "epochs": 1, "optimizer": "Adam",
          "learning_rate": 0.001, "loss_function": "CrossEntropyLoss", "metrics": ["accuracy"], "device": "cpu"}

RESULT_KEYS = {"status", "metrics", "train_loss", "val_loss", "history", "samples_per_s", "duration_s", "device",
               "data_path"}
DIAGNOSTICS = {"grad_norm_mean", "grad_norm_max", "lr", "samples_per_s", "loss_spikes", "epoch_time_s"}


@pytest.fixture
def models(workspace):
    return write_models(workspace)


def test_small_cnn_reaches_90_percent_on_digits_within_5_epochs(models):
    result = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "epochs": 5, "metrics": ["accuracy", "f1"]})
    assert result["status"] == "completed", result.get("error")
    assert RESULT_KEYS <= set(result)
    assert result["metrics"]["accuracy"] >= 0.90
    assert result["data_path"] == "preloaded" and result["device"] == "cpu"
    assert len(result["history"]) <= 5 and result["history"][0]["train_loss"] > result["train_loss"]
    assert DIAGNOSTICS <= set(result["history"][-1]) and result["history"][-1]["grad_norm_max"] > 0
    assert result["sanity"]["ok"] and result["sanity"]["output_shape"] == [32, 10]
    assert result["samples_per_s"] > 0 and result["val_loss"] == result["history"][-1]["val_loss"]


def test_same_seed_same_run_and_the_tool_object_returns_plain_data(models):
    config = {**DIGITS, "model_params": {"num_classes": 10}, "max_steps": 10, "seed": 7}
    first = quick_evaluator_tool.invoke({"model_script_path": models, "model_class_name": "SmallCNN",
                                         "eval_config": config})
    second = pytorch_quick_evaluator(models, "SmallCNN", config)
    assert first["status"] == "completed" and first["stop_reason"] == "max_steps"
    assert first["train_loss"] == second["train_loss"] and first["metrics"] == second["metrics"]


def test_divergence_is_reported_with_the_step_and_last_finite_loss(models):
    result = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "optimizer": "SGD", "learning_rate": 1e6})
    assert result["status"] == "diverged"
    where = result["diverged_at"]
    assert where["epoch"] == 1 and where["step"] >= 2
    assert where["last_finite_loss"] is not None and where["last_finite_loss"] == where["last_finite_loss"]
    assert "non-finite" in result["error"]


def test_a_model_that_raises_returns_the_traceback_tail(models):
    result = pytorch_quick_evaluator(models, "RaisesInForward", DIGITS)
    assert result["status"] == "failed" and result["stage"] == "sanity"
    assert "RuntimeError" in result["error"]
    assert "hidden @ torch.ones(3, 3)" in result["traceback"]
    without_sanity = pytorch_quick_evaluator(models, "RaisesInForward", {**DIGITS, "sanity": "off"})
    assert without_sanity["status"] == "failed" and without_sanity["stage"] == "train"


def test_out_of_memory_names_the_batch_size(models):
    result = pytorch_quick_evaluator(models, "RunsOutOfMemory", {**DIGITS, "sanity": "off", "batch_size": 256})
    assert result["status"] == "failed"
    assert "batch_size=256" in result["error"] and "e.g. 128" in result["error"]


def test_progress_bars_go_to_stderr_only_when_enabled(models, monkeypatch, capsys):
    pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "max_steps": 3})
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TORCHSCOUT_PROGRESS", "1")
    pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "max_steps": 3})
    captured = capsys.readouterr()
    assert "epoch 1" in captured.err and captured.out == ""


def test_wrong_num_classes_is_caught_by_the_sanity_check(models):
    result = pytorch_quick_evaluator(models, "FiveClassHead", DIGITS)
    assert result["status"] == "failed" and result["stage"] == "sanity"
    assert "[32, 5]" in result["error"] and "num_classes is 10" in result["error"]
    assert result["history"] == []


def test_overfit_batch_sanity_mode(models):
    result = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "sanity": "overfit_batch", "max_steps": 1})
    overfit = result["overfit_batch"]
    assert overfit["passed"] and overfit["final_loss"] <= 0.1 * overfit["initial_loss"]


def test_budgets_stop_training_early(models):
    by_steps = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "epochs": 3, "max_steps": 5})
    assert by_steps["stop_reason"] == "max_steps" and by_steps["history"][0]["steps"] == 5
    assert len(by_steps["history"]) == 1 and "accuracy" in by_steps["metrics"]
    by_time = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "epochs": 50, "time_budget_s": 0.01})
    assert by_time["stop_reason"] == "time_budget" and by_time["epochs_completed"] == 1
    subset = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "train_subset": 96})
    assert subset["history"][0]["samples"] == 96 and subset["dataset"]["train_size"] == 96


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_request_without_a_gpu_is_an_error_and_auto_runs_on_the_cpu(models):
    with pytest.raises(ToolError, match="no CUDA device is available here; use device 'auto'"):
        pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "device": "cuda", "max_steps": 2})
    result = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "device": "auto", "max_steps": 2})
    assert result["status"] == "completed" and result["device"] == "cpu"


def test_registered_optimizer_config_and_lr_find(models, workspace):
    pytorch_optimizer_configurator("generate_config", "tuned_sgd", {
        "type": "SGD", "default_params": {"lr": 0.05, "momentum": 0.9},
        "param_groups": [{"name_regex": r"^head\.", "lr": 0.01}]})
    config = {**DIGITS, "optimizer": "tuned_sgd", "max_steps": 20, "lr_find": True}
    config.pop("learning_rate")
    result = pytorch_quick_evaluator(models, "SmallCNN", config)
    assert result["status"] == "completed", result.get("error")
    suggestion = result["lr_find"]["suggested_lr"]
    assert 1e-7 <= suggestion <= 10 and (workspace / result["lr_find"]["plot_path"]).is_file()
    # the default group (lr 0.05) gets the suggestion, the head group keeps its 1:5 ratio to it
    assert result["history"][0]["lr"] in (pytest.approx(suggestion), pytest.approx(suggestion / 5))


def test_bad_config_raises_naming_the_field(models):
    with pytest.raises(ToolError, match=r"eval_config\.batch_sise: unknown key"):
        pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "batch_sise": 3})
    with pytest.raises(ToolError, match=r"unknown metric 'acc'.*accuracy, top_5_accuracy"):
        pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "metrics": ["acc"]})
    with pytest.raises(ToolError, match=r"unknown loss_function 'CrossEntropy'"):
        pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "loss_function": "CrossEntropy"})
    message = quick_evaluator_tool.invoke({"model_script_path": models, "model_class_name": "SmallCNN",
                                           "eval_config": {**DIGITS, "epochs": 0}})
    assert message.startswith("Error:") and "eval_config.epochs" in message


@pytest.mark.slow
def test_torch_compile_option_trains(models):
    """torch.compile needs a C compiler and a minute or more on 2 CPU cores: slow."""
    result = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "compile": True, "max_steps": 20})
    assert result["status"] == "completed", result.get("error")
    assert result["history"][0]["steps"] == 20


def test_each_quick_evaluation_gets_its_own_lr_find_plot_file():
    from torchscout.tools.training.evaluation import lr_find_plot_path

    # parallel candidates often share a class name; within one second they used to share the plot file
    first, second = lr_find_plot_path("SmallCNN"), lr_find_plot_path("SmallCNN")
    assert first != second and first.parent == second.parent
    assert first.name.startswith("SmallCNN-") and first.suffix == ".png"


def test_the_answer_splits_its_wall_time_by_phase(models):
    from torchscout.tools.training.timing import PHASES

    result = pytorch_quick_evaluator(models, "SmallCNN", {**DIGITS, "epochs": 2})
    timings = result["timings"]
    assert set(PHASES) <= set(timings)
    for phase in ("data_s", "setup_s", "sanity_s", "train_steps_s", "validation_s", "metrics_s"):
        assert timings[phase] > 0, phase
    # the phases account for the evaluation: together with what no phase covers they make up its wall time
    assert sum(timings[phase] for phase in PHASES) + timings["other_s"] == pytest.approx(timings["total_s"], abs=0.01)
    assert timings["total_s"] == pytest.approx(result["duration_s"], abs=0.01)
    # the train steps are most of each epoch's time; the epoch statistics are measured apart from them
    epochs_s = sum(record["epoch_time_s"] for record in result["history"])
    assert 0.5 * epochs_s < timings["train_steps_s"] <= epochs_s
    work = timings["train_steps_s"] + timings["validation_s"]
    assert timings["work_fraction"] == pytest.approx(work / timings["total_s"], abs=1e-3)

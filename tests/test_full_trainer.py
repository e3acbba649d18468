"""pytorch_full_trainer: experiment folder, checkpoints, early stopping, exact resume, W&B offline."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest
import torch
import yaml

from tests.training_helpers import (
    BLOB_MODEL,
    CUSTOM_DATASET_SCRIPT,
    one_thread,  # noqa: F401 - fixture
    wandb_history,
    wandb_records,
    write_models,
)
from torchscout.tools.errors import ToolError
from torchscout.tools.training.callbacks import TrainLog
from torchscout.tools.training.engine import LoopState
from torchscout.tools.training.evaluation import pytorch_full_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = {"dataset": "digits", "num_classes": 10, "batch_size": 64, "device": "cpu", "metrics": ["accuracy"],
        "wandb": {"mode": "disabled"}}


@pytest.fixture
def models(workspace):
    return write_models(workspace)


def test_experiment_folder_checkpoints_and_result(models, workspace):
    config = {**BASE, "epochs": 4, "checkpoint_interval": 2, "optimizer": {"type": "AdamW", "params": {"lr": 0.003}},
              "early_stopping": {"metric": "accuracy", "patience": 10}}
    result = pytorch_full_trainer(models, "SmallCNN", config, experiment_name="cnn_digits")
    assert result["status"] == "completed", result.get("error")
    folder = workspace / "full_experiments" / "cnn_digits"
    assert result["experiment_dir"] == "full_experiments/cnn_digits"
    checkpoints = sorted(path.name for path in (folder / "checkpoints").iterdir())
    assert checkpoints == ["best.pt", "epoch_2.pt", "epoch_4.pt", "last.pt"]
    best = result["best_metric"]
    assert best["name"] == "val_accuracy" and best["value"] == max(r["val_accuracy"] for r in result["history"])
    saved_best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert saved_best["state"]["epoch"] == best["epoch"]
    assert torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["state"]["epoch"] == 4
    assert result["best_checkpoint_path"] == "full_experiments/cnn_digits/checkpoints/best.pt"
    assert result["final_eval"]["split"] == "val" and result["final_eval"]["checkpoint"] == "best"
    assert result["final_eval"]["accuracy"] == pytest.approx(best["value"])

    described = yaml.safe_load((folder / "config.yaml").read_text())
    assert described["model_class_name"] == "SmallCNN" and described["trainer_config"]["epochs"] == 4
    assert (folder / "models.py").read_text() == (workspace / models).read_text()
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4] and "grad_norm_mean" in lines[0]
    assert "epoch=4" in (folder / "train.log").read_text()
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((folder / "result.json").read_text())["best_metric"] == best
    assert not list(folder.rglob("*.tmp")), "atomic writes leave no temporary files behind"


def test_early_stopping_triggers(models):
    config = {**BASE, "epochs": 10, "optimizer": "SGD", "learning_rate": 1e-12, "checkpoint_interval": 0,
              "early_stopping": {"metric": "val_loss", "patience": 2, "mode": "min", "min_delta": 0.001}}
    result = pytorch_full_trainer(models, "SmallCNN", config, experiment_name="stalled")
    assert result["stopped_early"] and result["stop_reason"] == "early_stopping"
    assert result["epochs_completed"] == 3 and len(result["history"]) == 3
    assert result["best_metric"]["epoch"] == 1


def test_resumed_run_equals_an_uninterrupted_one(models, workspace):
    config = {**BASE, "epochs": 4, "seed": 3, "checkpoint_interval": 0, "sanity": "batch",
              "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
              "scheduler": {"type": "CosineAnnealingLR", "params": {"T_max": 4}}}
    whole = pytorch_full_trainer(models, "DropoutMLP", config, experiment_name="whole")
    first_half = pytorch_full_trainer(models, "DropoutMLP", {**config, "epochs": 2}, experiment_name="split")
    assert first_half["epochs_completed"] == 2
    resumed = pytorch_full_trainer(models, "DropoutMLP", {**config, "resume": True}, experiment_name="split")
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 2
    timing = {"epoch_time_s", "samples_per_s"}
    strip = [{k: v for k, v in record.items() if k not in timing} for record in resumed["history"]]
    assert strip == [{k: v for k, v in record.items() if k not in timing} for record in whole["history"]]
    assert resumed["best_metric"] == whole["best_metric"]
    weights = [torch.load(workspace / "full_experiments" / name / "checkpoints" / "last.pt",
                          weights_only=True)["model"] for name in ("whole", "split")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    lines = (workspace / "full_experiments" / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]


def test_wandb_offline_run_directory_has_the_logged_metrics(models, workspace):
    config = {**BASE, "epochs": 2, "wandb": {"mode": "offline", "project": "digits", "tags": ["test"],
                                             "log_checkpoint": True}}
    result = pytorch_full_trainer(models, "SmallCNN", config, experiment_name="tracked")
    run_dir = workspace / result["wandb_run_dir"]
    assert run_dir.is_dir() and run_dir.name.startswith("offline-run-")
    assert run_dir.parent.parent == workspace / "full_experiments" / "tracked"
    (run_file,) = run_dir.glob("run-*.wandb")
    rows = wandb_history(run_file)
    logged = [row for row in rows if "val_loss" in row]
    assert [int(json.loads(row["epoch"])) for row in logged] == [1, 2]
    assert json.loads(logged[-1]["val_loss"]) == pytest.approx(result["history"][-1]["val_loss"])
    (run_record,) = [record.run for record in wandb_records(run_file) if record.WhichOneof("record_type") == "run"]
    config_logged = {item.key: json.loads(item.value_json) for item in run_record.config.update}
    assert config_logged["model_class_name"] == "SmallCNN" and config_logged["trainer_config"]["epochs"] == 2
    assert run_record.project == "digits" and list(run_record.tags) == ["test"]
    artifacts = [record.artifact for record in wandb_records(run_file)
                 if record.WhichOneof("record_type") == "artifact"]
    assert [artifact.name for artifact in artifacts] == ["tracked-best"] and artifacts[0].type == "model"


def test_final_evaluation_uses_the_test_split_and_streams_custom_data(workspace):
    (workspace / "blobs.py").write_text(CUSTOM_DATASET_SCRIPT, encoding="utf-8")
    (workspace / "blob_model.py").write_text(BLOB_MODEL, encoding="utf-8")
    config = {**BASE, "dataset": "custom_dataset_script", "dataset_params": {"script_path": "blobs.py", "size": 128},
              "num_classes": 2, "batch_size": 16, "epochs": 6, "learning_rate": 0.05}
    result = pytorch_full_trainer("blob_model.py", "BlobNet", config, experiment_name="blobs")
    assert result["status"] == "completed" and result["data_path"] == "dataloader"
    assert result["final_eval"]["split"] == "test" and result["final_eval"]["accuracy"] >= 0.9
    assert result["dataset"]["test_size"] == 64


def test_divergence_and_folder_rules(models, workspace):
    diverged = pytorch_full_trainer(models, "SmallCNN", {**BASE, "epochs": 2, "optimizer": "SGD",
                                                         "learning_rate": 1e6}, experiment_name="boom")
    assert diverged["status"] == "diverged" and diverged["diverged_at"]["epoch"] == 1
    saved = json.loads((workspace / "full_experiments" / "boom" / "result.json").read_text())
    assert saved["status"] == "diverged"
    with pytest.raises(ToolError, match="already exists"):
        pytorch_full_trainer(models, "SmallCNN", {**BASE, "epochs": 1}, experiment_name="boom")
    with pytest.raises(ToolError, match="cannot resume 'fresh'"):
        pytorch_full_trainer(models, "SmallCNN", {**BASE, "resume": True}, experiment_name="fresh")
    with pytest.raises(ToolError, match="experiment_name"):
        pytorch_full_trainer(models, "SmallCNN", BASE, experiment_name="../outside")
    with pytest.raises(ToolError, match="cannot monitor 'f1'"):
        pytorch_full_trainer(models, "SmallCNN", {**BASE, "early_stopping": {"metric": "f1"}}, experiment_name="m")


def test_train_logs_of_runs_in_parallel_threads_stay_apart(tmp_path):
    # the research graph runs trainers in several threads; each train.log holds its own run only
    both_started, both_logged = threading.Barrier(2, timeout=30), threading.Barrier(2, timeout=30)

    def train(name: str, epochs: int) -> None:
        log = TrainLog(tmp_path / f"{name}.log")
        run = SimpleNamespace(raw_model=torch.nn.Linear(1, 1), device=torch.device("cpu"),
                              config=SimpleNamespace(epochs=epochs))
        state = LoopState()
        log.on_train_start(run, state)
        both_started.wait()  # both handlers are on the shared logger now
        log.on_epoch_end(run, state, {"epoch": 1, "run": name}, improved=True)
        both_logged.wait()
        log.on_train_end(run, state)

    threads = [threading.Thread(target=train, args=(name, epochs)) for name, epochs in (("first", 1), ("second", 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    first, second = ((tmp_path / f"{name}.log").read_text() for name in ("first", "second"))
    assert "run=first" in first and "from epoch 1 to 1" in first
    assert "run=second" in second and "from epoch 1 to 2" in second
    assert "run=second" not in first and "run=first" not in second

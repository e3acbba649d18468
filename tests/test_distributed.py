"""The full trainer under torchrun: 2 CPU processes with gloo, through the `torchscout train` CLI."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.training_helpers import write_models
from torchscout.app import app

CONFIG = {"dataset": "digits", "num_classes": 10, "batch_size": 32, "epochs": 2, "device": "cpu",
          "metrics": ["accuracy", "f1"], "checkpoint_interval": 0, "save_best_model": False,
          "wandb": {"mode": "disabled"}}


def write_config(workspace, config) -> str:
    (workspace / "train.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return "train.yaml"


def test_two_gloo_processes_train_with_ddp_and_rank0_writes_one_checkpoint(workspace):
    models = write_models(workspace)
    outcome = CliRunner().invoke(app, ["train", models, "SmallCNN", write_config(workspace, CONFIG),
                                       "--experiment-name", "ddp", "--nproc", "2"])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert result["status"] == "completed"
    assert [record["epoch"] for record in result["history"]] == [1, 2]
    # each rank trains on half of the 1617 training samples (one sample is dropped to keep shards equal)
    assert result["history"][0]["samples"] == 1616 and result["dataset"]["train_size"] == 1616
    assert {"val_loss", "val_accuracy", "val_f1", "grad_norm_mean"} <= set(result["history"][-1])
    assert set(result["final_eval"]) >= {"split", "loss", "accuracy", "f1"}
    assert result["final_eval"]["accuracy"] > 0.5
    folder = workspace / "full_experiments" / "ddp"
    assert [path.name for path in (folder / "checkpoints").iterdir()] == ["last.pt"]
    saved = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in saved["model"]), "the unwrapped model is saved"
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 2
    # each rank's own output is kept with the experiment
    assert sorted(path.parent.name for path in (folder / "ranks").glob("*/attempt_*/*/stderr.log")) == ["0", "1"]


ABORTING_MODEL = """
import os
import sys

from torch import nn


class AbortsOnRankOne(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        self.steps = 0

    def forward(self, x):
        self.steps += 1
        if os.environ.get("RANK") == "1" and self.training and self.steps > 2:
            print("rank one gives up here", file=sys.stderr, flush=True)
            os.abort()
        return self.net(x)
"""


def test_a_rank_that_dies_is_named_in_the_error_with_its_own_last_lines(workspace):
    from torchscout.tools.errors import ToolError
    from torchscout.tools.training.launch import run_distributed

    (workspace / "aborts.py").write_text(ABORTING_MODEL, encoding="utf-8")
    config = write_config(workspace, {**CONFIG, "epochs": 1})
    with pytest.raises(ToolError) as failure:
        run_distributed("aborts.py", "AbortsOnRankOne", config, "dies", "full_experiments", nproc=2)
    message = str(failure.value)
    assert "rank 1 failed with signal SIGABRT" in message, message
    assert "rank one gives up here" in message and "full_experiments/dies/ranks" in message
    assert list((workspace / "full_experiments" / "dies" / "ranks").glob("*/attempt_*/1/stderr.log"))


def test_a_diverged_ddp_run_reports_its_result_like_a_single_process_run(workspace):
    # "diverged" is a result, not a crash: rank 0 writes result.json and the CLI prints it (exit 1)
    models = write_models(workspace)
    config = {**CONFIG, "dataset": "dummy", "input_shape": [1, 8, 8], "epochs": 1, "metrics": ["accuracy"],
              "optimizer": "SGD", "learning_rate": 1e12, "sanity": "off"}
    outcome = CliRunner().invoke(app, ["train", models, "SmallCNN", write_config(workspace, config),
                                       "--experiment-name", "ddp_diverged", "--nproc", "2"])
    assert outcome.exit_code == 1, outcome.output
    result = json.loads(outcome.stdout)
    assert result["status"] == "diverged" and result["diverged_at"]["epoch"] == 1
    assert (workspace / "full_experiments" / "ddp_diverged" / "result.json").is_file()


def test_single_process_train_command_and_its_errors(workspace):
    models = write_models(workspace)
    runner = CliRunner()
    config = write_config(workspace, {**CONFIG, "epochs": 1})
    outcome = runner.invoke(app, ["train", models, "SmallCNN", config, "-n", "single"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["experiment_dir"] == "full_experiments/single"
    (workspace / "bad.yaml").write_text("dataset: digits\nepochz: 3\n", encoding="utf-8")
    failed = runner.invoke(app, ["train", models, "SmallCNN", "bad.yaml"])
    assert failed.exit_code == 2 and "trainer_config.epochz: unknown key" in failed.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_uses_bf16_autocast_and_preloads_on_the_gpu(workspace):
    from torchscout.tools.training.evaluation import pytorch_quick_evaluator

    models = write_models(workspace)
    result = pytorch_quick_evaluator(models, "SmallCNN", {"dataset": "digits", "epochs": 3, "device": "cuda"})
    assert result["status"] == "completed" and result["device"].startswith("cuda")
    assert result["data_path"] == "preloaded" and result["metrics"]["accuracy"] >= 0.85


def test_a_distributed_run_past_its_time_limit_is_killed_with_every_worker(workspace):
    from torchscout.tools.errors import ToolError
    from torchscout.tools.training.launch import run_distributed

    models = write_models(workspace)
    config = write_config(workspace, {**CONFIG, "epochs": 500})
    with pytest.raises(ToolError, match="ran past 3 s and was killed"):
        run_distributed(models, "SmallCNN", config, "too_long", "full_experiments", nproc=2, timeout_s=3)
    assert not (workspace / "full_experiments" / "too_long" / "result.json").exists()

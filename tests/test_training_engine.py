"""The engine's parts: batches, metrics, losses, schedulers, diagnostics, lr range test, checkpoints."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, precision_score, r2_score, recall_score
from torch import nn

from tests.training_helpers import one_thread, write_models  # noqa: F401 - fixture
from torchscout.tools.errors import ToolError
from torchscout.tools.training.checkpoints import capture_rng, restore_rng
from torchscout.tools.training.components import build_loss, build_scheduler, optimizer_spec
from torchscout.tools.training.config import EvalConfig
from torchscout.tools.training.data import PreloadedBatches, make_batches
from torchscout.tools.training.datasets import TensorSplit
from torchscout.tools.training.engine import count_spikes
from torchscout.tools.training.evaluation import pytorch_quick_evaluator
from torchscout.tools.training.lr_finder import lr_range_test, suggest_lr
from torchscout.tools.training.metrics import check_metric_names, computed_metric_names, create_metrics

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def tensor_split(size: int = 10) -> TensorSplit:
    return TensorSplit(torch.arange(size, dtype=torch.float32).unsqueeze(1), torch.arange(size))


def test_preloaded_batches_cover_every_sample_once_in_a_seeded_order():
    source = PreloadedBatches(tensor_split(10), 4, CPU, shuffle=True, seed=3)
    epoch_one = torch.cat([targets for _, targets in source.batches(1)])
    assert sorted(epoch_one.tolist()) == list(range(10))
    assert torch.equal(epoch_one, torch.cat([targets for _, targets in source.batches(1)]))
    assert not torch.equal(epoch_one, torch.cat([targets for _, targets in source.batches(2)]))
    in_order = PreloadedBatches(tensor_split(10), 4, CPU, shuffle=False)
    assert [len(targets) for _, targets in in_order.batches(0)] == [4, 4, 2]


def test_preloaded_batches_skip_a_trailing_batch_of_one_and_shard_across_ranks():
    skipping = PreloadedBatches(tensor_split(9), 4, CPU, shuffle=True)
    assert [len(t) for _, t in skipping.batches(0)] == [4, 4] and len(skipping) == 2
    shards = [torch.cat([t for _, t in PreloadedBatches(tensor_split(11), 5, CPU, shuffle=True, rank=rank,
                                                         world_size=2).batches(5)]) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_dataloader_path_yields_the_same_samples():
    source = make_batches(tensor_split(10), 4, CPU, shuffle=True, preload=False, seed=1)
    assert source.path == "dataloader" and len(source) == 3
    assert sorted(torch.cat([t for _, t in source.batches(0)]).tolist()) == list(range(10))


def test_metrics_match_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 6, generator=generator)
    labels = torch.randint(0, 6, (50,), generator=generator)
    metrics = create_metrics(computed_metric_names())
    for start in range(0, 50, 16):  # accumulated over batches
        for metric in metrics.values():
            metric.update(logits[start:start + 16], labels[start:start + 16])
    predicted = logits.argmax(1).numpy()
    top5 = (logits.topk(5, dim=1).indices == labels[:, None]).any(1).float().mean().item()
    one_hot = nn.functional.one_hot(labels, 6).float()
    expected = {
        "accuracy": float((predicted == labels.numpy()).mean()), "top_5_accuracy": top5,
        "f1": f1_score(labels, predicted, average="macro"), "f1_macro": f1_score(labels, predicted, average="macro"),
        "f1_micro": f1_score(labels, predicted, average="micro"),
        "precision": precision_score(labels, predicted, average="macro", zero_division=0),
        "recall": recall_score(labels, predicted, average="macro", zero_division=0),
        "mse": float(((logits - one_hot) ** 2).mean()), "mae": float((logits - one_hot).abs().mean()),
        "rmse": math.sqrt(float(((logits - one_hot) ** 2).mean())),
        "r2": r2_score(one_hot.numpy(), logits.numpy()),
        "perplexity": math.exp(nn.functional.cross_entropy(logits, labels).item()),
    }
    assert set(expected) == set(metrics)  # a new metric needs its reference value here
    for name, value in expected.items():
        assert metrics[name].compute() == pytest.approx(value, rel=1e-5), name
    with pytest.raises(ValueError, match="known metrics: accuracy"):
        check_metric_names(["accuracy", "auroc"])


def test_regression_metrics_match_scikit_learn_over_batches_and_targets():
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    generator = torch.Generator().manual_seed(1)
    for targets in (torch.randn(40, generator=generator) * 3 + 5, torch.randn(40, 3, generator=generator)):
        outputs = targets.reshape(40, -1) + 0.5 * torch.randn(40, targets.reshape(40, -1).shape[1],
                                                              generator=generator)
        metrics = create_metrics(["mse", "rmse", "mae", "r2"])
        for start in range(0, 40, 16):  # a [N] target meets [N, 1] outputs; [N, 3] meets [N, 3]
            for metric in metrics.values():
                metric.update(outputs[start:start + 16], targets[start:start + 16])
        actual = targets.reshape(40, -1).numpy()
        mse = mean_squared_error(actual, outputs.numpy())
        assert metrics["mse"].compute() == pytest.approx(mse, rel=1e-5)
        assert metrics["rmse"].compute() == pytest.approx(math.sqrt(mse), rel=1e-5)
        assert metrics["mae"].compute() == pytest.approx(mean_absolute_error(actual, outputs.numpy()), rel=1e-5)
        assert metrics["r2"].compute() == pytest.approx(r2_score(actual, outputs.numpy()), rel=1e-5)
    loss = build_loss("MSELoss")
    column = torch.tensor([[1.0], [2.0]])
    assert loss(column, torch.tensor([1.0, 4.0])).item() == pytest.approx(2.0)  # no [N, 1] x [N] broadcast


def test_losses_by_name_with_params_and_one_hot_targets_for_same_shape_losses():
    outputs, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    smoothed = build_loss({"type": "CrossEntropyLoss", "params": {"label_smoothing": 0.1}})
    assert smoothed(outputs, labels) == pytest.approx(nn.CrossEntropyLoss(label_smoothing=0.1)(outputs, labels).item())
    mse = build_loss("MSELoss")
    assert mse(outputs, labels).item() == pytest.approx(((outputs - nn.functional.one_hot(labels, 3)) ** 2).mean().item())
    with pytest.raises(ToolError, match="did you mean NLLLoss"):
        build_loss("NLLoss")
    with pytest.raises(ToolError, match="rejected its params"):
        build_loss({"type": "CrossEntropyLoss", "params": {"smoothing": 0.1}})


def test_schedulers_fill_in_lengths_and_know_warmup_cosine():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    cosine = build_scheduler("CosineAnnealingLR", optimizer, epochs=4, steps_per_epoch=10)
    assert not cosine.per_step and cosine.scheduler.T_max == 4
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    warmup = build_scheduler({"type": "warmup_cosine", "params": {"warmup_steps": 5}}, optimizer, 2, 10)
    assert warmup.per_step
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        warmup.scheduler.step()
    assert lrs[0] == pytest.approx(0.2) and lrs[4] == pytest.approx(1.0) and lrs[-1] < 0.05
    plateau = build_scheduler({"type": "ReduceLROnPlateau", "params": {"patience": 0}}, optimizer, 2, 10)
    assert plateau.needs_metric
    with pytest.raises(ToolError, match="unknown scheduler 'Cosine'"):
        build_scheduler("Cosine", optimizer, 2, 10)


def test_plateau_scheduler_follows_the_monitored_metrics_direction(workspace):
    # ReduceLROnPlateau steps with the monitored value: with accuracy monitored it must wait for
    # accuracy to stop *rising*, not cut the rate while it improves (its own default is mode="min")
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    plateau = build_scheduler({"type": "ReduceLROnPlateau", "params": {"patience": 0}}, optimizer, 3, 10,
                              monitor_mode="max")
    for accuracy in (0.5, 0.6, 0.7):
        plateau.scheduler.step(accuracy)
    assert optimizer.param_groups[0]["lr"] == 1.0
    explicit = build_scheduler({"type": "ReduceLROnPlateau", "params": {"mode": "min"}}, optimizer, 3, 10,
                               monitor_mode="max")
    assert explicit.scheduler.mode == "min"  # the user's own params win

    from torchscout.tools.training.config import TrainerConfig
    from torchscout.tools.training.distributed import DistContext
    from torchscout.tools.training.runs import make_monitor, prepare_run

    models = write_models(workspace)
    config = TrainerConfig(dataset="dummy", input_shape=[1, 8, 8], num_classes=10, device="cpu",
                           monitor="accuracy", scheduler="ReduceLROnPlateau")
    monitor = make_monitor(config.monitor, None, config.metrics)
    prepared = prepare_run(models, "SmallCNN", config, context=DistContext(), monitor=monitor)
    assert monitor.mode == "max" and prepared.run.scheduler.scheduler.mode == "max"


def test_plateau_scheduler_and_accumulation_in_a_real_run(workspace):
    models = write_models(workspace)
    config = {"dataset": "digits", "epochs": 3, "batch_size": 16, "device": "cpu", "optimizer": "SGD",
              "learning_rate": 1e-5, "accumulate_steps": 4, "grad_clip": 1.0,
              "scheduler": {"type": "ReduceLROnPlateau", "params": {"patience": 0, "factor": 0.5, "threshold": 0.5}}}
    result = pytorch_quick_evaluator(models, "SmallCNN", config)
    assert result["status"] == "completed", result.get("error")
    assert [record["lr"] for record in result["history"]] == pytest.approx([1e-5, 1e-5, 5e-6])
    assert result["history"][0]["steps"] == 26  # ceil(102 batches / 4)


def test_optimizer_spec_from_the_prd_shapes():
    config = EvalConfig(dataset="digits", optimizer="SGD", learning_rate=0.1)
    assert optimizer_spec(config) == {"type": "SGD", "params": {"lr": 0.1}}
    nested = EvalConfig(dataset="digits", optimizer={"type": "AdamW", "params": {"weight_decay": 0.01}})
    assert optimizer_spec(nested) == {"type": "AdamW", "params": {"weight_decay": 0.01}}
    assert EvalConfig(dataset="dummy", input_shape=[1, 3, 32, 32]).input_shape == [3, 32, 32]


def test_loss_spikes_are_counted_against_the_running_mean():
    assert count_spikes([1.0] * 10) == 0
    assert count_spikes([1.0] * 6 + [5.0] + [1.0] * 3 + [5.0]) == 2


def test_lr_range_test_suggests_a_rate_and_restores_the_model(tmp_path):
    torch.manual_seed(0)
    inputs = torch.randn(256, 4)
    targets = (inputs.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    source = PreloadedBatches(TensorSplit(inputs, targets), 32, CPU, shuffle=True)
    result = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), lambda: source.batches(0), num_steps=60,
                           plot_path=tmp_path / "lr.png")
    assert 1e-4 < result["suggested_lr"] < 10 and (tmp_path / "lr.png").stat().st_size > 0
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert optimizer.param_groups[0]["lr"] == 0.1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets), batch_size=32)
    from_loader = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader, num_steps=20)
    assert from_loader["steps"] == 20 and from_loader["plot_path"] is None
    assert suggest_lr([1e-3, 1e-2, 1e-1, 1.0], [1.0, 0.9, 0.5, 0.6]) == 1e-2  # steepest, below 0.1 / 10
    steepest_near_the_minimum = suggest_lr([1e-3, 3e-3, 1e-2, 3e-2, 1e-1], [1.0, 0.99, 0.98, 0.4, 0.2])
    assert steepest_near_the_minimum == pytest.approx(1e-2)  # steepest is 3e-2, capped at 1e-1 / 10


def test_rng_states_round_trip():
    saved = capture_rng()
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(drawn[0], again[0]) and np.array_equal(drawn[1], again[1]) and drawn[2] == again[2]

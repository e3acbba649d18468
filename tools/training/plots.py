"""Plots written next to a run's results: training curves and the lr range test (matplotlib, Agg)."""

from __future__ import annotations

import io
from pathlib import Path

from torchscout.tools.training.types import EpochRecord
from torchscout.tools.workspace import atomic_write_bytes


def _figure(columns: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    # a bare Figure (not pyplot) keeps no global state and is safe outside the main thread
    figure = Figure(figsize=(5 * columns, 4), tight_layout=True)
    return figure, [figure.add_subplot(1, columns, index + 1) for index in range(columns)]


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_curves(history: list[EpochRecord], metric_names: list[str], path: Path) -> Path:
    """Loss (train and val) on the left, each validation metric on the right, per epoch."""
    figure, (loss_axis, metric_axis) = _figure(2)
    epochs = [record["epoch"] for record in history]
    loss_axis.plot(epochs, [record["train_loss"] for record in history], marker="o", label="train_loss")
    loss_axis.plot(epochs, [record["val_loss"] for record in history], marker="o", label="val_loss")
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_axis.legend()
    for name in metric_names:
        metric_axis.plot(epochs, [record.get(f"val_{name}") for record in history], marker="o", label=name)
    metric_axis.set(xlabel="epoch", title="validation metrics")
    if metric_names:
        metric_axis.legend()
    return _save(figure, path)


def plot_lr_range(lrs: list[float], losses: list[float], suggested_lr: float | None, path: Path) -> Path:
    figure, (axis,) = _figure(1)
    axis.plot(lrs, losses)
    axis.set_xscale("log")
    axis.set(xlabel="learning rate", ylabel="smoothed loss", title="lr range test")
    if suggested_lr is not None:
        axis.axvline(suggested_lr, color="red", linestyle="--", label=f"suggested {suggested_lr:.2e}")
        axis.legend()
    return _save(figure, path)

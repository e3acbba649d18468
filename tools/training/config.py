"""The two configuration shapes the training tools accept: ``eval_config`` and ``trainer_config``.

Both are pydantic models with ``extra="forbid"``, so a typo such as ``batch_sise`` is an error
that names the key instead of a silently ignored setting. :func:`parse_config` turns pydantic's
validation error into a :class:`~torchscout.tools.errors.ToolError` that names every bad field.
The quick evaluator's config is the common part; the full trainer's adds checkpoints, early
stopping, resume and W&B.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from torchscout.tools.errors import ToolError

DeviceName = Literal["auto", "cuda", "cpu", "mps"]


class AugmentConfig(BaseModel):
    """Training-batch augmentation, applied on the device (see tools/training/augment.py)."""

    model_config = ConfigDict(extra="forbid")

    random_crop: int = Field(default=0, ge=0, description="Pad by this many pixels (time steps for signals) "
                             "and crop back at a random offset: a random translation of up to this much.")
    horizontal_flip: bool = Field(default=False, description="Images only: mirror a random half of each batch.")


class RunConfig(BaseModel):
    """What every training run needs: data, model, optimization, metrics and device."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="Dataset name: mnist, cifar10, digits, dummy, imagefolder, "
                         "imagenet_subset, custom_dataset_script or text_classification.")
    dataset_params: dict[str, Any] = Field(
        default_factory=dict,
        description="Dataset options: data_path, script_path, tokenizer_config, num_samples, image_size, ...")
    data_root: str | None = Field(default=None, description="Folder holding mnist/cifar10 (else the data dir).")
    input_shape: list[int] | None = Field(
        default=None, description="Sample shape for the dummy dataset, [C, H, W] (a leading batch dim of 1 is dropped).")
    num_classes: int | None = Field(default=None, ge=1, description="Number of classes the model predicts.")
    model_params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the model class.")
    batch_size: int = Field(default=64, ge=1, description="Samples per optimizer step (per process).")
    epochs: int = Field(default=1, ge=1, description="Passes over the training split.")
    optimizer: str | dict[str, Any] = Field(
        default="Adam", description="A torch.optim class name, a registered optimizer config or custom optimizer "
        "name, or {'type', 'params', 'param_groups'}.")
    learning_rate: float | None = Field(default=None, gt=0, description="Learning rate (default 1e-3).")
    scheduler: str | dict[str, Any] | None = Field(
        default=None, description="A torch.optim.lr_scheduler name or 'warmup_cosine', or {'type', 'params', 'interval'}.")
    loss_function: str | dict[str, Any] = Field(
        default="CrossEntropyLoss", description="A torch.nn loss name, or {'type', 'params'} (e.g. label_smoothing).")
    metrics: list[str] = Field(default_factory=lambda: ["accuracy"], description="Metric names to compute.")
    device: DeviceName = Field(default="auto", description="cuda, cpu, mps or auto.")
    seed: int = Field(default=0, description="Seed for weights, shuffling, splits and dropout.")
    val_fraction: float = Field(default=0.1, gt=0, lt=1, description="Holdout fraction when a dataset has no val split.")
    grad_clip: float | None = Field(default=None, gt=0, description="Clip the gradient norm to this value.")
    accumulate_steps: int = Field(default=1, ge=1, description="Micro-batches per optimizer step.")
    compile: bool = Field(default=False, description="Wrap the model in torch.compile.")
    amp: bool = Field(default=True, description="bf16 autocast on CUDA (ignored on CPU).")
    channels_last: bool | None = Field(
        default=None, description="Train in the channels_last memory format (faster 2D convolutions on CPU and "
        "CUDA; results differ only by float rounding). null: on for models with Conv2d layers on image batches "
        "when the model's forward runs in it; true: insist; false: never.")
    preload: bool | None = Field(
        default=None, description="Keep the dataset as tensors on the device (true), stream it through a "
        "DataLoader (false), or decide by size (null).")
    num_workers: int | None = Field(default=None, ge=0, description="DataLoader workers (streaming path only).")
    max_steps: int | None = Field(default=None, ge=1, description="Stop training after this many optimizer steps.")
    time_budget_s: float | None = Field(default=None, gt=0, description="Stop training after this many seconds.")
    train_subset: int | None = Field(default=None, ge=1, description="Train on this many samples only.")
    lr_find: bool = Field(default=False, description="Run an lr range test first and train with its suggestion.")
    augment: AugmentConfig | None = Field(
        default=None, description="Augment training batches: {random_crop: pixels or time steps, "
        "horizontal_flip: images only}; seeded per epoch.")

    @field_validator("input_shape")
    @classmethod
    def _sample_shape(cls, shape: list[int] | None) -> list[int] | None:
        if shape is None:
            return None
        if any(size < 1 for size in shape):
            raise ValueError("every dimension must be >= 1")
        # The PRD writes [1, 3, 32, 32]: a batch of one. The engine wants the shape of one sample.
        return shape[1:] if len(shape) == 4 and shape[0] == 1 else shape

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        from torchscout.tools.training.metrics import check_metric_names

        return check_metric_names(names)

    @property
    def effective_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else 1e-3


class EvalConfig(RunConfig):
    """``pytorch_quick_evaluator``'s eval_config."""

    sanity: Literal["batch", "overfit_batch", "off"] = Field(
        default="batch", description="One-batch check before training; 'overfit_batch' also checks the model "
        "can fit one batch.")


class EarlyStoppingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(default="val_loss", description="val_loss, or a metric name (accuracy, val_accuracy, ...).")
    patience: int = Field(default=10, ge=1, description="Epochs without improvement before stopping.")
    mode: Literal["min", "max"] | None = Field(default=None, description="min or max (by the metric if omitted).")
    min_delta: float = Field(default=0.0, ge=0, description="Smallest change that counts as an improvement.")


class WandbConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["offline", "online", "disabled"] | None = Field(
        default=None, description="W&B mode (default: the torchscout setting, offline).")
    project: str = Field(default="torchscout", description="W&B project.")
    entity: str | None = Field(default=None, description="W&B entity (team or user).")
    group: str | None = Field(default=None, description="W&B group.")
    job_type: str | None = Field(default=None, description="W&B job type (e.g. full_train).")
    tags: list[str] = Field(default_factory=list, description="W&B tags.")
    log_checkpoint: bool = Field(default=False, description="Upload best.pt as a model artifact.")


class TrainerConfig(RunConfig):
    """``pytorch_full_trainer``'s trainer_config."""

    epochs: int = Field(default=10, ge=1, description="Passes over the training split.")
    checkpoint_interval: int = Field(default=5, ge=0, description="Write checkpoints/epoch_N.pt every N epochs (0: never).")
    save_best_model: bool = Field(default=True, description="Keep checkpoints/best.pt by the monitored metric.")
    early_stopping: EarlyStoppingConfig | None = Field(default=None, description="Early stopping settings.")
    monitor: str | None = Field(
        default=None, description="Metric that picks best.pt (default: early_stopping.metric, else val_loss).")
    monitor_mode: Literal["min", "max"] | None = Field(default=None, description="min or max for monitor.")
    resume: bool = Field(default=False, description="Continue from checkpoints/last.pt of the same experiment.")
    wandb: WandbConfig = Field(default_factory=WandbConfig, description="Weights & Biases settings.")
    sanity: Literal["batch", "overfit_batch", "off"] = Field(default="batch", description="One-batch check first.")

    @model_validator(mode="after")
    def _monitor_defaults(self) -> TrainerConfig:
        if self.monitor is None:
            self.monitor = self.early_stopping.metric if self.early_stopping else "val_loss"
        return self


ConfigT = TypeVar("ConfigT", bound=RunConfig)


def parse_config(model: type[ConfigT], raw: Any, argument: str) -> ConfigT:
    """Validate ``raw`` as ``model``; a ToolError names each bad field of ``argument``."""
    if isinstance(raw, model):
        return raw
    if not isinstance(raw, dict):
        raise ToolError(f"{argument} must be a dict, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        known = ", ".join(sorted(model.model_fields))
        problems = []
        for item in exc.errors():
            location = ".".join(str(part) for part in item.get("loc", ())) or "(config)"
            if item.get("type") == "extra_forbidden":
                problems.append(f"{argument}.{location}: unknown key (known keys: {known})")
            else:
                problems.append(f"{argument}.{location}: {item.get('msg', 'invalid value')}")
        raise ToolError("invalid training configuration: " + "; ".join(problems)) from exc

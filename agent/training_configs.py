"""What the research graph hands the training tools: training settings and the two tool configs.

``TrainingRecord`` is how a candidate is trained (stored in its records); ``QuickEvalConfig`` and
``FullTrainConfig`` are the ``eval_config`` / ``trainer_config`` dicts the graph builds for
``pytorch_quick_evaluator`` and ``pytorch_full_trainer`` (which validate them with their own
pydantic models). Plain dicts, so the full-training config can be kept in the checkpointed state.
"""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict  # pydantic reads TypedDicts from here on Python 3.11


class AugmentSpec(TypedDict, total=False):
    """The training tools' ``augment``: a random crop (translation) of up to ``random_crop`` pixels or
    time steps, and left-right flips (images only)."""

    random_crop: int
    horizontal_flip: bool


class TrainingRecord(TypedDict):
    """How a candidate is trained: ``TrainingSettings.model_dump()``, plus, for an optimizer
    experiment, the registered optimizer config and the trial's name. Only the optimizer and the
    learning rate are always there (readers default the rest as TrainingSettings does)."""

    optimizer: str
    lr: float
    weight_decay: NotRequired[float]
    momentum: NotRequired[float | None]
    param_groups: NotRequired[list[dict[str, Any]]]   # {name_regex, ...optimizer keyword overrides}
    augment: NotRequired[AugmentSpec | None]          # training-batch augmentation (images, signals)
    config_name: NotRequired[str]
    trial: NotRequired[str]


class OptimizerSpec(TypedDict):
    """The training tools' ``optimizer`` as ``{type, params, param_groups}``."""

    type: str
    params: dict[str, float | bool]
    param_groups: NotRequired[list[dict[str, Any]]]


class Objective(TypedDict):
    """What a task trains for, in the training tools' keys: the loss, the metrics recorded, and the
    number of classes (classification only)."""

    loss_function: str
    metrics: list[str]
    num_classes: NotRequired[int]


class QuickEvalConfig(Objective):
    """The ``eval_config`` the graph gives ``pytorch_quick_evaluator`` for one evaluation."""

    dataset: str
    dataset_params: dict[str, Any]       # the dataset loader's own options
    input_shape: list[int]
    batch_size: int
    epochs: int
    optimizer: OptimizerSpec | str
    learning_rate: float
    device: str
    seed: int
    time_budget_s: float
    max_steps: NotRequired[int]
    data_root: NotRequired[str]
    augment: NotRequired[AugmentSpec]


class SchedulerSpec(TypedDict):
    type: str
    params: dict[str, int]


class WandbSettings(TypedDict):
    mode: str
    group: str
    tags: list[str]
    project: NotRequired[str]
    job_type: NotRequired[str]


class EarlyStoppingSpec(TypedDict):
    """The trainer's ``early_stopping``: stop after ``patience`` epochs without a better ``metric``."""

    metric: str
    patience: int
    mode: str


class FullTrainConfig(QuickEvalConfig):
    """The ``trainer_config`` of the winner's full training (kept in the state and the project)."""

    scheduler: SchedulerSpec
    checkpoint_interval: int
    save_best_model: bool
    monitor: str
    monitor_mode: str
    wandb: WandbSettings
    resume: NotRequired[bool]
    early_stopping: NotRequired[EarlyStoppingSpec]  # configs kept by older versions have none

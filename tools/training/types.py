"""The shapes of what the training tools return and record: plain JSON-able dicts, typed.

``pytorch_quick_evaluator`` answers a :class:`QuickEvalAnswer` and ``pytorch_full_trainer`` a
:class:`FullTrainAnswer`; both share :class:`RunAnswer`'s keys. Keys marked ``NotRequired``
appear only once a run got that far (``dataset`` after the data loaded, ``sanity`` when the
check ran, ``error`` when it failed) or only in one situation (``resumed_from_epoch``).
The epoch records in ``history`` are also the lines of ``metrics.jsonl``.
"""

from typing import Any, Literal, NotRequired, TypedDict

# One epoch of training: epoch, train_loss, lr, grad_norm_mean, grad_norm_max, loss_spikes, steps,
# samples, epoch_time_s, samples_per_s, then val_loss and val_<metric> for each configured metric
# (keys named by the metrics asked for, so no fixed set of keys: every value is a number).
EpochRecord = dict[str, float]

# The final evaluation of the full trainer: "split" (test or val) and "checkpoint" (best or last),
# then loss and every configured metric on that split.
FinalEval = dict[str, str | float]


class BestMetric(TypedDict):
    """The best value of the monitored record key so far, and the epoch that reached it."""

    name: str  # a record key: val_loss, val_accuracy, ...
    value: float
    epoch: int


class MonitorChoice(TypedDict):
    name: str  # the record key that decides "best" and early stopping
    mode: Literal["min", "max"]


class LrRangeTest(TypedDict):
    """The lr range test's full result (the curve stays here; answers carry :class:`LrFindSummary`)."""

    suggested_lr: float | None
    lrs: list[float]
    losses: list[float]  # smoothed, one per lr
    steps: int
    plot_path: str | None


class LrFindSummary(TypedDict):
    suggested_lr: float | None
    steps: int
    plot_path: str | None  # workspace-relative


class DatasetInfo(TypedDict, total=False):
    """What a run's data was: the builder's notes, then the split sizes the run used."""

    source: str  # a folder, a file, a script, or "random" / "sklearn.datasets.load_digits"
    val_split: str  # where val came from: "test", "holdout" or "script"
    test_split: str  # "fixed": drawn with a fixed seed, the same for every run seed
    target_mean: list[float]  # regression targets standardised with the training split: per target
    target_std: list[float]
    classes: list[str]  # imagefolder
    label_names: list[str]  # text_classification
    max_length: int  # text_classification
    vocab_size: int  # text_classification
    name: str
    train_size: int
    val_size: int
    test_size: int


class SanityCheck(TypedDict):
    ok: bool
    input_shape: list[int]
    output_shape: list[int]
    first_loss: float
    parameters_without_grad: list[str]  # the first ten


class OverfitCheck(TypedDict):
    passed: bool
    initial_loss: float
    final_loss: float
    steps: int
    verdict: str


class RunChecks(TypedDict, total=False):
    """The checks run before training, by name (none when ``sanity`` is "off")."""

    sanity: SanityCheck
    overfit_batch: OverfitCheck


class DivergedAt(TypedDict):
    epoch: int
    step: int
    last_finite_loss: float | None


class RunAnswer(RunChecks):
    """The keys both training tools answer with."""

    status: str  # "completed", "diverged" or "failed"
    history: list[EpochRecord]
    samples_per_s: float
    duration_s: float
    device: str | None
    data_path: str | None
    # known once the run is assembled
    dataset: NotRequired[DatasetInfo]
    num_classes: NotRequired[int | None]
    lr_find: NotRequired[LrFindSummary | None]
    monitor: NotRequired[MonitorChoice]
    device_note: NotRequired[str]
    memory_format: NotRequired[str]  # "channels_last" or "contiguous": what the model trained in
    # why a run did not complete
    stage: NotRequired[str]  # load, sanity, train or final_eval
    error: NotRequired[str]
    traceback: NotRequired[str]
    diverged_at: NotRequired[DivergedAt]
    # how the run ended
    stop_reason: NotRequired[str | None]  # early_stopping, max_steps, time_budget; None: all epochs ran
    epochs_completed: NotRequired[int]
    # seconds per phase (startup_s, data_s, ..., train_steps_s, validation_s), other_s, total_s, work_fraction
    timings: NotRequired[dict[str, float]]


class QuickEvalAnswer(RunAnswer):
    """``pytorch_quick_evaluator``'s answer."""

    metrics: dict[str, float]  # each configured metric on the val split after the last epoch
    train_loss: float | None
    val_loss: float | None


class FullTrainAnswer(RunAnswer):
    """``pytorch_full_trainer``'s answer, also written to the experiment's ``result.json``."""

    experiment_dir: str
    best_checkpoint_path: str | None
    best_metric: BestMetric | None
    final_eval: FinalEval
    stopped_early: bool
    wandb_run_dir: str | None
    resumed_from_epoch: NotRequired[int]


class SavedLoopState(TypedDict):
    """The training loop's state as a checkpoint holds it: ``LoopState``'s fields, by name."""

    epoch: int  # last completed epoch
    global_step: int
    history: list[EpochRecord]
    best: BestMetric | None
    bad_epochs: int
    stop_reason: str | None
    train_time_s: float
    train_samples: int
    wandb_run_id: str | None
    initial_loss: NotRequired[float | None]  # absent in checkpoints written before it was kept


class ExperimentDescription(TypedDict):
    """``config.yaml`` of an experiment folder, also the W&B run's config."""

    model_script_path: str
    model_class_name: str
    experiment_name: str
    trainer_config: dict[str, Any]  # the validated TrainerConfig, every default filled in

"""The research task file: what to explore, on which data, judged by which metric, within which budget.

A task is a YAML file (or a dict) validated here. Unknown keys are refused so a typo such as
``max_round`` fails loudly instead of silently running with the default, and every error
names the field it is about::

    name: digits
    goal: Find a small, accurate classifier for 8x8 handwritten digits.
    dataset: digits
    input_shape: [1, 8, 8]
    num_classes: 10
    metric: accuracy
    mode: max
    target: 0.97
    budget: {candidates_per_round: 4, quick_epochs: 5, full_epochs: 20, max_minutes: 15}  # max_rounds: optional
    seed: 0
    approve: [full_train]   # optional: pause before full training until `torchscout resume NAME --approve yes|no`

A regression task says ``task_type: regression`` and predicts ``num_targets`` values (default 1)
instead of ``num_classes`` classes; its metric defaults to ``r2`` and its loss to ``MSELoss``
(``HuberLoss`` and ``L1Loss`` are the robust alternatives). The inputs decide the search space:
images ``[C, H, W]``, signals ``[C, L]`` (a float input of two dimensions: time series, audio
features, sensor channels), flat features ``[F]``, token ids ``[L]`` (``input_dtype: int64``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from torchscout.agent.approvals import parse_actions
from torchscout.agent.planners import PLANNERS
from torchscout.tools.errors import ToolError
from torchscout.tools.limits import batch_problem, parameters_problem
from torchscout.tools.training.components import LOSSES
from torchscout.tools.training.metrics import metric_mode, needs_labels

Modality = Literal["image", "signal", "flat", "tokens"]
TaskType = Literal["classification", "regression"]

# The loss each kind of task trains with unless the task names another.
DEFAULT_LOSSES: dict[TaskType, str] = {"classification": "CrossEntropyLoss", "regression": "MSELoss"}
DEFAULT_METRICS: dict[TaskType, str] = {"classification": "accuracy", "regression": "r2"}
# Losses that compare a prediction with a float target of the same shape.
REGRESSION_LOSSES = ("MSELoss", "HuberLoss", "SmoothL1Loss", "L1Loss")

# Rounds at most when no max_rounds is given (the time budget or patience normally ends a run first).
ROUND_CAP = 100

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TaskError(ToolError):
    """The task file or dict is invalid; the message names each bad field and what to write instead."""


class Budget(BaseModel):
    """How much exploration a run may do. The graph enforces every limit itself."""

    model_config = ConfigDict(extra="forbid")

    max_rounds: int | None = Field(
        default=None, ge=1, le=ROUND_CAP,
        description="Propose/evaluate rounds at most. Omit it and the search runs until the time budget "
                    "(less what confirmation and full training are estimated to need) is used or "
                    "patience_rounds pass without improvement.")
    candidates_per_round: int = Field(default=4, ge=1, le=64, description="Architectures proposed per round.")
    quick_epochs: int = Field(default=3, ge=1, le=1000,
                              description="Epochs of the quick evaluation (rung 1) given to the best screened "
                                          "candidates of a round.")
    halving_rate: int = Field(default=2, ge=2, le=4,
                              description="Successive halving: each rung keeps the best 1/halving_rate of the "
                                          "previous one and trains them halving_rate times longer.")
    max_rungs: int = Field(default=4, ge=2, le=8,
                           description="Rungs of a round at most: the screen (0), the quick evaluation (1) and "
                                       "longer ones (quick_epochs x halving_rate^(rung-1), at most full_epochs).")
    screen_steps: int = Field(default=60, ge=1,
                              description="Optimizer steps of the short screening evaluation every candidate gets.")
    quick_max_steps: int | None = Field(default=None, ge=1,
                                        description="Optional cap on the steps of one quick evaluation.")
    full_epochs: int = Field(default=10, ge=0, le=10000,
                             description="Most epochs of the final full training of the winner (0 skips it); "
                                         "early stopping usually ends it sooner.")
    full_patience: int | None = Field(
        default=None, ge=1,
        description="The final training stops after this many epochs without a better task metric and keeps "
                    "the best epoch's weights (default: a fifth of full_epochs, at least 3).")
    max_params: int | None = Field(default=None, ge=1, description="Reject candidates with more parameters.")
    max_flops: int | None = Field(default=None, ge=1, description="Reject candidates with more FLOPs per sample.")
    max_minutes: float = Field(default=30.0, gt=0, allow_inf_nan=False,
                               description="Wall-clock budget of the whole run in minutes.")
    optimizer_trials: int = Field(default=3, ge=0, le=20,
                                  description="Optimizer settings tried on the best architecture (0 skips).")
    confirm_seeds: int = Field(default=3, ge=1, le=10,
                               description="Seeds each of the top two is re-evaluated with before the choice.")
    batch_size: int = Field(default=64, ge=1, description="Batch size of quick evaluations and full training.")
    max_llm_calls: int | None = Field(default=None, ge=0,
                                      description="Most LLM calls of the run (planner, code, analyses); "
                                                  "after it, the builtin ways take over.")
    max_llm_tokens: int | None = Field(default=None, ge=0,
                                       description="Most LLM tokens (prompt + completion) of the run.")
    patience_rounds: int | None = Field(
        default=None, ge=1,
        description="Stop searching after this many rounds without improvement (default: 1 with max_rounds, "
                    "2 without).")
    workers: int | None = Field(
        default=None, ge=1, le=256,
        description="Candidate evaluations run at once (default: what the machine has: one per GPU, else one "
                    "per CPU core up to 8; with executor ray, what the cluster has). Each gets an equal share "
                    "of the cores as its torch threads.")

    @property
    def patience(self) -> int:
        """Rounds without improvement that end the search (patience_rounds, else its default)."""
        if self.patience_rounds is not None:
            return self.patience_rounds
        return 1 if self.max_rounds is not None else 2

    @property
    def rounds_cap(self) -> int:
        """Rounds at most: max_rounds, or the hard cap of a run that the time budget ends."""
        return self.max_rounds if self.max_rounds is not None else ROUND_CAP

    @property
    def early_stopping_patience(self) -> int:
        """Epochs without improvement that end the final training (full_patience, else its default)."""
        if self.full_patience is not None:
            return self.full_patience
        return max(3, self.full_epochs // 5)


class Task(BaseModel):
    """A research task: validated, JSON-serialisable, stored in the run's state and folder."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Short identifier; the default run name.")
    goal: str = Field(default="", description="What the researcher wants, in words (goes into the report).")
    dataset: str = Field(description="Dataset name known to the evaluator: digits, dummy, mnist, cifar10, "
                                     "text_classification, ...")
    dataset_params: dict[str, Any] = Field(default_factory=dict, description="Passed to the dataset loader.")
    data_root: str | None = Field(default=None, description="Folder holding the dataset files (workspace path).")
    input_shape: list[int] = Field(description="Shape of one sample without the batch dimension, e.g. [1, 8, 8].")
    input_dtype: Literal["float32", "int64"] = Field(default="float32",
                                                     description="int64 for token ids, float32 otherwise.")
    task_type: TaskType = Field(default="classification",
                                description="classification (integer labels) or regression (float targets).")
    num_classes: int | None = Field(default=None, ge=2, description="Classification: number of target classes.")
    num_targets: int = Field(default=1, ge=1, description="Regression: values predicted per sample.")
    loss_function: str | None = Field(
        default=None, description="A torch.nn loss name; default CrossEntropyLoss (classification) or MSELoss "
                                  "(regression; HuberLoss and L1Loss are robust to outliers).")
    metric: str = Field(default="accuracy", description="The metric that ranks candidates: accuracy, f1, r2, "
                                                        "rmse, val_loss, perplexity, ... (a name of the metric "
                                                        "registry); default accuracy, or r2 for regression.")
    mode: Literal["max", "min"] | None = Field(default=None, description="max or min (default from the metric).")
    target: float | None = Field(default=None, allow_inf_nan=False,
                                 description="Stop searching once a candidate reaches this.")
    budget: Budget = Field(default_factory=Budget)
    planner: str = Field(default="builtin", description="Who proposes the candidates: builtin or llm.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1,
                      description="Makes the builtin planner and the evaluations repeatable.")
    tokenizer: dict[str, Any] = Field(
        default_factory=dict,
        description="Text tasks: {type: BPE|WordPiece|CharLevel, vocab_sizes: [..], text_column, min_frequency}.",
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where candidate evaluations run: local (this machine, budget.workers at once) or ray "
                    "(tasks of a Ray cluster; needs the torchscout[ray] extra).")
    ray_address: str | None = Field(
        default=None,
        description="executor ray: the cluster to use ('HOST:6379' from a node of the cluster, or "
                    "'ray://HOST:10001'); without it a local Ray instance is started.")
    approve: list[str] = Field(
        default_factory=list,
        description="Actions the run pauses before until a person answers `torchscout resume NAME --approve "
                    "yes|no`: full_train, pip_install (a list, or one comma-separated string).",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_path_segment(cls, value: str) -> str:
        if not _NAME_PATTERN.match(value):
            raise ValueError("use letters, digits, '_', '-' or '.', starting with a letter or digit (max 64)")
        return value

    @field_validator("planner")
    @classmethod
    def _known_planner(cls, value: str) -> str:
        return PLANNERS.check(value)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        metric_mode(value)  # an unknown metric has no direction: refused here, naming the known ones
        return value

    @field_validator("approve", mode="before")
    @classmethod
    def _known_actions(cls, value: Any) -> list[str]:
        return parse_actions(value)

    @model_validator(mode="before")
    @classmethod
    def _default_metric_by_task_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("metric") is None and data.get("task_type") in DEFAULT_METRICS:
            data = {**data, "metric": DEFAULT_METRICS[data["task_type"]]}
        return data

    @field_validator("loss_function")
    @classmethod
    def _known_loss(cls, value: str | None) -> str | None:
        return None if value is None else LOSSES.check(value)

    @field_validator("input_shape")
    @classmethod
    def _shape_is_positive(cls, value: list[int]) -> list[int]:
        if not value or any(size < 1 for size in value):
            raise ValueError("give the positive size of each dimension of one sample, without the batch, "
                             "e.g. [1, 8, 8] for images or [64] for 64 token ids")
        return value

    @model_validator(mode="after")
    def _sizes_fit_this_machine(self) -> Task:
        problem = batch_problem(math.prod(self.input_shape), self.budget.batch_size)
        if problem:
            raise ValueError(f"input_shape {self.input_shape} x budget.batch_size: {problem}")
        # the output layer alone has one weight per feature and output value
        problem = parameters_problem(self.output_size)
        if problem:
            name = "num_targets" if self.is_regression else "num_classes"
            raise ValueError(f"{name} {self.output_size}: even a one-feature output layer is too large: "
                             f"{problem}")
        return self

    @model_validator(mode="after")
    def _resolve_mode_and_modality(self) -> Task:
        if self.mode is None:
            self.mode = metric_mode(self.metric)
        if self.input_dtype == "int64" and len(self.input_shape) != 1:
            raise ValueError("input_shape: token-id inputs (input_dtype int64) take one dimension, "
                             "the sequence length, e.g. [64]")
        if self.input_dtype == "float32" and len(self.input_shape) not in (1, 2, 3):
            raise ValueError("input_shape: give [features] for flat inputs, [channels, length] for signals "
                             "or [channels, height, width] for images")
        self._check_targets()
        return self

    def _check_targets(self) -> None:
        """The fields that must agree with the task type: classes or targets, the loss and the metric."""
        if self.task_type == "classification":
            if self.num_classes is None:
                raise ValueError("num_classes: a classification task needs the number of classes (>= 2); "
                                 "for float targets write task_type: regression")
            return
        if self.num_classes is not None:
            raise ValueError("num_classes: a regression task predicts num_targets values, not classes; "
                             "remove num_classes")
        if needs_labels(self.metric):
            raise ValueError(f"metric: {self.metric} compares class labels; a regression task is ranked by "
                             "r2, rmse, mse, mae or val_loss")
        if self.loss_function is not None and self.loss_function not in REGRESSION_LOSSES:
            raise ValueError(f"loss_function: a regression task trains with one of {', '.join(REGRESSION_LOSSES)}, "
                             f"not {self.loss_function}")

    @model_validator(mode="after")
    def _ray_address_needs_ray(self) -> Task:
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError("ray_address: only an executor: ray run uses a Ray cluster; add executor: ray "
                             "or remove ray_address")
        return self

    @property
    def modality(self) -> Modality:
        """Which search space fits the inputs: token ids, images, signals or flat feature vectors."""
        if self.input_dtype == "int64":
            return "tokens"
        return {3: "image", 2: "signal"}.get(len(self.input_shape), "flat")

    @property
    def is_regression(self) -> bool:
        return self.task_type == "regression"

    @property
    def output_size(self) -> int:
        """Values the model predicts per sample: one logit per class, or one value per regression target."""
        return self.num_targets if self.is_regression else int(self.num_classes or 0)

    @property
    def loss(self) -> str:
        """The loss the task trains with: its own, or the task type's default."""
        return self.loss_function or DEFAULT_LOSSES[self.task_type]

    @property
    def maximize(self) -> bool:
        return self.mode == "max"

    def better(self, first: float, second: float) -> bool:
        """Whether metric value ``first`` beats ``second`` under this task's mode."""
        return first > second if self.maximize else first < second

    def reached_target(self, value: float | None) -> bool:
        if self.target is None or value is None:
            return False
        return value >= self.target if self.maximize else value <= self.target


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item.get("loc", ())) or "(task)"
        message = item.get("msg", "invalid value").removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "unknown field; check the spelling (see examples/digits.yaml for every field)"
        problems.append(f"{field}: {message}")
    return "; ".join(problems)


MAX_TASK_FILE_BYTES = 1 << 20  # a task is a short YAML file; anything larger is the wrong file


def _read_yaml(path: Path) -> object:
    """The parsed task file; an unreadable, binary, huge or malformed file is a one-line TaskError."""
    try:
        size = path.stat().st_size
        if size > MAX_TASK_FILE_BYTES:
            raise TaskError(f"task file {path} is {size:,} bytes; a task file is a short YAML file "
                            "(see examples/digits.yaml)")
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TaskError(f"task file {path} is not UTF-8 text (byte {exc.start} cannot be decoded); "
                        "give a YAML task file such as examples/digits.yaml") from exc
    except OSError as exc:
        raise TaskError(f"cannot read task file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise TaskError(f"task file {path} is not valid YAML: {' '.join(str(exc).split())}") from exc


def load_task(source: str | Path | dict[str, Any] | Task, **overrides: Any) -> Task:
    """Load and validate a task from a YAML file path, a dict or a Task; ``overrides`` replace top-level keys.

    Raises :class:`TaskError` naming every invalid field.
    """
    if isinstance(source, Task):
        data: dict[str, Any] = source.model_dump()
        origin = "task"
    elif isinstance(source, dict):
        data, origin = dict(source), "task dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise TaskError(f"task file {str(path)!r} does not exist; pass the path of a task YAML file "
                            "such as examples/digits.yaml")
        loaded = _read_yaml(path)
        if not isinstance(loaded, dict):
            raise TaskError(f"task file {path} must hold a mapping of fields (name, dataset, input_shape, ...)")
        data, origin = loaded, f"task file {path}"
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Task.model_validate(data)
    except ValidationError as exc:
        raise TaskError(f"invalid {origin}: {_describe(exc)}") from exc

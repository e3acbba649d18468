"""One candidate evaluation: the quick evaluator's config for a job, the call, and the record kept.

A failure inside the candidate's own code (it does not build, raises, diverges) becomes a
record with ``status`` 'failed' or 'diverged' and the error text: the search goes on. Only
transient infrastructure errors (:data:`TRANSIENT_ERRORS`) propagate, so the node's
``RetryPolicy`` can try again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import torch

from torchscout.agent.records import EpochRecord, EvaluationRecord, TokenizerRecord
from torchscout.agent.task import Task
from torchscout.agent.training_configs import Objective, OptimizerSpec, QuickEvalConfig, TrainingRecord
from torchscout.graphs.events import emit
from torchscout.graphs.state import EvaluationJob, task_of
from torchscout.graphs.tracking import log_evaluation
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.training.evaluation import pytorch_quick_evaluator
from torchscout.tools.training.status import COMPLETED, DIVERGED, FAILED
from torchscout.tools.workspace import atomic_write_text, resolve

# Errors worth retrying: the machine, not the candidate, was the problem.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, BlockingIOError,
                                                      InterruptedError)
MIN_EVAL_SECONDS = 2.0  # an evaluation given less time than this is skipped, not started


class RegisteredTokenizer(TypedDict):
    """``dataset_params.tokenizer_config`` naming a tokenizer in the registry."""

    name: str
    type: str


def tokenizer_config(job_tokenizers: dict[str, TokenizerRecord], vocab_size: int | None) -> RegisteredTokenizer | None:
    if vocab_size is None:
        return None
    entry = job_tokenizers.get(str(vocab_size))
    if entry is None:
        raise ToolError(f"no tokenizer with vocab_size {vocab_size} was trained for this run; "
                        f"trained: {sorted(job_tokenizers)}")
    return RegisteredTokenizer(name=entry["name"], type="registered")


def dataset_params(task: Task, tokenizers: dict[str, TokenizerRecord], vocab_size: int | None) -> dict[str, Any]:
    """The task's dataset options, plus the tokenizer a text candidate uses."""
    params = dict(task.dataset_params)
    token_config = tokenizer_config(tokenizers, vocab_size)
    if token_config is not None:
        params["tokenizer_config"] = token_config
        params.setdefault("max_length", task.input_shape[0])
    return params


def optimizer_spec(training: TrainingRecord) -> OptimizerSpec | str:
    """The evaluator's optimizer: a registered config name or a {type, params, param_groups} spec."""
    if training.get("config_name"):
        return training["config_name"]
    params: dict[str, float | bool] = {"lr": training["lr"], "weight_decay": training.get("weight_decay", 0.0)}
    momentum = training.get("momentum")
    if momentum is not None:
        params["momentum"] = momentum
        if training["optimizer"] == "SGD":
            params["nesterov"] = True
    spec = OptimizerSpec(type=training["optimizer"], params=params)
    if training.get("param_groups"):
        spec["param_groups"] = training["param_groups"]
    return spec


# Besides the task's own metric, every evaluation records these (a regression run reports all four
# errors, so the report and result.json can show them side by side).
COMPANION_METRICS = {"classification": ["accuracy"], "regression": ["r2", "rmse", "mae"]}


def metrics_requested(task: Task) -> list[str]:
    """The task's metric (unless it is the loss, which every run records) and its companions."""
    metrics = [task.metric, *COMPANION_METRICS[task.task_type]]
    return list(dict.fromkeys(name for name in metrics if name not in {"loss", "val_loss"}))


def objective(task: Task) -> Objective:
    """The loss, metrics and classes a task's evaluations and full training use."""
    fields = Objective(loss_function=task.loss, metrics=metrics_requested(task))
    if not task.is_regression:
        fields["num_classes"] = task.output_size
    return fields


def eval_config(job: EvaluationJob, time_budget_s: float) -> QuickEvalConfig:
    task = task_of(job)
    config = QuickEvalConfig(
        dataset=task.dataset,
        dataset_params=dataset_params(task, job["tokenizers"], job["candidate"].get("vocab_size")),
        input_shape=list(task.input_shape),  # one sample, as the full training gets it
        batch_size=task.budget.batch_size,
        epochs=job["epochs"],
        optimizer=optimizer_spec(job["training"]),
        learning_rate=job["training"]["lr"],
        device="auto",
        seed=job["seed"],
        time_budget_s=max(time_budget_s, MIN_EVAL_SECONDS),
        **objective(task),
    )
    max_steps = job.get("max_steps")
    if max_steps:
        config["max_steps"] = max_steps
    if task.data_root:
        config["data_root"] = task.data_root
    if job["training"].get("augment"):
        config["augment"] = job["training"]["augment"]
    return config


def metric_value(result: Mapping[str, Any], task: Task) -> float | None:
    """The task's metric from an evaluator result (val_loss/loss come from the losses)."""
    name = task.metric
    if name in {"loss", "val_loss"}:
        value = result.get("val_loss")
    else:
        value = (result.get("metrics") or {}).get(name)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _compact_history(history: Iterable[Mapping[str, object]] | None) -> list[EpochRecord]:
    """Per-epoch numbers only (the state stays small and msgpack-able)."""
    keep = []
    for entry in history or []:
        keep.append({key: float(value) if isinstance(value, float | int) and not isinstance(value, bool) else value
                     for key, value in entry.items()
                     if isinstance(value, int | float | str) or value is None})
    return keep


def run_evaluation(job: EvaluationJob, time_left_s: float) -> EvaluationRecord:
    """Evaluate one job; returns the evaluation record (never raises for the candidate's own faults)."""
    task, key = task_of(job), job["key"]
    record = EvaluationRecord(key=key, kind=job["kind"], candidate_id=job["candidate_id"], seed=job["seed"],
                              training=job["training"], epochs=job["epochs"], max_steps=job.get("max_steps"),
                              metric=None, status=FAILED)
    if time_left_s < MIN_EVAL_SECONDS:
        record.update(status="skipped", error="the run's time budget was used up before this evaluation")
        emit(job["run_dir"], "skipped", key=key, candidate_id=job["candidate_id"], reason=record["error"])
        return record
    candidate = job["candidate"]
    emit(job["run_dir"], "started", key=key, kind=job["kind"], candidate_id=job["candidate_id"])
    started = time.monotonic()
    try:
        result = pytorch_quick_evaluator(candidate["script"], candidate["class_name"],
                                         eval_config(job, time_left_s))
    except TRANSIENT_ERRORS:
        raise
    except (ToolError, UserCodeError) as exc:
        record.update(error=str(exc).splitlines()[0][:500], traceback=getattr(exc, "traceback_tail", ""))
        result = None
    except (RuntimeError, ValueError, TypeError, torch.OutOfMemoryError) as exc:
        # the candidate's code or settings broke training in a way the evaluator did not catch
        record.update(error=f"{type(exc).__name__}: {exc}"[:500], traceback=traceback_tail(exc))
        result = None
    record["duration_s"] = round(time.monotonic() - started, 3)
    if result is not None:
        value = metric_value(result, task)
        status = result["status"]
        ok = status == COMPLETED and value is not None
        record.update(
            status=COMPLETED if ok else (DIVERGED if status == DIVERGED else FAILED),
            metric=value if ok else None,
            metrics={name: float(val) for name, val in (result.get("metrics") or {}).items()
                     if isinstance(val, int | float)},
            train_loss=_float_or_none(result.get("train_loss")), val_loss=_float_or_none(result.get("val_loss")),
            history=_compact_history(result.get("history")),
            samples_per_s=_float_or_none(result.get("samples_per_s")),
            error=None if ok else (result.get("error") or f"status {status}, no {task.metric} in the result"),
        )
    _save(job, record)
    log_evaluation(job, record)
    if record["status"] == COMPLETED:
        emit(job["run_dir"], "evaluated", key=key, kind=job["kind"], candidate_id=job["candidate_id"],
             metric=record["metric"], metric_name=task.metric, duration_s=record["duration_s"])
    else:
        emit(job["run_dir"], "failed", key=key, stage=job["kind"], candidate_id=job["candidate_id"],
             error=str(record.get("error"))[:200])
    return record


def _float_or_none(value: Any) -> float | None:
    """A finite float from any number-like value (numpy and torch scalars too), else None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _save(job: EvaluationJob, record: EvaluationRecord) -> None:
    folder = resolve(f"{job['run_dir']}/candidates/{job['candidate_id']}", kind="candidate folder")
    atomic_write_text(folder / f"eval_{job['key'].replace('/', '_')}.json", json.dumps(record, indent=2, default=str))

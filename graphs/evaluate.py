"""One candidate evaluation: the quick evaluator's config for a job, the call, and the record kept.

The evaluation runs in a confined child (the generated model is code nobody vetted):
:func:`evaluate_job` is one self-contained job (plain data in, the record out) that
:func:`run_evaluation` sends through the sandbox's warm fork server.

A failure inside the candidate's own code (it does not build, raises, diverges) becomes a
record with ``status`` 'failed' or 'diverged' and the error text: the search goes on. Only
transient infrastructure errors (:data:`TRANSIENT_ERRORS`) propagate, so the node's
``RetryPolicy`` can try again.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict

import torch

from torchscout.agent.records import EpochRecord, EvaluationRecord, TokenizerRecord
from torchscout.agent.task import Task
from torchscout.agent.training_configs import (
    FullTrainConfig,
    Objective,
    OptimizerSpec,
    QuickEvalConfig,
    TrainingRecord,
)
from torchscout.graphs.events import emit
from torchscout.graphs.state import EvaluationJob, task_of
from torchscout.graphs.tracking import log_evaluation
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.sandbox.runner import run_in_sandbox
from torchscout.tools.training.evaluation import WARM_TRAINING, pytorch_full_trainer, pytorch_quick_evaluator
from torchscout.tools.training.status import COMPLETED, DIVERGED, FAILED
from torchscout.tools.training.types import FullTrainAnswer
from torchscout.tools.workspace import atomic_write_text, resolve

# Errors worth retrying: the machine, not the candidate, was the problem.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, BlockingIOError,
                                                      InterruptedError)
MIN_EVAL_SECONDS = 2.0  # an evaluation given less time than this is skipped, not started
# the child's time limit on top of the training budget: data loading, the sanity check, the teardown
EVALUATION_SLACK_S = 120.0
TRAINING_SLACK_S = 600.0  # the final evaluation, checkpoints and W&B's finish after the training budget


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
    return named_metric_value(result, task.metric)


def named_metric_value(result: Mapping[str, Any], name: str) -> float | None:
    """The metric ``name`` from an evaluator result (val_loss/loss come from the losses)."""
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


def _new_record(job: EvaluationJob) -> EvaluationRecord:
    return EvaluationRecord(key=job["key"], kind=job["kind"], candidate_id=job["candidate_id"], seed=job["seed"],
                            training=job["training"], epochs=job["epochs"], max_steps=job.get("max_steps"),
                            metric=None, status=FAILED)


def evaluate_job(job: EvaluationJob, config: QuickEvalConfig, metric: str, gpu: str | None = None) -> EvaluationRecord:
    """Evaluate one job in this process with the quick evaluator's ``config``; the record of ``metric``.

    Never raises for the candidate's own faults. Self-contained, plain data in and out (the task
    was resolved into ``config`` by the caller, so no registry of the caller's is needed here):
    :func:`evaluate_confined` runs it in a confined child. ``gpu`` (a CUDA_VISIBLE_DEVICES name) pins
    it to one GPU of several; it takes effect because CUDA starts only in this fresh child.
    """
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    candidate = job["candidate"]
    record = _new_record(job)
    started = time.monotonic()
    try:
        result = pytorch_quick_evaluator(candidate["script"], candidate["class_name"], config)
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
        value = named_metric_value(result, metric)
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
            error=None if ok else (result.get("error") or f"status {status}, no {metric} in the result"),
        )
        if result.get("timings"):
            record["timings"] = dict(result["timings"])
    return record


def evaluate_confined(job: EvaluationJob, time_left_s: float, *, threads: int | None = None,
                      gpu: str | None = None) -> EvaluationRecord:
    """:func:`evaluate_job` in a confined child: no network, writes only in the workspace, limits.

    ``threads`` is the child's torch threads (default: this process's), ``gpu`` the one GPU it may use
    (default: all). A candidate that crashes or hangs the child gets a failed record; a transient
    error inside it is raised again here (the node's RetryPolicy retries it).
    """
    arguments = {"job": job, "config": eval_config(job, time_left_s), "metric": task_of(job).metric, "gpu": gpu}
    started, started_at = time.monotonic(), time.time()
    result = run_in_sandbox(evaluate_job, arguments, profile="evaluation",
                            timeout_s=time_left_s + EVALUATION_SLACK_S, warm=[WARM_TRAINING],
                            threads=threads or torch.get_num_threads())
    if result.ok:
        record = result.value
        # when (epoch seconds) and how long, as the graph saw it: result.json's time_use joins the intervals
        record["timings"] = {**record.get("timings", {}), "started_at": round(started_at, 3),
                             "wall_s": round(time.monotonic() - started, 4)}
        return record
    _raise_transient(result.error_type, result.error)
    if result.error_type == "SandboxUnavailable":
        raise ToolError(result.error or "the sandbox is unavailable")
    record = _new_record(job)
    record.update(error=f"{result.error_type}: {result.error}"[:500], duration_s=round(result.duration_s, 3),
                  traceback=result.traceback or result.output[-2000:])
    return record


def _raise_transient(error_type: str | None, message: str | None) -> None:
    transient = {error.__name__: error for error in TRANSIENT_ERRORS}
    if error_type in transient:
        raise transient[error_type](message)


def train_confined(script: str, class_name: str, config: FullTrainConfig, *, experiment_name: str,
                   log_base_dir: str) -> FullTrainAnswer:
    """pytorch_full_trainer in a confined child (the ``training`` profile); its result, or a ToolError.

    The network is on only for W&B's online mode (it uploads as it goes).
    """
    budget_s = float(config.get("time_budget_s") or 24 * 3600)
    result = run_in_sandbox(pytorch_full_trainer, {"model_script_path": script, "model_class_name": class_name,
                                                   "trainer_config": dict(config), "experiment_name": experiment_name,
                                                   "log_base_dir": log_base_dir},
                            profile="training", timeout_s=budget_s + TRAINING_SLACK_S,
                            network=(config.get("wandb") or {}).get("mode") == "online", warm=[WARM_TRAINING],
                            threads=torch.get_num_threads())
    if result.ok:
        return result.value
    _raise_transient(result.error_type, result.error)
    raise result.to_error("full training")


def run_evaluation(job: EvaluationJob, time_left_s: float,
                   evaluate: Callable[[EvaluationJob, float], EvaluationRecord] = evaluate_confined) -> EvaluationRecord:
    """Evaluate one job with ``evaluate`` (a confined child here, by default, or an executor's worker);
    returns the evaluation record, saved, announced and logged (never raises for the candidate's faults)."""
    record = compute_evaluation(job, time_left_s, evaluate)
    log_evaluation(job, record)
    return record


def compute_evaluation(job: EvaluationJob, time_left_s: float,
                       evaluate: Callable[[EvaluationJob, float], EvaluationRecord]) -> EvaluationRecord:
    """The evaluation announced as started, run, saved next to its candidate and announced as done (or a
    skipped record when no time is left): what holds a worker slot. Logging it to W&B
    (:func:`~torchscout.graphs.tracking.log_evaluation`, ~1 s the first time in a process) needs none."""
    key = job["key"]
    if time_left_s < MIN_EVAL_SECONDS:
        record = _new_record(job)
        record.update(status="skipped", error="the run's time budget was used up before this evaluation")
        emit(job["run_dir"], "skipped", key=key, candidate_id=job["candidate_id"], reason=record["error"])
        return record
    emit(job["run_dir"], "started", key=key, kind=job["kind"], candidate_id=job["candidate_id"])
    record = evaluate(job, time_left_s)
    _save(job, record)
    if record["status"] == COMPLETED:
        emit(job["run_dir"], "evaluated", key=key, kind=job["kind"], candidate_id=job["candidate_id"],
             metric=record["metric"], metric_name=task_of(job).metric, duration_s=record["duration_s"])
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

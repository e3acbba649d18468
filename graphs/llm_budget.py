"""LLM calls inside the research budget: a ledger per run, limits per step, fallbacks as events.

- **The ledger** ``runs/<name>/llm_calls.jsonl``: one line per model call or cache hit (purpose,
  outcome, requests, prompt/completion tokens, seconds, the step and round), appended by the step
  that made it -- like ``events.jsonl``, it is the ground truth across kills, resumes and forks.
- **Limits per step**: :func:`llm_step` (opened by ``common.timed`` around every node) activates a
  :class:`~torchscout.tools.codegen.llm_usage.UsageScope` whose deadline is the step's share of
  the time budget (:func:`torchscout.graphs.budget.llm_time_left_s`) and whose call and token
  limits are the task's ``budget.max_llm_calls`` / ``max_llm_tokens`` minus what the ledger holds.
  A call that would break a limit is refused, and its caller falls back to the builtin way.
- **Visible fallbacks**: every notice (an LLM plan replaced by the builtin planner, an analysis
  dropped) becomes an ``llm`` event, printed as a console line.
- **Accounting**: :func:`llm_usage` sums the ledger per purpose (calls, tokens, seconds, and cost
  when prices are set); ``analyze`` puts it in the state for the report, and :func:`llm_result`
  is the ``llm`` block of ``result.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypedDict

from langgraph.runtime import Runtime

from torchscout.agent.task import Task, TaskError, load_task
from torchscout.graphs import budget
from torchscout.graphs.budget import RunContext
from torchscout.graphs.events import emit
from torchscout.graphs.state import ResearchState
from torchscout.settings import get_settings
from torchscout.tools.codegen.llm_usage import (
    CallRecord,
    CallRecordJSON,
    PurposeUsage,
    UsageScope,
    usage_by_purpose,
    usage_scope,
)
from torchscout.tools.workspace import resolve

logger = logging.getLogger(__name__)

LEDGER_FILE = "llm_calls.jsonl"
# steps of the final phase: their LLM calls may use the time kept back for it
FINAL_STEPS = {"optimizers", "confirm", "select", "approve_full_train", "full_train", "analyze"}
# steps whose LLM answers are optional (an analysis, tokenizer advice: the builtin rules stand in),
# and the share of the LLM time they may take, so a slow model cannot starve the evaluations
OPTIONAL_STEPS = {"inspect": 0.2, "tokenizer": 0.2}


def ledger_path(run_dir: str) -> Path:
    return resolve(run_dir, kind="run folder") / LEDGER_FILE


def read_ledger(run_dir: str) -> list[CallRecordJSON]:
    """Every recorded LLM call of the run, oldest first (a torn last line is skipped)."""
    path = ledger_path(run_dir)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("skipping a torn line in %s", path)
    return records


def _append(run_dir: str, record: CallRecord, step: str, round_index: int | None) -> None:
    path = ledger_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"time": round(time.time(), 3), "step": step, "round": round_index, **record.as_json()}
    # one write() of one line in append mode: parallel steps never interleave within a line
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def _task_of(node_input: Mapping[str, Any], run_dir: str) -> Task | None:
    """The run's task: in the state or an evaluation job, else the task.yaml ``setup`` wrote."""
    if isinstance(node_input.get("task"), dict):
        return Task.model_validate(node_input["task"])
    # a new run's input may name its task file; until setup has validated it, the step has no limits
    path = resolve(f"{run_dir}/task.yaml")
    try:
        return load_task(path) if path.is_file() else None
    except TaskError:
        return None


def _reserve(node_input: Mapping[str, Any], task: Task, step: str) -> float:
    """Seconds the step must leave for the final phase: none after the search; an evaluation job
    carries its own; a state has the measured estimate; else the prior share."""
    if step in FINAL_STEPS:
        return 0.0
    if "reserve_s" in node_input:
        return float(node_input["reserve_s"])
    if isinstance(node_input.get("task"), dict) and "candidates" in node_input:
        return budget.reserve_s(node_input)  # type: ignore[arg-type] - a research state
    return budget.prior_reserve_s(task)


def _scope(node_input: Mapping[str, Any], runtime: Runtime[RunContext] | None, step: str) -> UsageScope | None:
    run_dir = node_input.get("run_dir")
    if not run_dir:
        return None
    task = _task_of(node_input, run_dir)
    context = budget.clock_of(runtime)
    used = context.used_s() if context is not None else float(node_input.get("elapsed_s", 0.0))
    round_index = node_input.get("round") or (node_input.get("candidate") or {}).get("round")
    if step == "propose":  # it plans the next round
        round_index = int(node_input.get("round") or 0) + 1
    scope = UsageScope(on_call=lambda record: _append(run_dir, record, step, round_index),
                       on_notice=lambda text: emit(run_dir, "llm", text=text, step=step))
    if task is None:
        return scope
    share = OPTIONAL_STEPS.get(step, 1.0)
    scope.deadline = time.monotonic() + share * budget.llm_time_left_s(task, used, _reserve(node_input, task, step))
    scope.max_calls, scope.max_tokens = task.budget.max_llm_calls, task.budget.max_llm_tokens
    if scope.max_calls is not None or scope.max_tokens is not None:
        made = [record for record in read_ledger(run_dir) if record.get("outcome") != "cached"]
        scope.calls_before = len(made)
        scope.tokens_before = sum(int(record.get("prompt_tokens", 0)) + int(record.get("completion_tokens", 0))
                                  for record in made)
    return scope


@contextmanager
def llm_step(node_input: Any, runtime: Runtime[RunContext] | None, step: str) -> Iterator[None]:
    """The LLM limits and sinks of one graph step (see the module docstring)."""
    scope = _scope(node_input if isinstance(node_input, dict) else {}, runtime, step)
    if scope is None:
        yield
        return
    with usage_scope(scope):
        yield


def llm_usage(run_dir: str) -> dict[str, PurposeUsage]:
    """The run's LLM use per purpose, from its ledger (with costs when prices are configured)."""
    settings = get_settings()
    return usage_by_purpose(read_ledger(run_dir), settings.llm_prompt_price, settings.llm_completion_price)


class LLMResult(TypedDict):
    """The ``llm`` block of ``runs/<name>/result.json``."""

    model: str | None
    calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cost_usd: float | None
    by_purpose: dict[str, PurposeUsage]
    rounds_planned: dict[str, Literal["llm", "builtin fallback", "builtin"]]


def llm_result(state: ResearchState) -> LLMResult:
    """The run's LLM accounting for ``result.json``: totals, per purpose, and who planned each round."""
    usage = state.get("llm_usage") or llm_usage(state["run_dir"])
    costs = [entry["cost_usd"] for entry in usage.values() if entry.get("cost_usd") is not None]
    models = sorted({str(record.get("model")) for record in read_ledger(state["run_dir"])})
    return LLMResult(
        model=", ".join(models) or None,
        calls=sum(entry["calls"] for entry in usage.values()),
        prompt_tokens=sum(entry["prompt_tokens"] for entry in usage.values()),
        completion_tokens=sum(entry["completion_tokens"] for entry in usage.values()),
        seconds=round(sum(entry["seconds"] for entry in usage.values()), 3),
        cost_usd=round(sum(costs), 6) if costs else None,
        by_purpose=usage,
        rounds_planned=rounds_planned(state),
    )


def rounds_planned(state: ResearchState) -> dict[str, Literal["llm", "builtin fallback", "builtin"]]:
    """Round -> who proposed its candidates: the LLM, the builtin planner standing in for it, or builtin."""
    planned: dict[str, Literal["llm", "builtin fallback", "builtin"]] = {}
    for candidate in (state.get("candidates") or {}).values():
        planner = str(candidate.get("planner") or "builtin")
        planned[str(candidate.get("round"))] = ("llm" if planner == "llm" else
                                                "builtin fallback" if "fallback" in planner else "builtin")
    return dict(sorted(planned.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0))

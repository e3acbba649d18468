"""``runs/<name>/result.json``: the run's outcome as machine-readable data, written with the report.

One writer assembles the file from sections, each a function of the checkpointed state, so a run
and ``torchscout report`` give the same file and a new section is one line in :data:`SECTIONS`:

- ``task``: the validated task;
- ``winner``: ``id``, ``blueprint`` (the assembler's model_config), ``design`` (the search-space
  point), ``training``, ``params``, ``flops``;
- ``validation``: the winner's loss and metrics on the validation split (from its full training's
  best epoch, else from the search evaluation that chose it); ``confirmation``: its seed statistics;
- ``test``: the winner evaluated once on the dataset's test split after full training (empty when
  the dataset has none or full training did not run); never used to choose anything;
- ``baselines`` / ``baselines_test``: each classical baseline's scores on validation / test;
- ``stopped_by``: what ended the search (target, max_rounds, patience, time, round_cap);
- ``budget_used_s`` and ``evaluations`` (how many evaluations the run recorded);
- ``time_use``: the share of the wall time in training and evaluation vs orchestration (``agent/time_use.py``);
- ``llm``: the run's LLM calls, tokens, seconds and cost per purpose (added by the graph).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from typing_extensions import TypedDict

from torchscout.agent.records import (
    Configuration,
    EvaluationRecord,
    ResearchState,
    SeedStats,
    evaluations_of,
)
from torchscout.agent.time_use import time_use_section
from torchscout.agent.training_configs import TrainingRecord
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, resolve

RESULT_FILE = "result.json"
Scores = dict[str, float]  # metric name (loss, accuracy, r2, ...) -> value


class WinnerSummary(TypedDict):
    id: str
    blueprint: dict[str, Any]            # the assembler's model_config
    design: dict[str, Any]               # the search-space point it came from (builtin planner)
    training: TrainingRecord
    params: int | None
    flops: int | None


def _winner(state: ResearchState) -> Configuration | None:
    return (state.get("final") or {}).get("winner")


def _numbers(values: Mapping[str, object] | None, prefix: str = "") -> Scores:
    """The numeric entries of ``values`` whose key starts with ``prefix``, without the prefix."""
    return {key.removeprefix(prefix): float(value) for key, value in (values or {}).items()
            if key.startswith(prefix) and isinstance(value, int | float) and not isinstance(value, bool)}


def winner_section(state: ResearchState) -> WinnerSummary | None:
    winner = _winner(state)
    if not winner:
        return None
    candidate = (state.get("candidates") or {}).get(winner["candidate_id"], {})
    return WinnerSummary(id=winner["candidate_id"], blueprint=candidate.get("model_config") or {},
                         design=candidate.get("blueprint") or {}, training=winner["training"],
                         params=candidate.get("params"), flops=candidate.get("flops"))


def _search_scores(evaluation: EvaluationRecord | None) -> Scores:
    if evaluation is None:
        return {}
    scores = dict(evaluation.get("metrics") or {})
    if evaluation.get("val_loss") is not None:
        scores["loss"] = float(evaluation["val_loss"])
    return scores


def validation_section(state: ResearchState) -> Scores:
    """The winner's validation scores: its full training's best epoch, else the evaluation that chose it."""
    winner = _winner(state)
    if not winner:
        return {}
    training = state.get("full_training") or {}
    best = training.get("best_metric") or {}
    epochs = [entry for entry in training.get("history") or [] if entry.get("epoch") == best.get("epoch")]
    if epochs:
        return _numbers(epochs[0], "val_")
    return _search_scores(evaluations_of(state).get(winner["search_key"]))


def test_section(state: ResearchState) -> Scores:
    final_eval = (state.get("full_training") or {}).get("final_eval") or {}
    return _numbers(final_eval) if final_eval.get("split") == "test" else {}


def confirmation_section(state: ResearchState) -> SeedStats | None:
    winner = _winner(state)
    return winner.get("stats") if winner else None


def baselines_section(state: ResearchState, split: str = "validation") -> dict[str, Scores]:
    return {record["name"]: dict(record.get(split) or {}) for record in state.get("baselines") or []
            if record.get(split)}


# section name -> its value, computed from the state; sections appear in this order
SECTIONS: list[tuple[str, Callable[[ResearchState], object]]] = [
    ("task", lambda state: state["task"]),
    ("winner", winner_section),
    ("validation", validation_section),
    ("confirmation", confirmation_section),
    ("test", test_section),
    ("baselines", baselines_section),
    ("baselines_test", lambda state: baselines_section(state, "test")),
    ("stopped_by", lambda state: state.get("stopped_by")),
    ("budget_used_s", lambda state: round(float(state.get("elapsed_s") or 0.0), 3)),
    ("evaluations", lambda state: len(state.get("evaluations") or {})),
    ("time_use", time_use_section),
]


def build_result(state: ResearchState, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """Every section of result.json for ``state``, then the ``extra`` sections the graph adds (``llm``)."""
    return {**{name: section(state) for name, section in SECTIONS}, **(extra or {})}


def write_result(state: ResearchState, extra: Mapping[str, object] | None = None) -> str:
    """Write runs/<name>/result.json; returns its workspace-relative path."""
    path = resolve(state["run_dir"], kind="run folder") / RESULT_FILE
    atomic_write_text(path, json.dumps(build_result(state, extra), indent=2, default=str) + "\n")
    return relative_to_workspace(path)

"""Routers: pure functions of the state that pick the next node or fan out evaluation jobs with Send.

Each job carries what its task needs (the task, the candidate, the tokenizers, the budget), since
a node started by ``Send`` sees only its payload. Jobs whose evaluation is already recorded are
not sent again, so a router re-run after a resume or a fork never repeats finished work.
"""

from __future__ import annotations

from langgraph.types import Send

from torchscout.agent.records import EvaluationKind, TrainingRecord
from torchscout.agent.task import Task
from torchscout.graphs import approval, budget
from torchscout.graphs.common import round_candidates
from torchscout.graphs.state import AssembleJob, EvaluationJob, ResearchState, task_of


def _job(state: ResearchState, task: Task, key: str, kind: EvaluationKind, candidate_id: str,
         training: TrainingRecord, seed: int, max_steps: int | None) -> EvaluationJob:
    return EvaluationJob(key=key, kind=kind, candidate_id=candidate_id, training=training, seed=seed,
                         epochs=task.budget.quick_epochs, max_steps=max_steps, task=state["task"],
                         run_dir=state["run_dir"], tokenizers=state.get("tokenizers") or {},
                         candidate=state["candidates"][candidate_id], reserve_s=budget.reserve_s(task),
                         time_left_s=budget.search_time_left_s(state, None))


def _pending(state: ResearchState, jobs: list[EvaluationJob], node: str) -> list[Send]:
    done = state.get("evaluations") or {}
    return [Send(node, job) for job in jobs if job["key"] not in done]


def after_setup(state: ResearchState) -> str:
    return "tokenizer" if task_of(state).input_dtype == "int64" else "propose"


def after_propose(state: ResearchState) -> list[Send] | str:
    if state.get("phase") != "search":
        return "optimizers"
    sends = [Send("assemble", AssembleJob(candidate=candidate, run_dir=state["run_dir"]))
             for candidate in round_candidates(state) if candidate.get("status") == "proposed"]
    return sends or "inspect"


def after_inspect(state: ResearchState) -> list[Send] | str:
    task = task_of(state)
    jobs = [_job(state, task, f"{item['id']}/screen", "screen", item["id"], item["training"], task.seed,
                 task.budget.screen_steps)
            for item in round_candidates(state) if item.get("status") == "inspected"]
    return _pending(state, jobs, "quick_eval") or "halve"


def after_halve(state: ResearchState) -> list[Send] | str:
    if state.get("rung") != 1:
        return "refine"
    task = task_of(state)
    jobs = [_job(state, task, f"{item['id']}/quick", "quick", item["id"], item["training"], task.seed,
                 task.budget.quick_max_steps)
            for item in round_candidates(state) if item.get("promoted")]
    return _pending(state, jobs, "quick_eval") or "refine"


def after_refine(state: ResearchState) -> str:
    return "propose" if state.get("phase") == "search" else "optimizers"


def after_optimizers(state: ResearchState) -> list[Send] | str:
    task = task_of(state)
    jobs = [_job(state, task, key, "optimizer", item["candidate_id"], item["training"], task.seed,
                 task.budget.quick_max_steps)
            for key, item in (state.get("optimizer_plan") or {}).items()]
    return _pending(state, jobs, "optimizer_eval") or "confirm"


def after_confirm(state: ResearchState) -> list[Send] | str:
    task = task_of(state)
    jobs = [_job(state, task, key, "confirm", item["candidate_id"], item["training"], item["seed"],
                 task.budget.quick_max_steps)
            for key, item in (state.get("confirm_plan") or {}).items()]
    return _pending(state, jobs, "confirm_eval") or "select"


def after_select(state: ResearchState) -> str:
    if (state.get("final") or {}).get("full_train") != "run":
        return "analyze"
    return "approve_full_train" if approval.is_gated(state, "full_train") else "full_train"


def after_full_train_gate(state: ResearchState) -> str:
    return "full_train" if approval.recorded_answer(state, "full_train") == approval.YES else "analyze"

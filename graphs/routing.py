"""Routers: pure functions of the state that pick the next node or fan out evaluation jobs with Send.

Each job carries what its task needs (the task, the candidate, the tokenizers, the budget), since
a node started by ``Send`` sees only its payload. Jobs whose evaluation is already recorded are
not sent again, so a router re-run after a resume or a fork never repeats finished work.
"""

from __future__ import annotations

from langgraph.types import Send

from torchscout.agent.records import CandidateRecord, EvaluationKind, TrainingRecord
from torchscout.agent.task import Task
from torchscout.graphs import approval, budget, fidelity
from torchscout.graphs.common import round_candidates
from torchscout.graphs.state import AssembleJob, EvaluationJob, ResearchState, task_of


def _job(state: ResearchState, task: Task, key: str, kind: EvaluationKind, candidate_id: str,
         training: TrainingRecord, seed: int, rung: int, reserve_s: float) -> EvaluationJob:
    return EvaluationJob(key=key, kind=kind, candidate_id=candidate_id, training=training, seed=seed,
                         epochs=fidelity.rung_epochs(task, rung), max_steps=fidelity.rung_max_steps(task, rung),
                         task=state["task"], run_dir=state["run_dir"], tokenizers=state.get("tokenizers") or {},
                         candidate=state["candidates"][candidate_id], reserve_s=reserve_s,
                         time_left_s=budget.budget_s(task) - reserve_s - budget.used_s(state, None), rung=rung)


def _rung_jobs(state: ResearchState, rung: int, candidates: list[CandidateRecord]) -> list[EvaluationJob]:
    task, reserve_s = task_of(state), budget.reserve_s(state)
    return [_job(state, task, fidelity.evaluation_key(item["id"], rung), fidelity.rung_kind(rung), item["id"],
                 item["training"], task.seed, rung, reserve_s) for item in candidates]


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
    inspected = [item for item in round_candidates(state) if item.get("status") == "inspected"]
    return _pending(state, _rung_jobs(state, fidelity.SCREEN, inspected), "quick_eval") or "halve"


def promoted_to(candidate: CandidateRecord, rung: int) -> bool:
    """Whether halve promoted the candidate to ``rung`` (older versions marked rung 1 ``promoted``)."""
    deepest = candidate.get("promoted_rung", fidelity.QUICK if candidate.get("promoted") else fidelity.SCREEN)
    return rung >= fidelity.QUICK and deepest >= rung


def after_halve(state: ResearchState) -> list[Send] | str:
    """The promoted candidates' evaluations at the current rung; ``halve`` again once they are all
    recorded (a router re-run after a resume), ``refine`` when the round's halving is done."""
    rung = state.get("rung", fidelity.SCREEN)
    if state.get("halving_done") or rung == fidelity.SCREEN:
        return "refine"
    # rung 1 is the round's own; a longer rung may promote candidates of earlier rounds too
    pool = round_candidates(state) if rung == fidelity.QUICK else list((state.get("candidates") or {}).values())
    promoted = sorted((item for item in pool if promoted_to(item, rung)), key=lambda item: item["id"])
    if not promoted:
        return "refine"
    return _pending(state, _rung_jobs(state, rung, promoted), "quick_eval") or "halve"


def after_refine(state: ResearchState) -> str:
    return "propose" if state.get("phase") == "search" else "optimizers"


def after_optimizers(state: ResearchState) -> list[Send] | str:
    task, reserve_s = task_of(state), budget.reserve_s(state, "optimizer")
    jobs = [_job(state, task, key, "optimizer", item["candidate_id"], item["training"], task.seed,
                 fidelity.rung_of(item), reserve_s)
            for key, item in (state.get("optimizer_plan") or {}).items()]
    return _pending(state, jobs, "optimizer_eval") or "confirm"


def after_confirm(state: ResearchState) -> list[Send] | str:
    task, reserve_s = task_of(state), budget.reserve_s(state, "confirm")
    jobs = [_job(state, task, key, "confirm", item["candidate_id"], item["training"], item["seed"],
                 fidelity.rung_of(item), reserve_s)
            for key, item in (state.get("confirm_plan") or {}).items()]
    return _pending(state, jobs, "confirm_eval") or "select"


def after_select(state: ResearchState) -> str:
    if (state.get("final") or {}).get("full_train") != "run":
        return "analyze"
    return "approve_full_train" if approval.is_gated(state, "full_train") else "full_train"


def after_full_train_gate(state: ResearchState) -> str:
    return "full_train" if approval.recorded_answer(state, "full_train") == approval.YES else "analyze"

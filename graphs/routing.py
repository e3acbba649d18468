"""Routers: functions of the state that pick the next node or fan out evaluation jobs with Send (pure,
but for telling the speculator which search step starts: see :func:`_search_step`).

Each job carries what its task needs (the task, the candidate, the tokenizers, the budget), since
a node started by ``Send`` sees only its payload. Jobs whose evaluation is already recorded are
not sent again, so a router re-run after a resume or a fork never repeats finished work.
"""

from __future__ import annotations

from langgraph.types import Send

from torchscout.agent.records import CandidateRecord
from torchscout.graphs import approval, budget, fidelity
from torchscout.graphs.common import round_candidates
from torchscout.graphs.executor import executor_for
from torchscout.graphs.jobs import evaluation_job, rung_jobs
from torchscout.graphs.state import AssembleJob, EvaluationJob, ResearchState, task_of


def _pending(state: ResearchState, jobs: list[EvaluationJob], node: str) -> list[Send]:
    done = state.get("evaluations") or {}
    return [Send(node, job) for job in jobs if job["key"] not in done]


def _search_step(state: ResearchState, jobs: list[EvaluationJob]) -> list[Send]:
    """The pending jobs of a search step (a screen or a rung), announced to the speculator first: the
    one side effect of a router, so that idle slots can run what the step's results will ask for next."""
    sends = _pending(state, jobs, "quick_eval")
    speculator = executor_for(task_of(state)).speculator
    if sends and speculator is not None:
        speculator.begin_step(state, [send.arg for send in sends])
    return sends


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
    return _search_step(state, rung_jobs(state, fidelity.SCREEN, inspected)) or "halve"


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
    return _search_step(state, rung_jobs(state, rung, promoted)) or "halve"


def after_refine(state: ResearchState) -> str:
    return "propose" if state.get("phase") == "search" else "optimizers"


def after_optimizers(state: ResearchState) -> list[Send] | str:
    task, reserve_s = task_of(state), budget.reserve_s(state, "optimizer")
    jobs = [evaluation_job(state, task, key, "optimizer", item["candidate_id"], item["training"], task.seed,
                 fidelity.rung_of(item), reserve_s)
            for key, item in (state.get("optimizer_plan") or {}).items()]
    return _pending(state, jobs, "optimizer_eval") or "confirm"


def after_confirm(state: ResearchState) -> list[Send] | str:
    task, reserve_s = task_of(state), budget.reserve_s(state, "confirm")
    jobs = [evaluation_job(state, task, key, "confirm", item["candidate_id"], item["training"], item["seed"],
                 fidelity.rung_of(item), reserve_s)
            for key, item in (state.get("confirm_plan") or {}).items()]
    return _pending(state, jobs, "confirm_eval") or "select"


def after_select(state: ResearchState) -> str:
    if (state.get("final") or {}).get("full_train") != "run":
        return "analyze"
    return "approve_full_train" if approval.is_gated(state, "full_train") else "full_train"


def after_full_train_gate(state: ResearchState) -> str:
    return "full_train" if approval.recorded_answer(state, "full_train") == approval.YES else "analyze"

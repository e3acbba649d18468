"""Evaluation jobs: what a ``Send`` task (or a speculative run) needs to evaluate a candidate at a rung,
and what identifies the computation (:func:`fingerprint`) and sizes it (:func:`job_cost`)."""

from __future__ import annotations

import json

from torchscout.agent.records import CandidateRecord, EvaluationKind, TrainingRecord
from torchscout.agent.task import Task
from torchscout.graphs import budget, fidelity
from torchscout.graphs.state import EvaluationJob, ResearchState, task_of


def evaluation_job(state: ResearchState, task: Task, key: str, kind: EvaluationKind, candidate_id: str,
                   training: TrainingRecord, seed: int, rung: int, reserve_s: float) -> EvaluationJob:
    return EvaluationJob(key=key, kind=kind, candidate_id=candidate_id, training=training, seed=seed,
                         epochs=fidelity.rung_epochs(task, rung), max_steps=fidelity.rung_max_steps(task, rung),
                         task=state["task"], run_dir=state["run_dir"], tokenizers=state.get("tokenizers") or {},
                         candidate=state["candidates"][candidate_id], reserve_s=reserve_s,
                         time_left_s=budget.budget_s(task) - reserve_s - budget.used_s(state, None), rung=rung)


def rung_jobs(state: ResearchState, rung: int, candidates: list[CandidateRecord]) -> list[EvaluationJob]:
    """The evaluations of ``candidates`` at ``rung``, the costliest first (see :func:`job_cost`)."""
    task, reserve_s = task_of(state), budget.reserve_s(state)
    jobs = [evaluation_job(state, task, fidelity.evaluation_key(item["id"], rung), fidelity.rung_kind(rung),
                           item["id"], item["training"], task.seed, rung, reserve_s) for item in candidates]
    return sorted(jobs, key=job_cost, reverse=True)


def job_cost(job: EvaluationJob) -> float:
    """A relative size of the job among its step's (same epochs or steps): the candidate's FLOPs per
    sample, else its parameters. The workers' slots start a step's costliest jobs first, so that its
    small ones fill the gaps at the end instead of a large one starting last (longest job first)."""
    candidate = job.get("candidate") or {}
    return float(candidate.get("flops") or candidate.get("params") or 0)


def fingerprint(job: EvaluationJob) -> str:
    """What fixes an evaluation's result (with the machine's thread count): the run, the candidate,
    its training, seed, epochs and step cap. Two jobs with the same fingerprint compute the same thing."""
    return json.dumps({"run": job["run_dir"], "key": job["key"], "candidate": job["candidate_id"],
                       "kind": job["kind"], "training": job["training"], "seed": job["seed"],
                       "epochs": job["epochs"], "max_steps": job.get("max_steps"),
                       "rung": fidelity.rung_of(job)}, sort_keys=True, default=str)

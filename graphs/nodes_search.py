"""Search-phase nodes: setup, tokenizer, propose, assemble, inspect, evaluate (``halve`` and ``refine``,
which end a round, are in :mod:`torchscout.graphs.nodes_rounds`).

Each node does one step of PRD section 8 through the same tool functions an outside agent
calls, and returns a partial state update. Nodes that run once per candidate (``assemble``,
the evaluations) receive a job payload through ``Send`` and touch only that candidate's record.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor

import yaml
from langgraph.config import get_config
from langgraph.runtime import Runtime

from torchscout.agent.planners import get_planner
from torchscout.agent.records import (
    CandidateRecord,
    DecisionRecord,
    EvaluationRecord,
    FailureRecord,
    FailureStage,
)
from torchscout.agent.task import TaskError, load_task
from torchscout.agent.training_configs import TrainingRecord
from torchscout.graphs import budget, fidelity
from torchscout.graphs.budget import RunContext
from torchscout.graphs.common import (
    context_of,
    decision,
    planning_context,
    round_candidates,
    timed,
)
from torchscout.graphs.evaluate import TRANSIENT_ERRORS, compute_evaluation
from torchscout.graphs.events import emit
from torchscout.graphs.executor import executor_for
from torchscout.graphs.jobs import job_cost
from torchscout.graphs.preflight import check_task_data
from torchscout.graphs.run_index import claim_run
from torchscout.graphs.state import AssembleJob, EvaluationJob, ResearchState, initial_state, task_of
from torchscout.graphs.text_data import train_tokenizers
from torchscout.graphs.tracking import log_evaluation
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.modeling.summary import pytorch_model_summary, with_llm_analysis
from torchscout.tools.modeling.types import SummaryAnswer
from torchscout.tools.scaffold.project import create_pytorch_project_scaffold
from torchscout.tools.training.status import COMPLETED
from torchscout.tools.workspace import atomic_write_text, resolve

# What a candidate's own code can throw while it is built or measured (recorded, never fatal).
CANDIDATE_ERRORS = (ToolError, UserCodeError, ValueError, TypeError, RuntimeError, KeyError, IndexError)


def _failure(candidate_id: str, stage: FailureStage, exc: BaseException, run_dir: str) -> FailureRecord:
    message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    emit(run_dir, "failed", candidate_id=candidate_id, stage=stage, error=message)
    return FailureRecord(candidate_id=candidate_id, stage=stage, error=message,
                         traceback=getattr(exc, "traceback_tail", "") or traceback_tail(exc, max_lines=8))


@timed
def setup(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Validate the task, claim the run's name, create runs/<name>/ with the task and a scaffolded project.

    The run's input is only ``{"task", "run_name"}`` (:class:`~torchscout.graphs.state.ResearchInput`;
    the task may be a YAML path): this node builds the rest of the state, so a run started through a
    LangGraph server is the same as one started by the CLI.
    """
    run_name = state["run_name"]
    if state.get("candidates") or state.get("evaluations") or state.get("report_path"):
        # a new input on a thread that already ran: its records would mix with the new run's
        raise SetupRefused(f"this thread already holds a run ({state.get('run_dir')}); start each new run in a "
                           "new thread, or fork this one with `torchscout replay`")
    try:
        task = load_task(state["task"]) if isinstance(state["task"], str) else task_of(state)
        try:
            load_task(task, name=run_name)  # the run name becomes a folder name: same rules as task names
        except TaskError as exc:
            raise ToolError(f"invalid run name {run_name!r}: use letters, digits, '_', '-' or '.' (max 64)") from exc
        check_task_data(task)  # also when the run was started without the driver (e.g. the LangGraph server)
        claim_run(run_name, current_thread(run_name))
    except ToolError as exc:
        raise SetupRefused(str(exc)) from exc
    built = initial_state(task.model_dump(), run_name)
    run_dir = state.get("run_dir") or built["run_dir"]  # a fork made before setup keeps its own folder
    folder = resolve(run_dir, kind="run folder")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "task.yaml", yaml.safe_dump(task.model_dump(), sort_keys=False))
    project_dir = f"{run_dir}/project"
    if not resolve(project_dir).exists():  # a re-run of this node after a crash keeps the project
        create_pytorch_project_scaffold("project", base_dir=run_dir)
    emit(run_dir, "setup", run=run_name, project=project_dir, planner=task.planner)
    rounds = (f"{task.budget.max_rounds} rounds" if task.budget.max_rounds is not None else
              f"rounds until the time or patience ({task.budget.patience} without improvement) ends the search")
    plan = executor_for(task).plan
    text = (f"Run {run_name}: {task.goal or task.name} ({task.dataset}, {task.modality} inputs, "
            f"{task.metric} {task.mode}); budget {rounds} x {task.budget.candidates_per_round} candidates, "
            f"{task.budget.max_minutes} min; {plan.workers} evaluation(s) at once ({task.executor}, "
            f"{plan.threads} thread(s) each).")
    return {**built, "run_dir": run_dir, "project_dir": project_dir, "decisions": [decision("setup", text)]}


class SetupRefused(ToolError, ValueError):
    """The run cannot start (its task, data or name is not usable); the message says what to change.
    A ValueError too, so a LangGraph server passes the message to its client instead of hiding it."""


def current_thread(default: str) -> str:
    """The checkpoint thread this run is written to (a server's UUID, or the run name for the CLI)."""
    try:
        return str(get_config().get("configurable", {}).get("thread_id") or default)
    except RuntimeError:  # called outside a graph run
        return default


@timed
def tokenizer(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Text tasks: train one tokenizer per searched vocabulary size on the training texts."""
    task = task_of(state)
    trained = train_tokenizers(task, state["run_name"], state["run_dir"])
    sizes = ", ".join(f"{entry['requested']}->{entry['vocab_size']}" for entry in trained.values())
    emit(state["run_dir"], "tokenizers", vocab_sizes=sorted(int(size) for size in trained))
    return {"tokenizers": trained,
            "decisions": [decision("tokenizer", f"Trained {len(trained)} tokenizers (requested->actual "
                                                f"vocabulary: {sizes}); vocabulary size is a searched axis.")]}


@timed
def propose(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Ask the planner for this round's candidates."""
    task = task_of(state)
    round_index = state.get("round", 0) + 1
    if budget.search_time_left_s(state, context_of(runtime)) <= 0:
        text = "Search stopped before proposing: the search share of the time budget is used up."
        emit(state["run_dir"], "decision", text=text)
        return {"phase": "optimizer", "stop_reason": "time budget", "stopped_by": "time",
                "decisions": [decision("propose", text)]}
    planner = get_planner(task.planner)
    proposal = planner.propose(planning_context(state, round_index))
    run_dir = state["run_dir"]
    atomic_write_text(resolve(f"{run_dir}/proposals/round_{round_index}.json"),
                      proposal.model_dump_json(indent=2, by_alias=True))
    candidates: dict[str, CandidateRecord] = {}
    for index, spec in enumerate(proposal.candidates):
        candidate_id = f"r{round_index}c{index}"
        model_config = dict(spec.model_config_)
        model_config.setdefault("model_name", f"R{round_index}C{index}")
        candidates[candidate_id] = CandidateRecord(
            id=candidate_id, round=round_index, status="proposed", rationale=spec.rationale,
            parent=spec.parent, blueprint=spec.blueprint, model_config=model_config,
            training=TrainingRecord(**spec.training.model_dump()), vocab_size=spec.vocab_size,
            class_name=model_config["model_name"], planner=proposal.planner,
            script=f"{run_dir}/candidates/{candidate_id}/model.py",
        )
        emit(run_dir, "proposed", candidate_id=candidate_id, rationale=spec.rationale[:160])
    text = f"Round {round_index} ({proposal.mode}, {proposal.planner} planner): {proposal.notes}"
    return {"round": round_index, "rung": 0, "halving_done": False, "phase": "search", "candidates": candidates,
            "decisions": [decision("propose", text, round_index)]}


@timed
def assemble(job: AssembleJob, runtime: Runtime[RunContext]) -> ResearchState:
    """Write one candidate's model script with the assembler (a Send task per candidate)."""
    candidate, run_dir = job["candidate"], job["run_dir"]
    candidate_id = candidate["id"]
    try:
        result = pytorch_model_assembler(candidate["model_config"], candidate["script"])
    except TRANSIENT_ERRORS:
        raise
    except CANDIDATE_ERRORS as exc:
        failure = _failure(candidate_id, "assemble", exc, run_dir)
        return {"candidates": {candidate_id: {"status": "failed", "stage": "assemble", "error": failure["error"]}},
                "failures": [failure]}
    update = CandidateRecord(status="assembled", class_name=result.get("model_name", candidate["class_name"]),
                             backend=result.get("backend"), output_shape=result.get("output_shape"))
    return {"candidates": {candidate_id: update}}


@timed
def inspect(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Measure every assembled candidate of the round; reject those over max_params / max_flops."""
    task = task_of(state)
    run_dir = state["run_dir"]
    updates: dict[str, CandidateRecord] = {}
    failures: list[FailureRecord] = []
    decisions: list[DecisionRecord] = []
    assembled = [candidate for candidate in round_candidates(state) if candidate.get("status") == "assembled"]
    measurements = _measure_side_by_side(assembled, task.input_shape, task.input_dtype)
    for candidate in assembled:
        candidate_id = candidate["id"]
        try:  # measured first; the LLM's analysis only for a model that will be evaluated
            summary = measurements[candidate_id].result()
        except TRANSIENT_ERRORS:
            raise
        except CANDIDATE_ERRORS as exc:
            failures.append(_failure(candidate_id, "inspect", exc, run_dir))
            updates[candidate_id] = {"status": "failed", "stage": "inspect", "error": failures[-1]["error"]}
            continue
        params, flops = int(summary["total_params"]), int(summary.get("flops") or 0)
        reason = _over_budget(task.budget.max_params, task.budget.max_flops, params, flops)
        if not reason:
            summary = with_llm_analysis(summary)
        atomic_write_text(resolve(f"{run_dir}/candidates/{candidate_id}/summary.json"),
                          json.dumps(summary, indent=2, default=str))
        update = CandidateRecord(status="inspected", params=params, flops=flops,
                                 analysis=str(summary.get("analysis") or "")[:600])
        if reason:
            update.update(status="rejected", error=reason)
            emit(run_dir, "rejected", candidate_id=candidate_id, reason=reason)
            decisions.append(decision("inspect", f"Rejected {candidate_id}: {reason}", state["round"]))
        else:
            emit(run_dir, "assembled", candidate_id=candidate_id, params=params, flops=flops)
        updates[candidate_id] = update
    return {"candidates": updates, "failures": failures, "decisions": decisions}


def _measure_side_by_side(candidates: list[CandidateRecord], input_shape: list[int],
                          input_dtype: str) -> dict[str, Future[SummaryAnswer]]:
    """Each candidate's measurement (a sandbox job of its own) started at once, one thread per core:
    a round's measurements take the time of the slowest few instead of their sum. The caller reads
    each future in the round's order, so the events and decisions come in the same order as ever."""
    workers = max(1, min(len(candidates), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="measure") as pool:
        return {candidate["id"]: pool.submit(pytorch_model_summary, candidate["script"], candidate["class_name"],
                                             [1, *input_shape], input_dtype=input_dtype, detail="full",
                                             analysis="builtin")
                for candidate in candidates}


def _over_budget(max_params: int | None, max_flops: int | None, params: int, flops: int) -> str | None:
    if max_params is not None and params > max_params:
        return f"{params:,} parameters exceed max_params {max_params:,}"
    if max_flops is not None and flops > max_flops:
        return f"{flops:,} FLOPs per sample exceed max_flops {max_flops:,}"
    return None


@timed
def evaluate(job: EvaluationJob, runtime: Runtime[RunContext]) -> ResearchState:
    """Run one evaluation job (a Send task) in a free worker slot and record it; the candidate's fault
    never stops the run. LangGraph runs a step's tasks in parallel threads; the executor's slots let
    ``budget.workers`` of them evaluate at once, the costliest first (see :mod:`torchscout.graphs.executor`).
    A job that a speculation already computed (or is computing) takes that result instead."""
    executor = executor_for(task_of(job))
    speculator = executor.speculator
    speculation = speculator.claim(job) if speculator is not None else None
    record = None
    if speculation is not None:
        speculated = speculation.result_for(_time_left_s(job, runtime))
        if speculated is not None:
            left = _time_left_s(job, runtime)
            speculator.started(job, left)
            record = compute_evaluation(job, left, lambda item, seconds: speculated)
    if record is None:
        with executor.slots.held(priority=job_cost(job)) as slot:
            left = _time_left_s(job, runtime)  # read once a slot is free, not when the job was sent
            if speculator is not None:
                speculator.started(job, left)
            record = compute_evaluation(job, left, lambda item, seconds: executor.evaluate(item, seconds, slot))
    if speculator is not None:
        speculator.finished(job, record)
    log_evaluation(job, record)  # W&B holds no slot
    return _evaluation_update(job, EvaluationRecord(**{**record, "rung": fidelity.rung_of(job)}))


def _time_left_s(job: EvaluationJob, runtime: Runtime[RunContext]) -> float:
    context = context_of(runtime)
    if context is None:
        return job["time_left_s"]
    return budget.budget_s(task_of(job)) - job["reserve_s"] - context.used_s()


def _evaluation_update(job: EvaluationJob, record: EvaluationRecord) -> ResearchState:
    """The evaluation, what it tells about the candidate (the search's rungs only), and any failure."""
    update = ResearchState(evaluations={job["key"]: record})
    candidate_id, ok = job["candidate_id"], record["status"] == COMPLETED
    if job["kind"] == "screen":
        update["candidates"] = {candidate_id: CandidateRecord(
            screen_metric=record["metric"], status="screened" if ok else record["status"],
            error=None if ok else record.get("error"))}
    elif job["kind"] == "quick":
        update["candidates"] = {candidate_id: CandidateRecord(
            metric=record["metric"], duration_s=record.get("duration_s"),
            status="evaluated" if ok else record["status"], error=None if ok else record.get("error"))}
        if ok:
            update["candidates"][candidate_id].update(rung=fidelity.QUICK, rung_metric=record["metric"])
    elif job["kind"] == "rung" and ok:  # a longer rung: the quick result and the status stay as they were
        update["candidates"] = {candidate_id: CandidateRecord(rung=record["rung"], rung_metric=record["metric"])}
    if not ok and record["status"] != "skipped":
        update["failures"] = [FailureRecord(candidate_id=candidate_id, stage=job["kind"], key=job["key"],
                                            error=record.get("error"), traceback=record.get("traceback", ""))]
    return update

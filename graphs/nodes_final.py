"""Final-phase nodes: optimizer experiments, seed confirmation, selection, full training, analysis.

The optimizer trials and the seed confirmation run at the fidelity the search trusted most: the
deepest rung the best candidate completed (:func:`torchscout.graphs.training_cost.final_rung`),
or a shallower one when the time left does not fit them there. Full training trains the winner
for at most ``full_epochs`` with early stopping on the task metric, and evaluates the best epoch's
weights (restored from its checkpoint) at the end.
"""

from __future__ import annotations

import shutil
from typing import Any

import yaml
from langgraph.runtime import Runtime

from torchscout.agent import selection
from torchscout.agent.planners import get_planner
from torchscout.agent.records import (
    CandidateRecord,
    Configuration,
    ConfirmPlanEntry,
    DecisionRecord,
    FailureRecord,
    FinalRecord,
    FullTrainingRecord,
    OptimizerPlanEntry,
    TokenizerRecord,
    evaluations_of,
)
from torchscout.agent.report import write_report
from torchscout.agent.run_result import write_result
from torchscout.agent.task import Task
from torchscout.agent.training_configs import (
    EarlyStoppingSpec,
    FullTrainConfig,
    SchedulerSpec,
    TrainingRecord,
    WandbSettings,
)
from torchscout.graphs import approval, budget, fidelity
from torchscout.graphs.budget import RunContext
from torchscout.graphs.common import (
    context_of,
    decision,
    planning_context,
    timed,
)
from torchscout.graphs.evaluate import (
    TRANSIENT_ERRORS,
    dataset_params,
    objective,
    optimizer_spec,
    train_confined,
)
from torchscout.graphs.events import emit
from torchscout.graphs.fidelity import rung_epochs
from torchscout.graphs.llm_budget import llm_result, llm_usage
from torchscout.graphs.state import ResearchState, task_of
from torchscout.graphs.tracking import full_train_wandb, log_research_run
from torchscout.graphs.training_cost import Stage, final_rung, full_train_estimate, throughput
from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError, UserCodeError, traceback_tail
from torchscout.tools.optim.configurator import pytorch_optimizer_configurator
from torchscout.tools.training.status import COMPLETED, FAILED
from torchscout.tools.workspace import atomic_write_text, resolve

MIN_FULL_TRAIN_SECONDS = 5.0
FULL_TRAIN_EXPERIMENT = "best"  # runs/<name>/full_training/best/
SKIPPED_BY_USER = "skipped by the user at the approval gate (--approve no)"


def _note(state: ResearchState, node: str, text: str) -> DecisionRecord:
    emit(state["run_dir"], "decision", text=text)
    return decision(node, text)


@timed
def optimizers(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Plan optimizer experiments on the best architecture; configs go through the configurator."""
    task = task_of(state)
    best_id = state.get("best_id")
    count = task.budget.optimizer_trials
    context = context_of(runtime)
    if best_id is None or count == 0 or budget.search_time_left_s(state, context, "optimizer") <= 0:
        why = ("no architecture was evaluated" if best_id is None else
               "optimizer_trials is 0" if count == 0 else "the search time budget is used up")
        return {"phase": "confirm", "decisions": [_note(state, "optimizers", f"Optimizer experiments skipped: {why}.")]}
    proposal = get_planner(task.planner).propose_optimizers(planning_context(state, state["round"]), count)
    rung = _affordable_rung(state, final_rung(state), len(proposal.optimizer_trials), "optimizer", context)
    plan: dict[str, OptimizerPlanEntry] = {}
    failures: list[FailureRecord] = []
    for trial in proposal.optimizer_trials:
        config_name = f"{state['run_name']}-{trial.name}"
        details = {"type": trial.training.optimizer, "default_params": trial.training.optimizer_params()}
        if trial.training.param_groups:
            details["param_groups"] = trial.training.param_groups
        try:
            pytorch_optimizer_configurator(action="generate_config", config_name=config_name,
                                           optimizer_details=details)
        except ToolError as exc:
            failures.append(FailureRecord(candidate_id=best_id, stage="optimizer_config", key=trial.name,
                                          error=str(exc)[:500], traceback=""))
            emit(state["run_dir"], "failed", candidate_id=best_id, stage="optimizer_config", error=str(exc)[:200])
            continue
        training = TrainingRecord(**trial.training.model_dump(), config_name=config_name, trial=trial.name)
        plan[f"{best_id}/opt/{trial.name}"] = OptimizerPlanEntry(candidate_id=best_id, training=training,
                                                                 rationale=trial.rationale, rung=rung)
    text = (f"Optimizer experiments on {best_id} at rung {rung} ({rung_epochs(task, rung)} epochs): " + "; ".join(
        f"{item['training']['trial']} ({item['rationale']})" for item in plan.values()))
    return {"phase": "optimizer", "optimizer_plan": plan, "failures": failures,
            "decisions": [_note(state, "optimizers", text)]}


def _affordable_rung(state: ResearchState, deepest: int, runs: int, stage: Stage, context: RunContext | None) -> int:
    """The deepest rung, from ``deepest`` down to the quick one, at which ``runs`` evaluations of the best
    candidate fit in the time ``stage`` has left (the quick rung when none does: each evaluation then
    gets what is left, or is skipped)."""
    task, model = task_of(state), throughput(state, state.get("best_id"))
    left = budget.search_time_left_s(state, context, stage)
    for rung in range(deepest, fidelity.QUICK, -1):
        if model is not None and runs * model.run_s(rung_epochs(task, rung)) <= left:
            return rung
    return fidelity.QUICK


def _params_by_candidate(state: ResearchState) -> dict[str, int]:
    return {candidate_id: candidate["params"] for candidate_id, candidate in state.get("candidates", {}).items()
            if candidate.get("params") is not None}


@timed
def confirm(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Plan the re-evaluation of the top two configurations with several seeds each."""
    task, context = task_of(state), context_of(runtime)
    params = _params_by_candidate(state)
    # deepest rung first, the smaller model first among results tied at the top (as the search ranks)
    ranked = fidelity.ranked(fidelity.completed(evaluations_of(state).values(), {"quick", "rung", "optimizer"}),
                             task.maximize, params.get)
    top = selection.top_configurations(ranked, count=2)
    if not top:
        return {"phase": "final", "confirm_plan": {},
                "decisions": [_note(state, "confirm", "Nothing to confirm: no configuration evaluated successfully.")]}
    if budget.search_time_left_s(state, context, "confirm") <= 0:
        text = "Seed confirmation skipped: the search time budget is used up; the single-seed best is chosen."
        return {"phase": "final", "confirm_plan": {}, "final": {"candidates": top},
                "decisions": [_note(state, "confirm", text)]}
    evidence = fidelity.rung_of(evaluations_of(state)[top[0]["search_key"]])
    rung = _affordable_rung(state, evidence, len(top) * task.budget.confirm_seeds, "confirm", context)
    plan: dict[str, ConfirmPlanEntry] = {}
    for entry in top:
        for offset in range(task.budget.confirm_seeds):
            seed = task.seed + 1000 + offset
            key = f"{entry['candidate_id']}/confirm/{selection.training_label(entry['training'])}/s{seed}"
            plan[key] = ConfirmPlanEntry(candidate_id=entry["candidate_id"], training=entry["training"],
                                         label=entry["label"], seed=seed, rung=rung)
    text = (f"Confirming {' vs '.join(entry['label'] for entry in top)} with "
            f"{task.budget.confirm_seeds} seeds each at rung {rung} ({rung_epochs(task, rung)} epochs).")
    return {"phase": "confirm", "confirm_plan": plan, "final": {"candidates": top},
            "decisions": [_note(state, "confirm", text)]}


@timed
def select(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Choose the winner on the mean over seeds and say whether the gap is larger than the noise."""
    task = task_of(state)
    top = [_confirmed(state, entry) for entry in (state.get("final") or {}).get("candidates") or []]
    if not top:
        return {"phase": "final", "final": {"winner": None, "full_train": "skipped: no winner"}}
    top = selection.order_confirmed(top, task.maximize, _params_by_candidate(state))
    winner, final = top[0], FinalRecord(candidates=top, winner=top[0])
    text = f"Winner {winner['label']}: {task.metric} {winner['stats']['mean']:.4f} ± {winner['stats']['std']:.4f}"
    if len(top) > 1:
        difference, margin, significant = selection.gap_beats_noise(top[0]["stats"], top[1]["stats"])
        final.update(runner_up=top[1], difference=difference, margin=margin, significant=significant)
        text += (f" vs {top[1]['label']} {top[1]['stats']['mean']:.4f} ± {top[1]['stats']['std']:.4f}; the gap "
                 f"{difference:+.4f} is " + ("larger" if significant else "not larger") + " than the seed noise"
                 + (f" (±{margin:.4f})." if margin == margin else " (too few seeds to tell)."))
        behind = difference < 0 if task.maximize else difference > 0
        if behind:
            params = _params_by_candidate(state)
            text += (f" Within the noise the smaller model wins: {params.get(winner['candidate_id'], 0):,} vs "
                     f"{params.get(top[1]['candidate_id'], 0):,} parameters.")
    left = budget.total_time_left_s(state, context_of(runtime))
    if task.budget.full_epochs == 0:
        final["full_train"] = "skipped: full_epochs is 0"
    elif left < MIN_FULL_TRAIN_SECONDS:
        final["full_train"] = f"skipped: {max(left, 0):.0f}s of the time budget left"
    else:
        final["full_train"] = "run"
    return {"phase": "final", "final": final, "decisions": [_note(state, "select", text)]}


def _confirmed(state: ResearchState, entry: Configuration) -> Configuration:
    """``entry`` with the statistics of its completed seed re-evaluations (its search metric if none)."""
    evaluations = evaluations_of(state)
    values = [evaluations[key]["metric"] for key, item in (state.get("confirm_plan") or {}).items()
              if item["label"] == entry["label"] and key in evaluations and evaluations[key]["status"] == COMPLETED]
    return Configuration(**{**entry, "confirmed": bool(values),
                            "stats": selection.seed_statistics(values or [entry["search_metric"]])})


@timed
def approve_full_train(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Pause for approval of the full training (task ``approve: [full_train]``); nothing is written before.

    Shows what will run and its estimated cost. On resume this node runs again and gets the
    answer: yes goes on to ``full_train``, no skips it (the report says the user skipped it).
    """
    summary, details = full_train_estimate(state, budget.total_time_left_s(state, None))
    approved, update = approval.ask(state, "full_train", summary, details)
    emit(state["run_dir"], "decision", text=("full training approved by the user" if approved else
                                             "full training skipped: the user answered no"))
    if not approved:
        update["final"] = {**(state.get("final") or {}), "full_train": SKIPPED_BY_USER}
    return update


def trainer_config(task: Task, candidate: CandidateRecord, training: TrainingRecord,
                   tokenizers: dict[str, TokenizerRecord], group: str, time_left_s: float,
                   epochs: int | None = None) -> FullTrainConfig:
    """The full trainer's config for ``candidate`` trained with ``training``: at most ``epochs`` (default
    full_epochs), early stopping on the task metric after the budget's patience, the best epoch kept."""
    epochs = task.budget.full_epochs if epochs is None else epochs
    monitor = task.metric if task.metric not in {"loss"} else "val_loss"
    config = FullTrainConfig(
        dataset=task.dataset,
        dataset_params=dataset_params(task, tokenizers, candidate.get("vocab_size")),
        input_shape=list(task.input_shape), **objective(task),
        batch_size=task.budget.batch_size, epochs=epochs,
        optimizer=optimizer_spec(training), learning_rate=training["lr"],
        scheduler=SchedulerSpec(type="CosineAnnealingLR", params={"T_max": epochs}), device="auto",
        seed=task.seed, checkpoint_interval=0, save_best_model=True,
        monitor=monitor, monitor_mode=task.mode or "max", time_budget_s=max(time_left_s, 1.0),
        early_stopping=EarlyStoppingSpec(metric=monitor, patience=task.budget.early_stopping_patience,
                                         mode=task.mode or "max"),
        wandb=WandbSettings(mode=get_settings().wandb_mode, group=group, tags=["torchscout", "full_train"]),
    )
    if task.data_root:
        config["data_root"] = task.data_root
    if training.get("augment"):
        config["augment"] = training["augment"]
    return config


def _resumes_earlier_training(run_dir: str) -> bool:
    """This node re-runs after a crash or a resume: continue the earlier training, don't refuse it.

    With a ``last.pt`` the trainer resumes from it. A folder without one holds no finished epoch
    (only the config, the model copy and the logs of the interrupted start): it is moved aside,
    not deleted, to ``<folder>.incomplete-N`` for a fresh start.
    """
    folder = resolve(f"{run_dir}/full_training/{FULL_TRAIN_EXPERIMENT}")
    if (folder / "checkpoints" / "last.pt").exists():
        return True
    if folder.exists():
        attempt = 1
        while folder.with_name(f"{folder.name}.incomplete-{attempt}").exists():
            attempt += 1
        folder.rename(folder.with_name(f"{folder.name}.incomplete-{attempt}"))
    return False


@timed
def full_train(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Train the winner with pytorch_full_trainer, within what is left of the time budget."""
    final = state.get("final") or {}
    winner = final.get("winner")
    if not winner or final.get("full_train") != "run":
        return {}
    run_dir = state["run_dir"]
    candidate = state["candidates"][winner["candidate_id"]]
    # keep a little time for the report
    left = budget.total_time_left_s(state, context_of(runtime)) - 2.0
    config = trainer_config(task_of(state), candidate, winner["training"], state.get("tokenizers") or {},
                            state["run_name"], left)
    config["wandb"] = full_train_wandb(run_dir)  # the research project and group, job_type, branch tag
    if _resumes_earlier_training(run_dir):
        config["resume"] = True
    emit(run_dir, "started", kind="full_train", candidate_id=winner["candidate_id"])
    try:
        result = train_confined(candidate["script"], candidate["class_name"], config,
                                experiment_name=FULL_TRAIN_EXPERIMENT, log_base_dir=f"{run_dir}/full_training")
    except TRANSIENT_ERRORS:
        raise
    except (ToolError, UserCodeError, RuntimeError, ValueError) as exc:
        error = str(exc).splitlines()[0][:500]
        emit(run_dir, "failed", candidate_id=winner["candidate_id"], stage="full_train", error=error)
        return {"full_training": FullTrainingRecord(status=FAILED, error=error),
                "failures": [FailureRecord(candidate_id=winner["candidate_id"], stage="full_train", error=error,
                                           traceback=getattr(exc, "traceback_tail", "") or traceback_tail(exc, 8))]}
    kept = _kept_result(result, config)
    _install_in_project(state, candidate, config)
    best = kept.get("best_metric") or {}
    emit(run_dir, "trained", candidate_id=winner["candidate_id"], metric=best.get("name"), value=best.get("value"),
         epochs=len(kept["history"]), best_epoch=best.get("epoch"), stop_reason=kept.get("stop_reason"),
         restored_epoch=kept.get("restored_epoch"))
    return {"full_training": kept}


def _kept_result(result: dict[str, Any], config: FullTrainConfig) -> FullTrainingRecord:
    """What the state keeps of the trainer's result: the outcome, where it is, and the numbers per epoch,
    with how it ended (early stopping, the time budget, the epoch cap) and which epoch's weights the
    final evaluation used (the best one, restored from its checkpoint)."""
    history = [{key: value for key, value in entry.items() if isinstance(value, int | float | str)}
               for entry in result.get("history") or []]
    best = result.get("best_metric") or {}
    restored = (result.get("final_eval") or {}).get("checkpoint") == "best"
    return FullTrainingRecord(
        stop_reason=result.get("stop_reason"), epochs_completed=int(result.get("epochs_completed") or len(history)),
        restored_epoch=best.get("epoch") if restored else None,
        status=result["status"], experiment_dir=result.get("experiment_dir"),
        best_checkpoint_path=result.get("best_checkpoint_path"), best_metric=result.get("best_metric"),
        final_eval=result.get("final_eval"), stopped_early=result.get("stopped_early"),
        duration_s=result.get("duration_s"), samples_per_s=result.get("samples_per_s"),
        wandb_run_dir=result.get("wandb_run_dir"), history=history, trainer_config=config,
        timings=dict(result.get("timings") or {}))


def _install_in_project(state: ResearchState, candidate: CandidateRecord, config: FullTrainConfig) -> None:
    """Put the winning model and its training config into the run's scaffolded project."""
    project = state.get("project_dir")
    if not project or not resolve(project).exists():
        return
    folder = resolve(project)
    shutil.copyfile(resolve(candidate["script"]), folder / "src" / "models" / "best_model.py")
    atomic_write_text(folder / "configs" / "best.yaml",
                      yaml.safe_dump({"model_class": candidate["class_name"], "trainer_config": config},
                                     sort_keys=False))


@timed
def analyze(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Write runs/<name>/report.md (leaderboard, Pareto plot, curves, decisions, failures) and result.json,
    and log to W&B."""
    state = ResearchState(**{**state, "llm_usage": llm_usage(state["run_dir"])})  # the report's LLM section
    report_path = write_report(state)
    write_result(state, extra={"llm": llm_result(state)})
    log_research_run(state)
    emit(state["run_dir"], "report", path=report_path)
    return {"phase": "done", "report_path": report_path, "llm_usage": state["llm_usage"]}

"""The report's account of the budget: what ended the search, the halving rungs, how full training ended.

A researcher reading ``report.md`` should see at a glance how the time was spent: whether the
search stopped at the target, at ``max_rounds``, for lack of progress (patience) or for lack of
time, how many candidates each rung of successive halving trained and for how long, and whether
the final training stopped early with its best epoch's weights restored.
"""

from __future__ import annotations

from torchscout.agent.records import (
    EvaluationRecord,
    FullTrainingRecord,
    ResearchState,
    StopCause,
    evaluations_of,
)
from torchscout.tools.training.status import COMPLETED

STOP_CAUSES: dict[StopCause, str] = {
    "target": "the target metric was reached",
    "max_rounds": "max_rounds was reached",
    "patience": "rounds without improvement",
    "time": "the time budget (what is left is kept for confirmation and full training)",
    "round_cap": "the hard cap on rounds",
}
TRAINING_ENDS = {
    "early_stopping": "stopped early",
    "time_budget": "cut short by the time budget",
    "max_steps": "stopped at its step cap",
}


def budget_line(state: ResearchState) -> str:
    """The budget the task gave and how much of it the run used."""
    budget = state["task"]["budget"]
    rounds = (f"{budget['max_rounds']} rounds" if budget.get("max_rounds") is not None
              else "rounds until time or patience")
    seconds = 60.0 * float(budget["max_minutes"])
    used = float(state.get("elapsed_s", 0.0))
    rungs = (f", successive halving by {budget.get('halving_rate', 2)} over up to {budget.get('max_rungs', 2)} rungs"
             if "halving_rate" in budget else "")
    return (f"Budget: {rounds} x {budget['candidates_per_round']} candidates, screen {budget['screen_steps']} steps, "
            f"quick {budget['quick_epochs']} epochs{rungs}, full training up to {budget['full_epochs']} epochs, "
            f"{budget['max_minutes']} min. Used {used:.0f} s of {seconds:.0f} s ({100 * used / seconds:.0f}%) "
            f"over {state.get('round', 0)} round(s).")


def stop_line(state: ResearchState) -> str:
    """Which limit ended the search, in one word and in the run's own words."""
    cause = state.get("stopped_by")
    reason = state.get("stop_reason") or "-"
    if cause is None:
        return f"**Search stopped by:** {reason}."
    return f"**Search stopped by:** {cause} ({STOP_CAUSES.get(cause, cause)}): {reason}."


def full_training_line(training: FullTrainingRecord) -> str:
    """How the final training went: its best epoch, how it ended, and which weights were evaluated."""
    best = training.get("best_metric") or {}
    history = training.get("history") or []
    ran = training.get("epochs_completed") or len(history)
    cap = (training.get("trainer_config") or {}).get("epochs")
    early = (training.get("trainer_config") or {}).get("early_stopping")
    line = (f"**Full training:** best {best.get('name')} = {_number(best.get('value'))} at epoch "
            f"{best.get('epoch')} of {ran} run" + (f" (cap {cap})" if cap else ""))
    ending = TRAINING_ENDS.get(training.get("stop_reason") or "")
    if ending and training.get("stop_reason") == "early_stopping" and early:
        line += f"; {ending} after {early['patience']} epochs without a better {early['metric']}"
    elif ending:
        line += f"; {ending}"
    elif cap:
        line += "; every epoch of the cap ran"
    restored = training.get("restored_epoch")
    if restored is not None:
        line += f"; the best checkpoint (epoch {restored}) was restored for the final evaluation"
    final = training.get("final_eval") or {}
    numbers = ", ".join(f"{key}={_number(value)}" for key, value in final.items() if isinstance(value, int | float))
    split = f" on {final['split']}" if final.get("split") else ""
    line += (f"; final evaluation{split}: {numbers or '-'}; {_number(training.get('duration_s'), 1)} s; "
             f"checkpoint `{training.get('best_checkpoint_path')}`")
    return line


def _number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _rung_of(record: EvaluationRecord) -> int:
    return int(record["rung"]) if record.get("rung") is not None else (0 if record["kind"] == "screen" else 1)


def halving_section(state: ResearchState, metric: str, maximize: bool) -> list[str]:
    """Per rung: how long it trains, how many candidates got there, and the best result there."""
    by_rung: dict[int, list[EvaluationRecord]] = {}
    for record in evaluations_of(state).values():
        if record["kind"] in {"screen", "quick", "rung"}:
            by_rung.setdefault(_rung_of(record), []).append(record)
    if not any(rung >= 1 for rung in by_rung):
        return []
    lines = ["## Successive halving", "",
             "Each round screens its candidates (rung 0) and gives the best a quick evaluation (rung 1); from "
             "there the best results of every round so far train longer at the next rung.",
             "", f"| rung | length | evaluations | completed | best {metric} | seconds |", "|---:|---:|---:|---:|---|---:|"]
    for rung, records in sorted(by_rung.items()):
        done = [item for item in records if item["status"] == COMPLETED and item.get("metric") is not None]
        top = (max if maximize else min)(done, key=lambda item: item["metric"]) if done else None
        best = f"{top['metric']:.4f} (`{top['candidate_id']}`)" if top else "-"
        length = f"{records[0].get('max_steps')} steps" if rung == 0 else f"{records[0].get('epochs')} epochs"
        seconds = sum(float(item.get("duration_s") or 0.0) for item in records)
        lines.append(f"| {rung} | {length} | {len(records)} | {len(done)} | {best} | {seconds:.1f} |")
    return [*lines, ""]

"""The run report: ``runs/<name>/report.md`` with a leaderboard, a Pareto plot, curves and the reasoning.

Everything comes from the checkpointed state, so ``torchscout report NAME`` and a replayed run
render the same facts: the goal, every candidate (metric, params, FLOPs, time), an
accuracy-vs-params Pareto plot, the best model's training curves, each decision with its
rationale, what failed and why, and the seeds and confidence behind the final choice.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from torchscout.agent.llm_report import llm_section
from torchscout.agent.records import CandidateRecord, EpochRecord, ResearchState, Status, evaluations_of
from torchscout.agent.report_baselines import baselines_report_section
from torchscout.agent.report_branch import branch_section
from torchscout.agent.report_budget import budget_line, full_training_line, halving_section, stop_line
from torchscout.agent.run_result import test_section
from torchscout.agent.time_use import time_use_lines
from torchscout.tools.training.status import DIVERGED, FAILED
from torchscout.tools.workspace import atomic_write_text, atomic_writer, relative_to_workspace, resolve

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # matplotlib loads only when a plot is drawn

REPORT_FILE = "report.md"


class LeaderboardRow(TypedDict):
    """One candidate in the report's leaderboard (and ``research()``'s outcome)."""

    rank: int
    candidate: str
    metric: float | None
    budget: Literal["quick", "screen", "-"]   # which evaluation the metric comes from
    params: int | None
    flops: int | None
    seconds: float
    status: Status
    rationale: str
    error: str | None


def _metric_of(candidate: CandidateRecord) -> float | None:
    return candidate.get("metric") if candidate.get("metric") is not None else candidate.get("screen_metric")


def leaderboard_rows(state: ResearchState) -> list[LeaderboardRow]:
    """Every candidate, ranked by its quick metric (then its screen metric); failures last."""
    maximize = state["task"].get("mode", "max") == "max"
    candidates = list((state.get("candidates") or {}).values())
    evaluations = evaluations_of(state).values()

    def sort_key(candidate: CandidateRecord) -> tuple[int, float, str]:
        quick, screen = candidate.get("metric"), candidate.get("screen_metric")
        value = quick if quick is not None else screen
        tier = 0 if quick is not None else 1 if screen is not None else 2
        signed = (-value if maximize else value) if value is not None else 0.0
        return tier, signed, candidate["id"]

    rows = []
    for rank, candidate in enumerate(sorted(candidates, key=sort_key), start=1):
        seconds = sum(item.get("duration_s") or 0.0 for item in evaluations
                      if item["candidate_id"] == candidate["id"] and item["kind"] in {"screen", "quick", "rung"})
        rows.append(LeaderboardRow(
            rank=rank, candidate=candidate["id"], metric=_metric_of(candidate),
            budget=("quick" if candidate.get("metric") is not None else
                    "screen" if candidate.get("screen_metric") is not None else "-"),
            params=candidate.get("params"), flops=candidate.get("flops"), seconds=round(seconds, 2),
            status=candidate["status"], rationale=candidate.get("rationale", ""), error=candidate.get("error")))
    return rows


def pareto_front(points: list[tuple[float, float]], maximize: bool = True) -> list[int]:
    """Indices of points (params, metric) not dominated by a smaller-or-equal, better-or-equal one."""
    front = []
    for index, (params, metric) in enumerate(points):
        dominated = any(
            other_params <= params and (other_metric >= metric if maximize else other_metric <= metric)
            and (other_params, other_metric) != (params, metric)
            for other_params, other_metric in points)
        if not dominated:
            front.append(index)
    return front


def _save_png(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_writer(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)


def _plot_pareto(rows: list[LeaderboardRow], metric_name: str, maximize: bool, path: Path) -> bool:
    scored = [row for row in rows if row["metric"] is not None and row["params"]]
    if not scored:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(float(row["params"]), float(row["metric"])) for row in scored]
    front = set(pareto_front(points, maximize))
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    axis.scatter([p for p, _ in points], [m for _, m in points], c=["tab:red" if i in front else "tab:blue"
                                                                    for i in range(len(points))])
    for row, (params, metric) in zip(scored, points, strict=True):
        axis.annotate(row["candidate"], (params, metric), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ordered = sorted(points[i] for i in front)
    axis.plot([p for p, _ in ordered], [m for _, m in ordered], "r--", linewidth=1, label="Pareto front")
    axis.set_xscale("log")
    axis.set_xlabel("parameters")
    axis.set_ylabel(metric_name)
    axis.set_title(f"{metric_name} vs parameters")
    axis.legend()
    figure.tight_layout()
    _save_png(figure, path)
    return True


def _plot_curves(history: list[EpochRecord], metric_name: str, path: Path) -> bool:
    if not history:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [entry.get("epoch", index + 1) for index, entry in enumerate(history)]
    figure, (loss_axis, metric_axis) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key in ("train_loss", "val_loss"):
        values = [entry.get(key) for entry in history]
        if any(value is not None for value in values):
            loss_axis.plot(epochs, values, marker="o", label=key)
    loss_axis.set_xlabel("epoch")
    loss_axis.set_title("loss")
    loss_axis.legend()
    for key in (metric_name, f"val_{metric_name}"):
        values = [entry.get(key) for entry in history]
        if any(value is not None for value in values):
            metric_axis.plot(epochs, values, marker="o", label=key)
    metric_axis.set_xlabel("epoch")
    metric_axis.set_title(metric_name)
    metric_axis.legend()
    figure.tight_layout()
    _save_png(figure, path)
    return True


def _fmt_dict(values: dict[str, float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{key}={_fmt(value)}" for key, value in values.items() if isinstance(value, int | float))


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _result_section(state: ResearchState) -> list[str]:
    task, final = state["task"], state.get("final") or {}
    winner = final.get("winner")
    lines = ["## Result", ""]
    if not winner:
        lines += ["No candidate was evaluated successfully, so there is no winner (see the leaderboard and *Failures*).", ""]
        return lines
    stats = winner["stats"]
    lines.append(f"- **Winner:** `{winner['label']}` (candidate `{winner['candidate_id']}`)")
    lines.append(f"- **{task['metric']} over {stats['n']} seed(s):** {_fmt(stats['mean'])} ± {_fmt(stats['std'])} "
                 f"(values {', '.join(_fmt(v) for v in stats['values'])})")
    if final.get("runner_up"):
        runner = final["runner_up"]
        margin = final.get("margin")
        verdict = ("larger than the seed noise" if final.get("significant") else
                   "NOT larger than the seed noise: the two are statistically tied")
        lines.append(f"- **Runner-up:** `{runner['label']}` {_fmt(runner['stats']['mean'])} ± "
                     f"{_fmt(runner['stats']['std'])}; difference {final['difference']:+.4f}, "
                     f"noise margin ±{_fmt(margin)} (2 standard errors) -> {verdict}.")
    training = state.get("full_training") or {}
    if training.get("status") in {FAILED, DIVERGED}:
        lines.append(f"- **Full training failed:** {training.get('error')}")
    elif training:
        lines.append(f"- {full_training_line(training)}")
        test = test_section(state)
        if test:
            lines.append(f"- **Test split (evaluated once, after the choice):** {_fmt_dict(test)}")
    else:
        lines.append(f"- **Full training:** {final.get('full_train', 'not run')}")
    lines += _approval_lines(state)
    lines.append("")
    return lines


def _approval_lines(state: ResearchState) -> list[str]:
    """One line per approval gate the run stopped at, with the user's answer and what was asked."""
    lines = []
    for key, answer in sorted((state.get("approvals") or {}).items()):
        verdict = "approved by the user" if answer.get("answer") == "yes" else "skipped by the user"
        lines.append(f"- **Approval gate `{key}`:** {verdict} (asked: {answer.get('summary')})")
    return lines


def _leaderboard_section(rows: list[LeaderboardRow], metric_name: str) -> list[str]:
    lines = ["## Leaderboard", "",
             f"| rank | candidate | {metric_name} | budget | params | FLOPs | time (s) | status | rationale |",
             "|---:|---|---:|---|---:|---:|---:|---|---|"]
    for row in rows:
        rationale = (row["rationale"] or "").replace("|", "/")[:140]
        lines.append(f"| {row['rank']} | `{row['candidate']}` | {_fmt(row['metric'])} | {row['budget']} | "
                     f"{_fmt(row['params'])} | {_fmt(row['flops'])} | {_fmt(row['seconds'], 1)} | {row['status']} | "
                     f"{rationale} |")
    return [*lines, ""]


def _experiments_section(state: ResearchState) -> list[str]:
    evaluations = evaluations_of(state)
    optimizer = [item for item in evaluations.values() if item["kind"] == "optimizer"]
    confirm = [item for item in evaluations.values() if item["kind"] == "confirm"]
    lines: list[str] = []
    if optimizer:
        lines += ["## Optimizer experiments", "", "| evaluation | optimizer | lr | weight decay | metric | status |",
                  "|---|---|---:|---:|---:|---|"]
        for item in sorted(optimizer, key=lambda entry: entry["key"]):
            training = item["training"]
            lines.append(f"| `{item['key']}` | {training.get('optimizer')} | {_fmt(training.get('lr'), 5)} | "
                         f"{_fmt(training.get('weight_decay'), 4)} | {_fmt(item.get('metric'))} | {item['status']} |")
        lines.append("")
    if confirm:
        lines += ["## Seed confirmation", "", "| evaluation | seed | metric | status |", "|---|---:|---:|---|"]
        for item in sorted(confirm, key=lambda entry: entry["key"]):
            lines.append(f"| `{item['key']}` | {item['seed']} | {_fmt(item.get('metric'))} | {item['status']} |")
        lines.append("")
    return lines


def _decisions_and_failures(state: ResearchState) -> list[str]:
    lines = ["## Decisions", ""]
    for number, entry in enumerate(state.get("decisions") or [], start=1):
        lines.append(f"{number}. **{entry.get('node')}**: {entry.get('text')}")
    lines += ["", "## Failures", ""]
    failures = state.get("failures") or []
    rejected = [c for c in (state.get("candidates") or {}).values() if c.get("status") == "rejected"]
    if not failures and not rejected:
        lines.append("None.")
    for item in failures:
        lines.append(f"- `{item.get('candidate_id')}` at **{item.get('stage')}**: {item.get('error')}")
        if item.get("traceback"):
            tail = "\n".join(str(item["traceback"]).splitlines()[-4:])
            lines += ["", "  ```", *[f"  {line}" for line in tail.splitlines()], "  ```"]
    for candidate in rejected:
        lines.append(f"- `{candidate['id']}` rejected at **inspect**: {candidate.get('error')}")
    return [*lines, ""]


def _predicts(task: dict) -> str:
    """What the task predicts: classes, or regression targets (older tasks have no task_type)."""
    if task.get("task_type") == "regression":
        return f"regression of {task.get('num_targets', 1)} target(s)"
    return f"{task['num_classes']} classes"


def render_report(state: ResearchState, pareto_png: str | None, curves_png: str | None) -> str:
    task = state["task"]
    budget = task["budget"]
    lines = [f"# Research report: {state['run_name']}", "",
             f"**Goal:** {task.get('goal') or task['name']}", "",
             f"Dataset `{task['dataset']}`, input {task['input_shape']} ({task['input_dtype']}), "
             f"{_predicts(task)}; metric **{task['metric']}** ({task['mode']}); planner "
             f"`{task['planner']}`; seed {task['seed']}.", "",
             budget_line(state), "", stop_line(state), ""]
    lines += branch_section(state)
    lines += _result_section(state)
    lines += baselines_report_section(state)
    rows = leaderboard_rows(state)
    lines += _leaderboard_section(rows, task["metric"])
    lines += halving_section(state, task["metric"], task.get("mode", "max") == "max")
    if pareto_png:
        lines += ["## Accuracy vs parameters", "", f"![Pareto plot]({pareto_png})", "",
                  "Red points are on the Pareto front: no other candidate is both smaller and better.", ""]
    if curves_png:
        lines += ["## Best model: training curves", "", f"![curves]({curves_png})", ""]
    lines += _experiments_section(state)
    lines += llm_section(state)
    time_use = time_use_lines(state)
    if time_use:
        lines += ["## Time use", "", *time_use, ""]
    lines += _decisions_and_failures(state)
    lines += ["## Reproducibility", "",
              f"- Task seed {task['seed']}; confirmation seeds {task['seed'] + 1000}..."
              f"{task['seed'] + 1000 + budget['confirm_seeds'] - 1}.",
              f"- Candidate scripts, summaries and per-evaluation metrics: `{state['run_dir']}/candidates/`.",
              f"- Event log: `{state['run_dir']}/events.jsonl`; checkpoints: run `{state['run_name']}` in "
              "`.torchscout/graph.sqlite` (`torchscout history`).", ""]
    return "\n".join(lines)


def write_report(state: ResearchState) -> str:
    """Render and write runs/<name>/report.md (plus its PNGs); returns its workspace-relative path."""
    folder = resolve(state["run_dir"], kind="run folder")
    folder.mkdir(parents=True, exist_ok=True)
    task = state["task"]
    maximize = task.get("mode", "max") == "max"
    pareto = "pareto.png" if _plot_pareto(leaderboard_rows(state), task["metric"], maximize,
                                          folder / "pareto.png") else None
    history = (state.get("full_training") or {}).get("history") or []
    curves = "curves.png" if _plot_curves(history, task["metric"], folder / "curves.png") else None
    path = folder / REPORT_FILE
    atomic_write_text(path, render_report(state, pareto, curves))
    return relative_to_workspace(path)

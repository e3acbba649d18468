"""The report's comparison of the winner with the classical baselines, on validation and test.

The same numbers as ``result.json`` (:mod:`torchscout.agent.run_result`): the winner's scores on
the validation split and, once, on the test split, next to logistic regression / ridge and
gradient-boosted trees fitted on the same training split.
"""

from __future__ import annotations

import math

from torchscout.agent.records import ResearchState
from torchscout.agent.run_result import Scores, baselines_section, test_section, validation_section


def _columns(task_metric: str, rows: list[Scores]) -> list[str]:
    """The task's metric first, then the other metrics, the loss last."""
    names = {name for row in rows for name in row}
    first = "loss" if task_metric in ("loss", "val_loss") else task_metric
    rest = sorted(names - {first, "loss"})
    return [first, *rest, *(["loss"] if "loss" in names and first != "loss" else [])]


def _cell(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _verdict(task: dict, winner: Scores, baselines: dict[str, Scores]) -> str | None:
    metric = "loss" if task["metric"] in ("loss", "val_loss") else task["metric"]
    scored = {name: scores[metric] for name, scores in baselines.items() if metric in scores}
    if metric not in winner or not scored:
        return None
    maximize = task.get("mode", "max") == "max"
    best_name = (max if maximize else min)(scored, key=scored.get)
    difference = winner[metric] - scored[best_name]
    ahead = difference > 0 if maximize else difference < 0
    return (f"On validation the winner's {metric} is {winner[metric]:.4f}, the best baseline's ({best_name}) "
            f"{scored[best_name]:.4f}: the neural model is {'ahead' if ahead else 'behind'} by "
            f"{abs(difference):.4f}.")


def baselines_report_section(state: ResearchState) -> list[str]:
    """Markdown lines comparing the winner with the baselines (none when the run has no baselines)."""
    baselines = baselines_section(state)
    if not baselines:
        return []
    task = state["task"]
    validation, test = validation_section(state), test_section(state)
    baselines_test = baselines_section(state, "test")
    rows: list[tuple[str, str, Scores]] = []
    winner_id = ((state.get("final") or {}).get("winner") or {}).get("candidate_id")
    if winner_id and validation:
        rows.append((f"winner `{winner_id}`", "validation", validation))
    if winner_id and test:
        rows.append((f"winner `{winner_id}`", "test", test))
    for name, scores in baselines.items():
        rows.append((name, "validation", scores))
        if name in baselines_test:
            rows.append((name, "test", baselines_test[name]))
    columns = _columns(task["metric"], [scores for _, _, scores in rows])
    lines = ["## Neural model vs classical baselines", "",
             "Baselines: scikit-learn fitted on the same training split (inputs flattened), scored on the same "
             "validation split and the test split (when the dataset has one).", "",
             "| model | split | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for name, split, scores in rows:
        lines.append(f"| {name} | {split} | " + " | ".join(_cell(scores.get(column)) for column in columns) + " |")
    verdict = _verdict(task, validation, baselines)
    if verdict:
        lines += ["", verdict]
    if task.get("task_type") == "regression":
        lines += ["", "Regression targets of the built-in datasets are standardised with the training split: mse, "
                      "rmse and mae are in units of the target's standard deviation (r2 does not depend on it)."]
    return [*lines, ""]

"""The tasks the research evals compare methods on: one entry per task in :data:`EVAL_TASKS`.

An entry names an example task file (``examples/<name>.yaml``: the dataset, input shape, metric
and goal a user would run) and, per suite, what changes in its budget there; the
baselines get the same wall-clock time the planner used. The example's own ``target`` is
dropped (the evals measure what a budget buys, not how soon a target is met). An entry whose
example is not in this checkout, or whose data is missing, is reported as skipped, never failed.

``quick`` keeps ``max_rounds`` so it stays fast; ``full`` gives every task a wall-clock budget and
no round limit, so the planner spends the budget as a user's run would.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from torchscout.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"


@dataclass(frozen=True)
class EvalTask:
    """One task of the research evals."""

    example: str                                # examples/<example>.yaml
    budgets: dict[str, dict[str, Any]]          # suite -> the task's budget in that suite
    make_data: list[str] = field(default_factory=list)  # a generator script and its arguments, run once
    needs: str | None = None                    # a data folder that must exist (under the workspace or data dir)
    needs_hint: str = ""

    def task_data(self, suite: str) -> dict[str, Any]:
        """The example's task, its budget updated with this suite's (a None removes a field), no target."""
        data = yaml.safe_load((EXAMPLES / f"{self.example}.yaml").read_text(encoding="utf-8"))
        data.pop("target", None)
        budget = {**(data.get("budget") or {}), **self.budgets[suite]}
        return {**data, "budget": {key: value for key, value in budget.items() if value is not None}}

    def skipped(self) -> str | None:
        """Why this task cannot run here (None when it can); generates its data when it has a generator."""
        if not (EXAMPLES / f"{self.example}.yaml").is_file():
            return f"examples/{self.example}.yaml is not in this checkout"
        workspace = get_settings().workspace
        if self.make_data:
            script, *arguments = self.make_data
            subprocess.run([sys.executable, str(REPO_ROOT / script), *arguments], check=True, cwd=workspace,
                           capture_output=True, text=True)
        if self.needs and not any((folder / self.needs).is_dir()
                                  for folder in (workspace / "data", get_settings().data_dir)):
            return self.needs_hint or f"no {self.needs} data"
        return None


# Small budgets for the quick suite (two CPU cores, well inside 15 minutes in all). digits: 5 quick
# epochs (at 3, a 5k-parameter conv net is still ~2 points behind the 20k baseline it ties after
# training, so the search could not see small models).
_FULL = {"max_rounds": None, "patience_rounds": None, "candidates_per_round": 4, "optimizer_trials": 2,
         "confirm_seeds": 3, "batch_size": 64}

EVAL_TASKS: dict[str, EvalTask] = {
    "digits": EvalTask("digits", {
        "quick": {"max_rounds": 4, "candidates_per_round": 6, "screen_steps": 40, "quick_epochs": 5,
                  "full_epochs": 40, "max_minutes": 3, "optimizer_trials": 3, "confirm_seeds": 3, "batch_size": 64},
        "full": {**_FULL, "screen_steps": 60, "quick_epochs": 4, "full_epochs": 60, "max_minutes": 5},
    }),
    "text_synthetic": EvalTask("text_synthetic", {
        "quick": {"max_rounds": 2, "candidates_per_round": 3, "screen_steps": 40, "quick_epochs": 2,
                  "full_epochs": 8, "max_minutes": 2, "optimizer_trials": 1, "confirm_seeds": 2, "batch_size": 64},
        "full": {**_FULL, "screen_steps": 60, "quick_epochs": 3, "full_epochs": 30, "max_minutes": 4},
    }, make_data=["examples/make_text_synthetic.py", "--out", "data/text_synthetic.csv"]),
    # the tabular and signal examples run as a user runs them (no max_rounds; their own patience and
    # budget), so the scoreboard's builtin rows are the README's expected results
    "signals": EvalTask("signals", {"full": {}}),
    "diabetes": EvalTask("diabetes", {"full": {}}),
    "breast_cancer": EvalTask("breast_cancer", {"full": {}}),
    "cifar10": EvalTask("cifar10", {
        "full": {**_FULL, "screen_steps": 200, "quick_epochs": 2, "quick_max_steps": 1500, "full_epochs": 15,
                 "max_minutes": 45, "max_params": 2_000_000, "confirm_seeds": 2, "batch_size": 128},
    }, needs="cifar-10-batches-py", needs_hint="no CIFAR-10 data (put the extracted cifar-10-batches-py folder in "
                                               "the data dir, TORCHSCOUT_DATA_DIR, or run online once)"),
}


def suite_tasks(suite: str) -> dict[str, EvalTask]:
    """The tasks of ``suite``, in table order."""
    return {key: entry for key, entry in EVAL_TASKS.items() if suite in entry.budgets}

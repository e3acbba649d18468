"""Run the red-team corpus (``tests/redteam/cases_*.py``) and print the counts per category.

    python evals/redteam.py                 # every case, each in a fresh temporary workspace
    python evals/redteam.py --category run_state --json evals/results/redteam.json

For each category: attempts, refused (every hostile call answered with a one-line error),
handled (it ran, safely), escaped (data lost, a traceback, a hang, or the case's own check
failed), and the data-lost and traceback counts on their own. The goal is 0 escaped, 0 data
lost, 0 tracebacks; the exit status is 1 otherwise. The cases are the ones the test suite runs
(``tests/redteam/test_redteam.py``); the slow ones, which the default test run skips, run here too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `tests` and `evals` are folders of the repository, not the package

COLUMNS = ("attempts", "refused", "handled", "escaped", "data_lost", "tracebacks")


def _quiet_environment() -> None:
    """What the test suite sets too: no network libraries reaching out, no W&B, no progress bars."""
    for variable, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                            "WANDB_MODE": "disabled", "TORCHSCOUT_PROGRESS": "0", "TORCHSCOUT_LLM": "builtin"}.items():
        os.environ.setdefault(variable, value)


def count(verdicts: list) -> dict[str, dict[str, int]]:
    """Per category (and 'total'): attempts, refused, handled, escaped, data_lost, tracebacks."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for verdict in verdicts:
        for row in (table[verdict.category], table["total"]):
            row["attempts"] += 1
            row[verdict.outcome] += 1
            row["data_lost"] += bool(verdict.data_lost)
            row["tracebacks"] += verdict.traceback
    return dict(table)


def print_table(table: dict[str, dict[str, int]]) -> None:
    print(f"{'category':<20}" + "".join(f"{column:>11}" for column in COLUMNS))
    for category in sorted(table, key=lambda name: (name == "total", name)):
        print(f"{category:<20}" + "".join(f"{table[category][column]:>11}" for column in COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", action="append", help="Only these categories (repeatable).")
    parser.add_argument("--json", type=Path, help="Also write every verdict to this JSON file.")
    args = parser.parse_args(argv)
    _quiet_environment()
    from tests import network_guard
    from tests.redteam.harness import load_cases, run_case

    network_guard.install()
    cases = [item for item in load_cases().values() if not args.category or item.category in args.category]
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="torchscout-redteam-") as scratch:
        for index, item in enumerate(sorted(cases, key=lambda item: item.key)):
            verdict = run_case(item, Path(scratch) / f"case{index}")
            verdicts.append(verdict)
            print(f"{verdict.outcome:<8} {verdict.duration_s:6.1f}s  {item.key}"
                  + (f"  <- {verdict.problem or verdict.data_lost}" if verdict.outcome == "escaped" else ""),
                  flush=True)
    table = count(verdicts)
    print()
    print_table(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"counts": table, "verdicts": [vars(v) for v in verdicts]}, indent=2,
                                        default=str) + "\n", encoding="utf-8")
    total = table.get("total", dict.fromkeys(COLUMNS, 0))
    return 0 if total["escaped"] == total["data_lost"] == total["tracebacks"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

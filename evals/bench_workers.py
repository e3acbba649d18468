"""Benchmark: the search phase of a digits research run with ``budget.workers`` N vs 1.

Each run is the CLI in a subprocess with its own workspace (a cold start, as a user gets it): two
rounds of four candidates on scikit-learn's digits, the final phase cut down (one optimizer trial, one
seed, no full training) since only the search is timed. The search phase is the wall time from the
``setup`` event to the ``refine`` decision that ends the search, read from ``events.jsonl``.

Reported: each run's search time, the ratio (target on a 2-core machine with ``--workers 2``: at most
0.65), the most evaluations in flight at once, and the evaluations whose metric differs between the
runs (none: an evaluation's torch threads are set by the machine, not by ``workers``). Timings are
noisy (a shared machine's runs differ by 10% from one to the next): the runs go in ``--repeats``
pairs, one worker then N back to back, and the ratio is the median of the pairs'. Run it on a quiet
machine::

    .venv/bin/python evals/bench_workers.py
    .venv/bin/python evals/bench_workers.py --workers 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def digits_task(name: str, workers: int, rounds: int) -> dict:
    return {"name": name, "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10, "metric": "accuracy",
            "seed": 0, "budget": {"max_rounds": rounds, "candidates_per_round": 4, "screen_steps": 60,
                                  "quick_epochs": 4, "full_epochs": 0, "optimizer_trials": 1, "confirm_seeds": 1,
                                  "max_params": 500000, "max_minutes": 60, "workers": workers,
                                  "patience_rounds": rounds}}


def run(workers: int, rounds: int) -> dict:
    workspace = Path(tempfile.mkdtemp(prefix=f"bench-workers{workers}-"))
    task_path = workspace / "digits.yaml"
    task_path.write_text(yaml.safe_dump(digits_task("digits", workers, rounds)))
    environment = {**os.environ, "TORCHSCOUT_WORKSPACE": str(workspace), "TORCHSCOUT_PROGRESS": "0",
                   "TORCHSCOUT_LLM": "builtin", "WANDB_MODE": "offline"}
    started = time.monotonic()
    finished = subprocess.run([sys.executable, "-m", "torchscout.graphs.cli", "run", str(task_path)],
                              cwd=workspace, env=environment, capture_output=True, text=True, timeout=3600)
    total_s = time.monotonic() - started
    if finished.returncode != 0:
        raise SystemExit(f"the run with {workers} worker(s) failed:\n{finished.stdout[-2000:]}{finished.stderr[-2000:]}")
    events = [json.loads(line) for line in (workspace / "runs/digits/events.jsonl").read_text().splitlines()]
    setup = next(item["time"] for item in events if item["event"] == "setup")
    stop = next(item["time"] for item in events if item["event"] == "decision" and "search stops" in item["text"])
    # every evaluation's record, as the run saved it next to its candidate
    records = [json.loads(path.read_text()) for path in (workspace / "runs/digits/candidates").glob("*/eval_*.json")]
    return {"workers": workers, "search_s": stop - setup, "total_s": total_s, "peak": _peak(events),
            "metrics": {item["key"]: item.get("metric") for item in records}, "workspace": workspace,
            "speculative": sum(1 for item in records if item.get("speculative"))}


def _peak(events: list[dict]) -> int:
    running, peak = set(), 0
    for item in events:
        if item["event"] == "started":
            running.add(item["key"])
        elif item["event"] in {"evaluated", "failed", "skipped"} and "key" in item:
            running.discard(item["key"])
        peak = max(peak, len(running))
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3,
                        help="pairs of runs, one worker then N, each pair back to back (the median ratio is reported)")
    arguments = parser.parse_args()
    pairs = [(run(1, arguments.rounds), run(arguments.workers, arguments.rounds)) for _ in range(arguments.repeats)]
    print(f"machine: {len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}")
    for one, many in pairs:
        for item in (one, many):
            print(f"workers {item['workers']}: search phase {item['search_s']:.1f} s (whole run {item['total_s']:.1f} s), "
                  f"at most {item['peak']} evaluation(s) in flight, {item['speculative']} taken from a speculation "
                  "(run ahead in a slot its step left idle)")
    ratios = [many["search_s"] / one["search_s"] for one, many in pairs]
    print(f"ratio workers {arguments.workers} / workers 1: {statistics.median(ratios):.2f} (target <= 0.65); "
          f"per pair {', '.join(f'{ratio:.2f}' for ratio in ratios)}")
    reference = pairs[0][0]["metrics"]
    runs = [item for pair in pairs for item in pair]
    differing = sorted({key for item in runs for key in reference if item["metrics"].get(key) != reference[key]})
    print(f"evaluations: {', '.join(str(len(item['metrics'])) for item in runs)}; metrics differing between any "
          f"two runs: {', '.join(differing) or 'none'}")
    print(f"workspaces (remove when done): {' '.join(str(item['workspace']) for item in runs)}")


if __name__ == "__main__":
    main()

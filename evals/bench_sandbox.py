"""Benchmark: what the kernel sandbox costs a quick evaluation, both sides in one process.

The same evaluation job (a small CNN on ``digits``, 3 epochs as a task's default quick evaluation, the research graph's own
:func:`torchscout.graphs.evaluate.evaluate_job`) runs in turns:

1. **in process** -- ``evaluate_job(job)`` called here, as the graph did before the sandbox;
2. **confined** -- ``evaluate_confined(job)``: the warm fork server forks the job process as PID 1
   of a new PID namespace; it enters its own mount, IPC and network namespaces, applies limits and
   Landlock, runs the same function and sends the record back.

Reported: the median wall time of each side over ``--rounds`` rounds (the first round of each
side is a warm-up), their ratio (target: under 1.05), and where the confined side's extra time
goes: building the policy (``make_policy``), an empty job's round trip (fork, namespaces,
Landlock, limits, reply), and the evaluation measured inside the child.
On a busy machine the numbers are noisy; ``--threads 1`` steadies them::

    .venv/bin/python evals/bench_sandbox.py
    .venv/bin/python evals/bench_sandbox.py --rounds 9 --epochs 1 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

MODEL_SOURCE = '''
import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(32 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))
'''


def noop() -> None:
    """An empty job: its round trip is the sandbox's fixed cost."""


def evaluation_job(epochs: int) -> dict:
    from torchscout.agent.task import Task

    task = Task.model_validate({"name": "bench", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
                                "metric": "accuracy", "mode": "max", "seed": 0})
    return {"key": "c0/quick/bench", "kind": "quick", "candidate_id": "c0", "training": {"optimizer": "Adam",
            "lr": 0.003}, "seed": 0, "epochs": epochs, "max_steps": None, "task": task.model_dump(mode="json"),
            "run_dir": "runs/bench", "tokenizers": {}, "reserve_s": 0.0, "time_left_s": 600.0,
            "candidate": {"candidate_id": "c0", "script": "models/small_cnn.py", "class_name": "SmallCNN"}}


def _timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on both sides")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="torchscout-bench-sandbox-"))
    os.environ.update(TORCHSCOUT_WORKSPACE=str(workspace), TORCHSCOUT_PROGRESS="0", WANDB_MODE="disabled")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    (workspace / "models").mkdir()
    (workspace / "models" / "small_cnn.py").write_text(MODEL_SOURCE)

    import torch

    from evals import bench_sandbox
    from torchscout.graphs.evaluate import eval_config, evaluate_confined, evaluate_job
    from torchscout.tools.sandbox import capabilities
    from torchscout.tools.sandbox.policy import make_policy
    from torchscout.tools.sandbox.runner import run_in_sandbox, warm_up

    if args.threads:
        torch.set_num_threads(args.threads)
    job = evaluation_job(args.epochs)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")
    print(f"sandbox on this kernel: {', '.join(capabilities.probe())}\n")
    start_s, _ = _timed(warm_up)
    print(f"fork server start (once per process): {start_s:.2f} s")

    inside, confined, child_side, empty = [], [], [], []
    for round_index in range(args.rounds + 1):
        seconds, record = _timed(evaluate_job, job, eval_config(job, 600.0), "accuracy")
        assert record["status"] == "completed", record
        confined_s, confined_record = _timed(evaluate_confined, job, 600.0)
        assert confined_record["status"] == "completed", confined_record
        empty_s, result = _timed(lambda: run_in_sandbox(bench_sandbox.noop, {}, profile="evaluation"))
        assert result.ok, result.error_text()
        if round_index:  # the first round warms both sides up
            inside.append(seconds)
            confined.append(confined_s)
            child_side.append(confined_record["duration_s"])
            empty.append(empty_s)
    policy_s = statistics.median(_timed(lambda: make_policy("evaluation", temp_dir=str(workspace)))[0]
                                 for _ in range(20))
    inside_s, confined_s = statistics.median(inside), statistics.median(confined)
    print(f"\nquick evaluation, median of {args.rounds} rounds after a warm-up:")
    print(f"  in process : {inside_s:.3f} s")
    print(f"  confined   : {confined_s:.3f} s   ratio {confined_s / inside_s:.3f} (target < 1.05)")
    print("\nwhere the confined side's time goes:")
    print(f"  building the policy           {policy_s * 1000:7.1f} ms")
    print(f"  an empty job's round trip     {statistics.median(empty) * 1000:7.1f} ms  (fork, namespaces, "
          "Landlock, limits, reply)")
    print(f"  the evaluation in the child   {statistics.median(child_side) * 1000:7.1f} ms  "
          f"(in process: {inside_s * 1000:.1f} ms)")


if __name__ == "__main__":
    main()

"""Benchmark: what the kernel sandbox costs a quick evaluation, both sides in one process.

The same evaluation job (a small CNN, the research graph's own
:func:`torchscout.graphs.evaluate.evaluate_job`) runs in turns, at two sizes (``SIZES``: digits for
3 epochs, a fraction of a second; an MNIST-sized dummy set for 1 epoch, a few seconds):

1. **in process** -- ``evaluate_job(job)`` called here, as the graph did before the sandbox;
2. **confined** -- ``evaluate_confined(job)``: the warm fork server forks the job process as PID 1
   of a new PID namespace; it enters its own mount, IPC and network namespaces, applies limits and
   Landlock, runs the same function and sends the record back.

Reported per size: the median wall time of each side over ``--rounds`` rounds (the first round of
each side is a warm-up), their ratio (target: under 1.05), and where the confined side's extra time
goes (a cost that does not grow with the evaluation, so its share shrinks as evaluations get longer): building the policy (``make_policy``), an empty job's round trip (fork, namespaces,
Landlock, limits, reply), and the evaluation measured inside the child.
On a busy machine the numbers are noisy; ``--threads 1`` steadies them::

    .venv/bin/python evals/bench_sandbox.py
    .venv/bin/python evals/bench_sandbox.py --rounds 9 --threads 1
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


# the two quick evaluations measured: the research tests' (digits, 3 epochs: a fraction of a second)
# and an MNIST-sized one (a seeded dummy set of 6,000 1x28x28 images, 1 epoch: a few seconds)
SIZES = {
    "digits, 3 epochs": ({"dataset": "digits", "input_shape": [1, 8, 8]}, 3),
    "MNIST-sized, 1 epoch": ({"dataset": "dummy", "input_shape": [1, 28, 28],
                              "dataset_params": {"num_samples": 6000, "val_samples": 1000}}, 1),
}


def evaluation_job(task_fields: dict, epochs: int) -> dict:
    from torchscout.agent.task import Task

    task = Task.model_validate({"name": "bench", "num_classes": 10, "metric": "accuracy", "mode": "max", "seed": 0,
                                **task_fields})
    return {"key": "c0/quick/bench", "kind": "quick", "candidate_id": "c0", "training": {"optimizer": "Adam",
            "lr": 0.003}, "seed": 0, "epochs": epochs, "max_steps": None, "task": task.model_dump(mode="json"),
            "run_dir": "runs/bench", "tokenizers": {}, "reserve_s": 0.0, "time_left_s": 600.0,
            "candidate": {"candidate_id": "c0", "script": "models/small_cnn.py", "class_name": "SmallCNN"}}


def _timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


def measure(job: dict, rounds: int) -> dict[str, float]:
    """Medians over ``rounds`` (after one warm-up round) of both sides, taking turns."""
    from evals import bench_sandbox
    from torchscout.graphs.evaluate import eval_config, evaluate_confined, evaluate_job
    from torchscout.tools.sandbox.runner import run_in_sandbox

    samples: dict[str, list[float]] = {"inside": [], "confined": [], "child": [], "empty": []}
    for round_index in range(rounds + 1):
        seconds, record = _timed(evaluate_job, job, eval_config(job, 600.0), "accuracy")
        assert record["status"] == "completed", record
        confined_s, confined_record = _timed(evaluate_confined, job, 600.0)
        assert confined_record["status"] == "completed", confined_record
        empty_s, result = _timed(lambda: run_in_sandbox(bench_sandbox.noop, {}, profile="evaluation"))
        assert result.ok, result.error_text()
        if round_index:  # the first round warms both sides up
            for name, value in (("inside", seconds), ("confined", confined_s),
                                ("child", confined_record["duration_s"]), ("empty", empty_s)):
                samples[name].append(value)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on both sides")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="torchscout-bench-sandbox-"))
    os.environ.update(TORCHSCOUT_WORKSPACE=str(workspace), TORCHSCOUT_PROGRESS="0", WANDB_MODE="disabled")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    (workspace / "models").mkdir()
    (workspace / "models" / "small_cnn.py").write_text(MODEL_SOURCE)

    import torch

    from torchscout.tools.sandbox import capabilities
    from torchscout.tools.sandbox.policy import make_policy
    from torchscout.tools.sandbox.runner import warm_up

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}")
    print(f"sandbox on this kernel: {', '.join(capabilities.probe())}\n")
    start_s, _ = _timed(warm_up)
    print(f"fork server start (once per process): {start_s:.2f} s")
    policy_s = statistics.median(_timed(lambda: make_policy("evaluation", temp_dir=str(workspace)))[0]
                                 for _ in range(20))
    for label, (task_fields, epochs) in SIZES.items():
        result = measure(evaluation_job(task_fields, epochs), args.rounds)
        print(f"\nquick evaluation, {label}; median of {args.rounds} rounds after a warm-up:")
        print(f"  in process : {result['inside']:.3f} s")
        print(f"  confined   : {result['confined']:.3f} s   ratio {result['confined'] / result['inside']:.3f} "
              "(target < 1.05)")
        print("  where the confined side's time goes:")
        print(f"    building the policy           {policy_s * 1000:7.1f} ms")
        print(f"    an empty job's round trip     {result['empty'] * 1000:7.1f} ms  (fork, namespaces, Landlock, "
              "limits, reply)")
        print(f"    the evaluation in the child   {result['child'] * 1000:7.1f} ms  (in process: "
              f"{result['inside'] * 1000:.1f} ms)")


if __name__ == "__main__":
    main()

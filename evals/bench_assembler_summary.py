"""Benchmark: the builtin assembler per config, and pytorch_model_summary vs torchinfo on ResNet-50.

What it measures, side by side in one run on this machine:

1. ``pytorch_model_assembler`` with the builtin backend on the 20 blueprints of
   ``evals/assembler_corpus.json`` (MLPs, CNNs, residual/parallel streams, LSTM/GRU/
   Transformer text models, Conv1d/Conv3d, autoencoders): wall time per config *including*
   the sandboxed validation (import, instantiate, forward a dummy batch). Target: < 0.5 s each.
   The fork server's one-time start (importing torch once) is reported separately.
2. ResNet-50 at 1x3x224x224: ``pytorch_model_summary`` end to end (load the script in the
   sandbox, build, measure FLOPs, per-layer rows, table) against torchinfo's ``summary``
   doing the same work in-process (import the script, build the model, ``summary(...)``),
   and against torchinfo's ``summary`` alone on an already-built model. Target: no slower
   than torchinfo.

Run: ``.venv/bin/python evals/bench_assembler_summary.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESNET50_SCRIPT = """
from torchvision.models.resnet import Bottleneck, ResNet


class ResNet50(ResNet):
    def __init__(self) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3])
"""


def _machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}")


def bench_assembler(workspace: Path) -> list[tuple[str, float, int]]:
    from torchscout.tools.modeling.assembler import pytorch_model_assembler

    corpus = json.loads((HERE / "assembler_corpus.json").read_text())
    rows = []
    for config in corpus:
        started = time.perf_counter()
        result = pytorch_model_assembler(config, f"bench/{config['model_name'].lower()}.py")
        rows.append((config["model_name"], time.perf_counter() - started, result["total_params"]))
    return rows


def bench_summary(workspace: Path, repeats: int) -> dict[str, list[float]]:
    import torch
    from torchinfo import summary

    from torchscout.tools.loading import load_class
    from torchscout.tools.modeling.summary import pytorch_model_summary

    script = workspace / "resnet50.py"
    script.write_text(RESNET50_SCRIPT)
    times: dict[str, list[float]] = {"torchscout": [], "torchinfo (load + build + summary)": [],
                                     "torchinfo (summary only)": []}
    for _ in range(repeats):
        started = time.perf_counter()
        ours = pytorch_model_summary("resnet50.py", "ResNet50", [1, 3, 224, 224])
        times["torchscout"].append(time.perf_counter() - started)

        started = time.perf_counter()
        model = load_class("resnet50.py", "ResNet50", base=torch.nn.Module)()
        built = time.perf_counter()
        theirs = summary(model, input_size=(1, 3, 224, 224), verbose=0)
        finished = time.perf_counter()
        times["torchinfo (load + build + summary)"].append(finished - started)
        times["torchinfo (summary only)"].append(finished - built)
    assert ours["total_params"] == theirs.total_params, (ours["total_params"], theirs.total_params)
    print(f"  ResNet-50 check: params {ours['total_params']:,} (torchinfo {theirs.total_params:,}), "
          f"MACs {ours['macs'] / 1e9:.2f} G (torchinfo {theirs.total_mult_adds / 1e9:.2f} G), "
          f"measured on {ours['measured_on']}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="summary repetitions (median reported)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="torchscout-bench-") as folder:
        workspace = Path(folder)
        os.environ["TORCHSCOUT_WORKSPACE"] = str(workspace)
        os.environ.setdefault("TORCHSCOUT_LLM", "builtin")
        os.chdir(workspace)
        from torchscout.tools.sandbox.runner import warm_up

        print(f"machine: {_machine()}")
        started = time.perf_counter()
        warm_up()
        print(f"sandbox fork server start (once per process): {time.perf_counter() - started:.2f} s\n")

        print("1. builtin assembler, 20-config corpus (time per config includes sandboxed validation)")
        rows = bench_assembler(workspace)
        for name, seconds, params in rows:
            print(f"  {name:<24} {seconds * 1000:7.0f} ms  {params:>12,} params")
        durations = [seconds for _, seconds, _ in rows]
        over = [name for name, seconds, _ in rows if seconds >= 0.5]
        print(f"  median {statistics.median(durations) * 1000:.0f} ms, max {max(durations) * 1000:.0f} ms, "
              f"mean {statistics.mean(durations) * 1000:.0f} ms; target < 500 ms each: "
              f"{'met' if not over else 'missed by ' + ', '.join(over)}\n")

        print(f"2. summary of ResNet-50 at 1x3x224x224 (median of {arguments.repeats})")
        times = bench_summary(workspace, arguments.repeats)
        ours = statistics.median(times["torchscout"])
        for label, values in times.items():
            median = statistics.median(values)
            print(f"  {label:<38} {median * 1000:7.0f} ms  (torchscout / this = {ours / median:.2f}x)")
        reference = statistics.median(times["torchinfo (load + build + summary)"])
        print(f"  target 'no slower than torchinfo' (same work: load + build + summary): "
              f"{'met' if ours <= reference else 'missed'}")


if __name__ == "__main__":
    sys.exit(main())

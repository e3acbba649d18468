"""Benchmark: the builtin assembler per config, and pytorch_model_summary vs torchinfo over torchvision's zoo.

What it measures, side by side in one run on this machine:

1. ``pytorch_model_assembler`` with the builtin backend on the 20 blueprints of
   ``evals/assembler_corpus.json`` (MLPs, CNNs, residual/parallel streams, LSTM/GRU/
   Transformer text models, Conv1d/Conv3d, autoencoders): wall time per config *including*
   the sandboxed validation (import, instantiate, forward a dummy batch). Target: < 0.5 s each.
   The fork server's one-time start (importing torch once) is reported separately.
2. Every torchvision classification model (``torchvision.models.list_models``), at the input size
   of its published weights: ``pytorch_model_summary`` end to end (load the factory function from a
   workspace file in the sandbox, build, measure FLOPs and per-layer rows, write the table) against
   torchinfo doing the same work in-process from the same file (import it, build the model,
   ``summary(...)``). Checks: parameters equal to the weights' ``meta["num_params"]`` and MACs equal
   to ``meta["_ops"]`` (GFLOPs there are multiply-accumulates, rounded to 3 decimals). Targets:
   every summary under 5 s, median time well under torchinfo's.

Run: ``.venv/bin/python evals/bench_assembler_summary.py [--models resnet50,regnet_y_400mf] [--no-torchinfo]``
(the whole zoo takes several minutes, nearly all of it torchinfo's real builds and forward passes).
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
ZOO_SCRIPT = "from torchvision.models import *  # noqa: F403 - every factory function, by name\n"
SECONDS_LIMIT = 5.0
# the published GoogLeNet has no auxiliary classifiers (its builder drops them once weights are loaded);
# without weights the constructor keeps them, so both sides build the published configuration
PUBLISHED_KWARGS = {"googlenet": {"aux_logits": False}}


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


def zoo(names: list[str] | None) -> list[tuple[str, list[int], int, float]]:
    """(model, input size, published parameters, published GMACs) of each classification model: the
    published weights with the smallest crop (the size its default constructor is built for)."""
    import torchvision

    rows = []
    for name in names or torchvision.models.list_models(module=torchvision.models):
        weights = min(torchvision.models.get_model_weights(name), key=lambda entry: entry.transforms().crop_size[0])
        crop = weights.transforms().crop_size[0]
        rows.append((name, [1, 3, crop, crop], weights.meta["num_params"], weights.meta["_ops"]))
    return rows


def _torchinfo(name: str, input_size: list[int]) -> tuple[float, int]:
    import torch
    from torchinfo import summary

    from torchscout.tools.loading import load_module

    started = time.perf_counter()
    model = getattr(load_module("zoo.py"), name)(**PUBLISHED_KWARGS.get(name, {}))
    with torch.no_grad():
        stats = summary(model, input_size=input_size, verbose=0)
    return time.perf_counter() - started, stats.total_params


def bench_zoo(workspace: Path, names: list[str] | None, with_torchinfo: bool) -> list[dict]:
    from torchscout.tools.modeling.summary import pytorch_model_summary

    (workspace / "zoo.py").write_text(ZOO_SCRIPT)
    rows = []
    for name, input_size, published_params, published_gmacs in zoo(names):
        started = time.perf_counter()
        ours = pytorch_model_summary("zoo.py", name, input_size, model_kwargs=PUBLISHED_KWARGS.get(name))
        row = {"name": name, "input": input_size[-1], "ours_s": time.perf_counter() - started,
               "params_ok": ours["total_params"] == published_params,
               "macs_ok": abs(ours["macs"] / 1e9 - published_gmacs) <= 0.0005 + 1e-9,
               "gmacs": ours["macs"] / 1e9, "published_gmacs": published_gmacs, "chars": len(json.dumps(ours))}
        if with_torchinfo:
            row["torchinfo_s"], torchinfo_params = _torchinfo(name, input_size)
            row["torchinfo_params_ok"] = torchinfo_params == published_params
        rows.append(row)
        theirs = f"{row['torchinfo_s']:7.2f} s  ratio {row['ours_s'] / row['torchinfo_s']:5.2f}" if with_torchinfo else ""
        print(f"  {name:<22} {input_size[-1]:>3}px  ours {row['ours_s']:5.2f} s  torchinfo {theirs}  "
              f"params {'ok' if row['params_ok'] else 'DIFFER'}  MACs {row['gmacs']:.3f} G "
              f"({'ok' if row['macs_ok'] else 'published ' + str(published_gmacs)})  answer {row['chars']:,} chars",
              flush=True)
    return rows


def report_zoo(rows: list[dict]) -> None:
    ours = [row["ours_s"] for row in rows]
    over = [row["name"] for row in rows if row["ours_s"] > SECONDS_LIMIT]
    print(f"  {len(rows)} models: ours median {statistics.median(ours):.2f} s, max {max(ours):.2f} s "
          f"({max(rows, key=lambda row: row['ours_s'])['name']}); over {SECONDS_LIMIT:.0f} s: {over or 'none'}")
    if "torchinfo_s" in rows[0]:
        ratios = [row["ours_s"] / row["torchinfo_s"] for row in rows]
        print(f"  torchinfo median {statistics.median(row['torchinfo_s'] for row in rows):.2f} s; "
              f"ours / torchinfo: median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x")
    print(f"  parameters equal to torchvision's num_params: {sum(row['params_ok'] for row in rows)}/{len(rows)}; "
          f"MACs equal to _ops (3 decimals): {sum(row['macs_ok'] for row in rows)}/{len(rows)}; "
          f"largest answer {max(row['chars'] for row in rows):,} characters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated torchvision model names (default: the whole zoo)")
    parser.add_argument("--no-torchinfo", action="store_true", help="time only pytorch_model_summary")
    parser.add_argument("--skip-assembler", action="store_true", help="only the summary benchmark")
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

        if not arguments.skip_assembler:
            print("1. builtin assembler, 20-config corpus (time per config includes sandboxed validation)")
            rows = bench_assembler(workspace)
            for name, seconds, params in rows:
                print(f"  {name:<24} {seconds * 1000:7.0f} ms  {params:>12,} params")
            durations = [seconds for _, seconds, _ in rows]
            over = [name for name, seconds, _ in rows if seconds >= 0.5]
            print(f"  median {statistics.median(durations) * 1000:.0f} ms, max {max(durations) * 1000:.0f} ms, "
                  f"mean {statistics.mean(durations) * 1000:.0f} ms; target < 500 ms each: "
                  f"{'met' if not over else 'missed by ' + ', '.join(over)}\n")

        print("2. summary of torchvision's classification models, ours vs torchinfo (same file, build included)")
        names = arguments.models.split(",") if arguments.models else None
        report_zoo(bench_zoo(workspace, names, not arguments.no_torchinfo))


if __name__ == "__main__":
    sys.exit(main())

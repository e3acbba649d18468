"""Run torchscout's evals and write the results and a scoreboard.

    python evals/run.py --suite quick   # tool evals + research evals on digits and the synthetic text task
    python evals/run.py --suite full    # every example task (evals/eval_tasks.py) with a wall-clock budget
                                        # and no round limit, plus cifar10 when its data is present
    python evals/run.py --suite llm     # the LLM side (needs TORCHSCOUT_LLM or --llm; skipped otherwise)
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python evals/run.py --suite llm --llm openai:NAME

Everything runs in a fresh temporary workspace (``--workspace`` to keep it) with fixed seeds,
W&B disabled. Writes ``evals/results/<timestamp>.json`` (every number) and
``evals/results/scoreboard.md`` (the latest scoreboard; also ``<timestamp>.md``).
``quick`` finishes within 15 minutes on 2 CPU cores; ``full`` takes a few hours (each task: the
planner's budget three times, for the planner and the two search baselines, plus seed replicas).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # `evals` is a folder of the repository, not part of the installed package
    sys.path.insert(0, str(REPO_ROOT))

RESULTS_DIR = REPO_ROOT / "evals" / "results"
logger = logging.getLogger("evals")


def machine() -> dict[str, Any]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {"cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "device": device, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def run_suite(suite: str, seed: int) -> dict[str, Any]:
    """Every eval of ``suite`` in the current workspace; returns the results dict."""
    from evals.llm_evals import run_llm_evals
    from evals.research_evals import run_research_evals
    from evals.tool_evals import run_tool_evals

    results: dict[str, Any] = {}
    if suite in ("quick", "full"):
        started = time.monotonic()
        results["tool_evals"] = run_tool_evals(seed)
        logger.info("tool evals: %.0fs", time.monotonic() - started)
        started = time.monotonic()
        results["research_evals"] = run_research_evals(suite, seed)
        logger.info("research evals: %.0fs", time.monotonic() - started)
    if suite in ("llm", "full"):
        results["llm_evals"] = run_llm_evals(seed)
    return results


def write_results(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``<timestamp>.json`` and ``scoreboard.md`` (+ ``<timestamp>.md``), each written atomically."""
    from evals.scoreboard import render_scoreboard
    from torchscout.tools.workspace import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace(":", "").replace("-", "")
    json_path = out_dir / f"{stamp}.json"
    results["results_file"] = json_path.name
    atomic_write_text(json_path, json.dumps(results, indent=2, default=str) + "\n")
    board = render_scoreboard(results)
    atomic_write_text(out_dir / f"{stamp}.md", board)
    scoreboard = out_dir / "scoreboard.md"
    atomic_write_text(scoreboard, board)
    return json_path, scoreboard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["quick", "full", "llm"], default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, default=None,
                        help="Workspace to run in (default: a fresh temporary folder, removed afterwards).")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="Where results and the scoreboard go.")
    parser.add_argument("--llm", default=None, help="The chat model (an init_chat_model spec such as openai:NAME; "
                                                    "with OPENAI_BASE_URL any OpenAI-compatible server).")
    args = parser.parse_args(argv)

    from torchscout.settings import configure

    with tempfile.TemporaryDirectory(prefix="torchscout-evals-") as scratch:
        workspace = (args.workspace or Path(scratch)).resolve()
        workspace.mkdir(parents=True, exist_ok=True)
        os.chdir(workspace)
        configure(workspace=workspace, wandb_mode="disabled", progress=False, llm=args.llm)
        started = time.monotonic()
        results = {"suite": args.suite, "seed": args.seed, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "machine": machine(), **run_suite(args.suite, args.seed)}
        results["duration_s"] = round(time.monotonic() - started, 1)
    json_path, scoreboard = write_results(results, args.out.resolve())
    logger.info("results: %s; scoreboard: %s (%.0fs)", json_path, scoreboard, results["duration_s"])
    print(scoreboard.read_text(encoding="utf-8"))  # the CLI's output: the scoreboard itself
    return 0


def configure_logging() -> None:
    """Progress of the evals on stderr; the libraries' own chatter only from warnings up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("torchscout", "httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    configure_logging()
    sys.exit(main())

"""Entry point of one training process: ``python -m torchscout.tools.training.launch MODEL.py CLASS CONFIG.yaml``.

``torchscout train`` runs it directly for one process, or as the worker of
``torchrun --standalone --nproc_per_node N`` for several (DDP over gloo on CPU, nccl on CUDA).
Rank 0 prints the result as JSON on stdout; the other ranks print nothing. The exit status is 0
whenever a result was produced, whatever its ``status``; it is non-zero only when the process crashed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.sandbox.commands import MAX_TIMEOUT_S, run_command
from torchscout.tools.training.experiment import experiment_name_or_timestamp
from torchscout.tools.training.rank_logs import RANK_LOGS, failure_report
from torchscout.tools.training.types import FullTrainAnswer
from torchscout.tools.workspace import relative_to_workspace, resolve

DEFAULT_DISTRIBUTED_TIMEOUT_S = float(MAX_TIMEOUT_S)


def read_config(path: str) -> dict[str, Any]:
    """A trainer_config from a YAML (or JSON) file; a top-level ``trainer_config`` key is unwrapped."""
    file = resolve(path, must_exist=True, kind="config path")
    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ToolError(f"{path} is not valid YAML: {exc}") from exc
    if isinstance(loaded, dict) and isinstance(loaded.get("trainer_config"), dict):
        loaded = loaded["trainer_config"]
    if not isinstance(loaded, dict):
        raise ToolError(f"{path} must hold a mapping of trainer_config keys")
    return loaded


def torchrun_command(model: str, class_name: str, config: str, experiment_name: str, log_base_dir: str,
                     nproc: int, log_dir: Path) -> list[str]:
    # every worker's stdout and stderr go to its own file under log_dir (kept with the experiment)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "--log-dir", str(log_dir), "--redirects", "3",
            "-m", "torchscout.tools.training.launch", model, class_name, config,
            "--experiment-name", experiment_name, "--log-base-dir", log_base_dir]


def run_distributed(model: str, class_name: str, config: str, experiment_name: str | None, log_base_dir: str,
                    nproc: int, timeout_s: float = DEFAULT_DISTRIBUTED_TIMEOUT_S) -> FullTrainAnswer:
    """Run the full trainer in ``nproc`` processes under torchrun; returns rank 0's result.

    ``timeout_s`` bounds the whole run (default: the config's ``time_budget_s`` plus ten minutes
    when it has one, else 24 hours).
    """
    trainer_config = read_config(config)  # fail here, once, rather than in every worker
    if timeout_s == DEFAULT_DISTRIBUTED_TIMEOUT_S and trainer_config.get("time_budget_s"):
        timeout_s = float(trainer_config["time_budget_s"]) + 600.0
    name = experiment_name_or_timestamp(experiment_name)
    log_dir = resolve(Path(log_base_dir) / name / RANK_LOGS, kind="log_base_dir/experiment_name")
    command = torchrun_command(model, class_name, config, name, log_base_dir, nproc, log_dir)
    settings = get_settings()
    # the workers must see the same workspace and data dir, even when they were set with configure()
    env = {**os.environ, "TORCHSCOUT_WORKSPACE": str(settings.workspace), "TORCHSCOUT_DATA_DIR": str(settings.data_dir)}
    # the user's own training (`torchscout train --nproc`): not confined (policy=None), but run_command
    # kills torchrun and every worker (one process group) if a wedged collective would otherwise keep
    # the caller waiting for ever
    completed = run_command(command, timeout_s=timeout_s, cwd=settings.workspace, env=env, policy=None)
    shown_as = relative_to_workspace(log_dir)
    if completed.timed_out:
        raise ToolError(f"torchrun with {nproc} processes ran past {timeout_s:.0f} s and was killed "
                        f"(each rank's output: {shown_as}):\n"
                        + "\n".join(completed.output.strip().splitlines()[-30:]))
    if completed.exit_code != 0:
        report = failure_report(completed.output, log_dir, shown_as)
        raise ToolError(f"torchrun with {nproc} processes failed (exit {completed.exit_code}):\n{report}")
    result_file = resolve(Path(log_base_dir) / name / "result.json", must_exist=True, kind="result file")
    return json.loads(result_file.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    from torchscout.tools.sandbox.allocator import keep_freed_memory
    from torchscout.tools.training.distributed import shutdown

    keep_freed_memory()  # a process that exists to train: each step reuses the last one's pages
    from torchscout.tools.training.evaluation import pytorch_full_trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_script_path")
    parser.add_argument("model_class_name")
    parser.add_argument("config_path")
    parser.add_argument("--experiment-name", default=None)
    parser.add_argument("--log-base-dir", default="full_experiments")
    args = parser.parse_args(argv)
    try:
        result = pytorch_full_trainer(args.model_script_path, args.model_class_name,
                                      read_config(args.config_path), experiment_name=args.experiment_name,
                                      log_base_dir=args.log_base_dir)
    except BaseException:
        shutdown(together=False)
        raise
    shutdown(together=True)
    if int(os.environ.get("RANK", "0")) == 0:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    # a diverged or failed run is still a result (written to result.json, status says which); a non-zero
    # exit would make torchrun report a crashed worker and run_distributed hide that result
    return 0


def exit_worker(code: int) -> None:
    """End a torchrun worker without the interpreter's teardown.

    The run is over and its files are written; what finalisation would still do is destroy objects
    left from training (the DDP reducer, gloo's work objects and the tensors they hold) after the
    process group is gone, with C++ threads racing the interpreter's shutdown: a known way for a
    rank to die of SIGABRT after a successful run. Flush, then leave.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_worker(main())

"""``torchscout train MODEL.py CLASS CONFIG.yaml``: the full trainer from the command line.

With ``--nproc N`` (N > 1) it runs the same engine under ``torchrun --standalone`` with
DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes the experiment folder.
"""

from __future__ import annotations

import json

import typer

from torchscout.tools.errors import ToolError


def train_command(
    model_script_path: str = typer.Argument(..., help="Workspace .py file defining the model, or an installed "
                                            "module such as torchvision.models."),
    model_class_name: str = typer.Argument(..., help="The nn.Module class or factory function in that file or "
                                           "module, e.g. resnet18."),
    config_path: str = typer.Argument(..., help="YAML file holding the trainer_config."),
    experiment_name: str = typer.Option(None, "--experiment-name", "-n", help="Run folder name (default: timestamp)."),
    log_base_dir: str = typer.Option("full_experiments", "--log-base-dir", help="Folder holding the run folders."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes (DDP under torchrun when > 1)."),
) -> None:
    """Train a model with the full trainer and print its result as JSON (exit 1 unless completed)."""
    from torchscout.tools.sandbox.allocator import keep_freed_memory
    from torchscout.tools.training.evaluation import pytorch_full_trainer
    from torchscout.tools.training.launch import read_config, run_distributed

    keep_freed_memory()  # this process exists to train: each step reuses the last one's pages
    try:
        if nproc > 1:
            result = run_distributed(model_script_path, model_class_name, config_path, experiment_name,
                                     log_base_dir, nproc)
        else:
            result = pytorch_full_trainer(model_script_path, model_class_name, read_config(config_path),
                                          experiment_name=experiment_name, log_base_dir=log_base_dir)
    except ToolError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2, default=str))
    if result["status"] != "completed":
        raise typer.Exit(1)

"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model, optimizer and scheduler state, the loop state (epoch, step,
history, best metric, early-stopping counter) and every RNG state (torch CPU and CUDA, numpy,
Python). RNG states are stored as tensors and lists so the file loads with
``torch.load(weights_only=True)`` -- no arbitrary pickles. Writes go to a temporary file that is
renamed over the target, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np
import torch

from torchscout.tools.errors import ToolError
from torchscout.tools.training.engine import LoopState, Run
from torchscout.tools.training.types import SavedLoopState
from torchscout.tools.workspace import atomic_writer

CHECKPOINT_FORMAT = 1


class NumpyRngState(TypedDict):
    kind: str
    keys: torch.Tensor  # the uint32 key array, as int64
    position: int
    has_gauss: int
    cached: float


class PythonRngState(TypedDict):
    version: int
    internal: list[int]
    gauss: float | None


class RngState(TypedDict):
    torch: torch.Tensor
    cuda: list[torch.Tensor]  # one state per device; empty without CUDA
    numpy: NumpyRngState
    python: PythonRngState


class CheckpointPayload(TypedDict):
    """What a checkpoint file holds (tensors, lists and numbers only: ``weights_only`` loads it)."""

    format: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch's Optimizer.state_dict()
    scheduler: dict[str, Any] | None  # the lr scheduler's state_dict()
    state: SavedLoopState
    rng: RngState


def capture_rng() -> RngState:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def restore_rng(saved: RngState) -> None:
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    numpy_state = saved["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached"]))
    python_state = saved["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss"]))


def save_checkpoint(path: Path, run: Run, state: LoopState) -> Path:
    payload: CheckpointPayload = {
        "format": CHECKPOINT_FORMAT,
        "model": run.raw_model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.scheduler.state_dict() if run.scheduler else None,
        "state": state.to_dict(),
        "rng": capture_rng(),
    }
    with atomic_writer(path, "wb") as handle:
        torch.save(payload, handle)
    return path


def load_checkpoint(path: Path) -> CheckpointPayload:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ToolError(f"cannot read the checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ToolError(f"{path} is not a torchscout checkpoint (format {CHECKPOINT_FORMAT})")
    return cast(CheckpointPayload, payload)  # written by save_checkpoint


def restore_checkpoint(payload: CheckpointPayload, run: Run) -> LoopState:
    """Load model, optimizer, scheduler and RNG states into ``run``; return the saved loop state."""
    run.raw_model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    if run.scheduler is not None and payload["scheduler"] is not None:
        run.scheduler.scheduler.load_state_dict(payload["scheduler"])
    restore_rng(payload["rng"])
    return LoopState(**payload["state"])


def load_weights(path: Path, model: torch.nn.Module) -> None:
    model.load_state_dict(load_checkpoint(path)["model"])

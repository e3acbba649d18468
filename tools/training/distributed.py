"""Running the same engine under ``torchrun``: process group, DDP wrapping, rank-0 decisions.

``torchrun --nproc_per_node N`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; :func:`context_from_env`
joins the process group (gloo on CPU, nccl on CUDA). Only rank 0 evaluates, logs and writes
checkpoints; it broadcasts each epoch's record so every rank takes the same early-stopping
decision. Outside torchrun everything here is a no-op with ``world_size == 1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0


def collective_timeout_s() -> float:
    """How long a rank waits in one collective: TORCHSCOUT_DIST_TIMEOUT_S, default 10 minutes."""
    raw = os.environ.get("TORCHSCOUT_DIST_TIMEOUT_S", "")
    try:
        value = float(raw) if raw else DEFAULT_COLLECTIVE_TIMEOUT_S
    except ValueError:
        value = DEFAULT_COLLECTIVE_TIMEOUT_S
    return value if value > 0 else DEFAULT_COLLECTIVE_TIMEOUT_S


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any_flag(self, flags: torch.Tensor) -> torch.Tensor:
        """Element-wise OR of a small flag tensor across ranks (so all ranks stop together)."""
        if self.enabled:
            flags = flags.clone()
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return flags

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item()) / self.world_size

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def context_from_env(device_type: str) -> DistContext:
    """Join the torchrun process group if this process is one of several; else a single-process context."""
    if not launched_by_torchrun():
        return DistContext()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # a rank that waits longer than this in a collective (its peer crashed or wedged) raises
        # instead of hanging until the backend's 30-minute default
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=collective_timeout_s()))
    return DistContext(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                       world_size=dist.get_world_size())


def wrap_model(model: nn.Module, context: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` when there are several processes."""
    if not context.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shutdown(together: bool = True) -> None:
    """Leave the process group (end of a torchrun worker).

    ``together`` (a rank that finished normally): wait at a barrier first, so no rank tears down its
    connections while a peer is still inside a collective or still receiving rank 0's result. A
    rank that failed leaves at once: its peers may never reach a barrier.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if together:
            dist.barrier()
    finally:
        dist.destroy_process_group()

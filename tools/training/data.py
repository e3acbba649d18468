"""Batches for the training loop: preloaded tensors on the device (fast path) or a DataLoader.

The fast path (like KellerJordan/cifar10-airbench): the split is decoded and normalised once,
moved to the device once, and every epoch is a seeded ``randperm`` sliced into batches -- no
per-sample Python, no PIL, no worker processes. Large datasets, and custom datasets unless the
config asks for ``preload``, stream through a ``DataLoader`` with workers and pinned memory.

Shuffling is seeded by ``(seed, epoch)``, so epoch 3 sees the same order whether or not the run
was resumed after epoch 2. Under DDP each rank takes every ``world``-th index of the same order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from torchscout.tools.training.datasets import Split, TensorSplit

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]
_DECODE_BATCH = 256


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling generator of one epoch: a pure function of the seed and the epoch number."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class PreloadedBatches:
    """A split held as tensors on the device; batches are index slices."""

    path = "preloaded"

    def __init__(self, split: TensorSplit, batch_size: int, device: torch.device, *, shuffle: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.inputs = split.inputs.to(device, non_blocking=True)
        self.targets = split.targets.to(device, non_blocking=True)
        self.batch_size, self.device, self.shuffle = batch_size, device, shuffle
        self.seed, self.rank, self.world_size = seed, rank, world_size
        total = len(split)
        # every rank must run the same number of steps, so drop the remainder of an uneven split
        self.num_samples = total // world_size if world_size > 1 else total

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (rest > 0 and not self._drops_single_sample_batch(rest))

    def _drops_single_sample_batch(self, rest: int) -> bool:
        # a batch of one breaks BatchNorm and adds noise; its sample comes back in the next epoch's order
        return self.shuffle and rest == 1 and self.num_samples > 1

    def _order(self, epoch: int) -> torch.Tensor | None:
        if not self.shuffle and self.world_size == 1:
            return None  # contiguous slices are views: no gather at all
        total = self.num_samples * self.world_size
        order = (torch.randperm(total, generator=epoch_generator(self.seed, epoch)) if self.shuffle
                 else torch.arange(total))
        if self.world_size > 1:
            order = order[self.rank::self.world_size]
        return order.to(self.device, non_blocking=True)

    def batches(self, epoch: int) -> Iterator[Batch]:
        order = self._order(epoch)
        for start in range(0, self.num_samples, self.batch_size):
            stop = min(start + self.batch_size, self.num_samples)
            if stop - start == 1 and self._drops_single_sample_batch(1):
                break
            if order is None:
                yield self.inputs[start:stop], self.targets[start:stop]
            else:
                index = order[start:stop]
                yield self.inputs[index], self.targets[index]

    def first_batch(self) -> Batch:
        return next(self.batches(0))


class LoaderBatches:
    """A split streamed through a DataLoader (workers and pinned memory where they help)."""

    path = "dataloader"

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, *, shuffle: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int | None = None) -> None:
        self.device, self.shuffle, self.seed = device, shuffle, seed
        self.sampler = (DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
                        if world_size > 1 else None)
        self.generator = torch.Generator()
        workers = default_num_workers(len(dataset)) if num_workers is None else num_workers
        self.loader = DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle and self.sampler is None, sampler=self.sampler,
            num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
            generator=self.generator, drop_last=False)
        self.num_samples = len(self.sampler) if self.sampler is not None else len(dataset)

    def __len__(self) -> int:
        return len(self.loader)

    def batches(self, epoch: int) -> Iterator[Batch]:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        for inputs, targets in self.loader:
            yield (inputs.to(self.device, non_blocking=True),
                   torch.as_tensor(targets).to(self.device, non_blocking=True))

    def first_batch(self) -> Batch:
        return next(self.batches(0))


BatchSource = PreloadedBatches | LoaderBatches


def default_num_workers(size: int) -> int:
    """Worker processes cost a second or more to start: only worth it for larger datasets."""
    if size < 20_000:
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def preload_budget_bytes(device: torch.device) -> int:
    """How many bytes of decoded data we are willing to keep resident on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        physical = 8 << 30
    return min(4 << 30, physical // 4)


def _estimated_bytes(dataset: Dataset) -> int:
    sample = dataset[0][0]
    sample = sample if isinstance(sample, torch.Tensor) else torch.as_tensor(sample)
    return len(dataset) * sample.numel() * max(sample.element_size(), 4)


def decode_to_tensors(dataset: Dataset, num_workers: int | None = None) -> TensorSplit:
    """Run the dataset's per-sample decoding once and keep the result as two tensors."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return TensorSplit(dataset.tensors[0], dataset.tensors[1])
    workers = default_num_workers(len(dataset)) if num_workers is None else num_workers
    inputs, targets = [], []
    for batch_inputs, batch_targets in DataLoader(dataset, batch_size=_DECODE_BATCH, num_workers=workers):
        inputs.append(batch_inputs)
        targets.append(torch.as_tensor(batch_targets))
    return TensorSplit(torch.cat(inputs), torch.cat(targets))


def should_preload(split: Split, device: torch.device, preload: bool | None, stream_by_default: bool) -> bool:
    if isinstance(split, TensorSplit):
        # already tensors: stream them only when the config insists (streaming only adds overhead)
        return preload is not False
    if preload is not None:
        return preload
    if stream_by_default:
        return False
    return _estimated_bytes(split) <= preload_budget_bytes(device)


def make_batches(split: Split, batch_size: int, device: torch.device, *, shuffle: bool, preload: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int | None = None) -> BatchSource:
    """The batch source for ``split``: preloaded tensors when ``preload``, else a DataLoader."""
    logger.debug("%d samples, batch %d, %s", len(split), batch_size, "preloaded" if preload else "dataloader")
    if preload:
        tensors = split if isinstance(split, TensorSplit) else decode_to_tensors(split, num_workers)
        return PreloadedBatches(tensors, batch_size, device, shuffle=shuffle, seed=seed, rank=rank,
                                world_size=world_size)
    dataset = split if not isinstance(split, TensorSplit) else TensorDataset(split.inputs, split.targets)
    return LoaderBatches(dataset, batch_size, device, shuffle=shuffle, seed=seed, rank=rank,
                         world_size=world_size, num_workers=num_workers)

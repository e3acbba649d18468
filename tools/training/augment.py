"""Data augmentation on device tensors: random crops (translations) and flips, seeded per epoch.

Like the rest of the fast path, augmentation works on whole batches already on the device: a
random crop pads the batch with zeros (the normalised mean) and gathers each sample's window at
its own random offset, a flip mirrors a random half of the batch. No per-sample Python, no PIL.

The offsets and flips are drawn from a generator seeded by ``(seed, epoch)``, so a run is
repeatable and epoch 3 augments the same way whether or not the run was resumed after epoch 2.
Random crops apply to images ``[C, H, W]`` (both spatial axes) and signals ``[C, L]`` (a random
shift in time); flips only to images, where left and right are interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional

from torchscout.tools.errors import ToolError
from torchscout.tools.training.config import AugmentConfig

Augment = Callable[[torch.Tensor], torch.Tensor]
_EPOCH_STREAM = 7_919  # keeps the augmentation draws apart from the shuffling generator of the same epoch


def _translate(inputs: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each sample shifted by its own random offset in ``[-pad, pad]`` along every spatial axis."""
    samples, channels, *spatial = inputs.shape
    padded = functional.pad(inputs, [pad, pad] * len(spatial))
    offsets = torch.randint(0, 2 * pad + 1, (len(spatial), samples), generator=generator).to(inputs.device)
    windows = [offsets[axis][:, None] + torch.arange(size, device=inputs.device)
               for axis, size in enumerate(spatial)]
    if len(spatial) == 1:
        return padded.gather(2, windows[0][:, None, :].expand(samples, channels, spatial[0]))
    height, width = spatial
    rows = padded.gather(2, windows[0][:, None, :, None].expand(samples, channels, height, padded.shape[3]))
    return rows.gather(3, windows[1][:, None, None, :].expand(samples, channels, height, width))


def _flip(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random half of the images mirrored left-right."""
    chosen = (torch.rand(inputs.shape[0], generator=generator) < 0.5).to(inputs.device)
    return torch.where(chosen[:, None, None, None], inputs.flip(-1), inputs)


class BatchAugmenter:
    """Applies :class:`AugmentConfig` to training batches; :meth:`for_epoch` gives one epoch's function."""

    def __init__(self, config: AugmentConfig, seed: int) -> None:
        self.config, self.seed = config, seed

    def check(self, inputs: torch.Tensor) -> None:
        """Raise ToolError when the inputs cannot take this augmentation (token ids, flat features)."""
        if not inputs.is_floating_point() or inputs.dim() not in (3, 4):
            raise ToolError(f"augment applies to float images [C, H, W] or signals [C, L]; these inputs are "
                            f"{inputs.dtype} of shape {list(inputs.shape[1:])}: remove augment")
        if self.config.horizontal_flip and inputs.dim() != 4:
            raise ToolError("augment.horizontal_flip applies to images [C, H, W] only: time or feature order "
                            "of a signal is not symmetric; remove it")
        if self.config.random_crop >= min(inputs.shape[2:]):
            raise ToolError(f"augment.random_crop {self.config.random_crop} must be smaller than the inputs' "
                            f"spatial size {list(inputs.shape[2:])}")

    def for_epoch(self, epoch: int) -> Augment:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + _EPOCH_STREAM)
        crop, flip = self.config.random_crop, self.config.horizontal_flip

        def augment(inputs: torch.Tensor) -> torch.Tensor:
            if crop:
                inputs = _translate(inputs, crop, generator)
            if flip:
                inputs = _flip(inputs, generator)
            return inputs

        return augment

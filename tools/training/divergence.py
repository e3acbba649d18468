"""Divergence beyond NaN: a finite loss that grew far above where training started.

A learning rate of 1e6 sends a cross-entropy of 2.3 to 10**5..10**9 and keeps it there, finite:
without this check the run "completed" with a useless model and a loss of 9.8e5. After every epoch
the loop compares the epoch's mean training loss with the loss of the very first step (the
untrained model's): more than ``GROWTH_FACTOR`` times it, plus ``GROWTH_MARGIN`` for losses that
start near zero, counts as diverged. A healthy run's loss falls below its start; even a poor one
stays within a few times it.
"""

from __future__ import annotations

import math

GROWTH_FACTOR = 10.0
GROWTH_MARGIN = 1.0


def loss_growth_problem(initial_loss: float | None, epoch_loss: float) -> str | None:
    """Why the epoch's mean loss means the run diverged, or None."""
    if initial_loss is None or not math.isfinite(initial_loss) or not math.isfinite(epoch_loss):
        return None  # a non-finite loss is caught step by step, with where it happened
    limit = GROWTH_FACTOR * abs(initial_loss) + GROWTH_MARGIN
    if epoch_loss <= limit:
        return None
    return (f"the training loss grew from {initial_loss:.4g} at the first step to an epoch mean of {epoch_loss:.4g} "
            f"(over {GROWTH_FACTOR:g}x the start): training diverged; lower the learning rate")

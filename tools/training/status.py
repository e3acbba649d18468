"""The words a training tool's result uses for how the run ended (``result["status"]``).

Kept apart from :mod:`~torchscout.tools.training.outcomes` (which needs torch) so the research
graph's records can build their status vocabulary on it without importing the training engine.
"""

from __future__ import annotations

from typing import Literal

# completed: trained to the end (or to its step/time budget); diverged: the loss went non-finite;
# failed: the model's code raised, the sanity check failed, or it ran out of memory.
TrainingStatus = Literal["completed", "diverged", "failed"]

COMPLETED: TrainingStatus = "completed"
DIVERGED: TrainingStatus = "diverged"
FAILED: TrainingStatus = "failed"

"""Where a training run's wall time goes: cheap ``perf_counter`` accounting by phase.

The engine and the two tools add seconds to a :class:`PhaseClock` as they go; the tools answer
with its totals (``timings``), so the benchmark and the research report can say how much of an
evaluation was optimizer steps and how much was everything around them. A phase is timed once
per epoch or per stage, never per step, so the accounting itself costs nothing measurable.

Phases (seconds, summed over epochs):

- ``startup_s``: the tool's own start (config validation, imports) before the data is touched;
- ``data_s``: building the dataset splits and batch sources (decoding, normalising, moving);
- ``setup_s``: model, loss, optimizer, scheduler (and the lr range test if asked);
- ``sanity_s``: the checks before training;
- ``train_steps_s``: the optimizer steps (forward, backward, step, the divergence check);
- ``validation_s``: the forward passes over the validation split;
- ``metrics_s``: per-epoch statistics (step losses, gradient norms, spikes) and metric updates;
- ``callbacks_s``: what callbacks do at an epoch's end (checkpoints, metrics file, curves, W&B);
- ``results_s``: the final evaluation and the answer (result.json for the full trainer).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("startup_s", "data_s", "setup_s", "sanity_s", "train_steps_s", "validation_s", "metrics_s",
          "callbacks_s", "results_s")
# the phases that are the work itself; the rest is what the run costs around it
WORK_PHASES = ("train_steps_s", "validation_s")


class PhaseClock:
    """Seconds per phase, accumulated."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def summary(self, total_s: float) -> dict[str, float]:
        """Each phase, the work's share of ``total_s`` and ``other_s`` (time no phase accounts for)."""
        timed = sum(self.seconds.values())
        work = sum(self.seconds.get(name, 0.0) for name in WORK_PHASES)
        summary = {name: round(value, 4) for name, value in self.seconds.items()}
        summary.update(other_s=round(max(0.0, total_s - timed), 4), total_s=round(total_s, 4),
                       work_fraction=round(work / total_s, 4) if total_s > 0 else 0.0)
        return summary


def record_preparation(clock: PhaseClock, timings: dict[str, float]) -> None:
    """``prepare_run``'s own split (``data_s`` and the whole ``setup_s``) as the clock's two phases."""
    data = timings.get("data_s", 0.0)
    clock.add("data_s", data)
    clock.add("setup_s", max(0.0, timings.get("setup_s", 0.0) - data))

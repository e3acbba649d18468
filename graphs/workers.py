"""How evaluations share a machine or a cluster: the worker plan (how many at once, threads and GPU
each), the numbered slots they hold while they run, and the wall time of jobs spread over them."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

# Evaluations at once by default on a CPU-only machine: one per core, at most this many (each holds
# its data set and model in memory; past a few, rungs wait on the slowest candidate anyway).
MAX_DEFAULT_CPU_WORKERS = 8


@dataclass(frozen=True)
class WorkerPlan:
    """How evaluations share the machine (or the cluster): how many at once, threads and GPUs each."""

    workers: int
    threads: int                      # torch intra-op threads of one evaluation
    gpus: tuple[str, ...] = ()        # the GPUs the slots take in turn (CUDA_VISIBLE_DEVICES names)

    def gpu_of(self, slot: int) -> str | None:
        return self.gpus[slot % len(self.gpus)] if self.gpus else None


def machine_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the host's count)."""
    return len(os.sched_getaffinity(0))


def visible_gpus() -> tuple[str, ...]:
    """The CUDA devices a child may use, by the names CUDA_VISIBLE_DEVICES gives them."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    named = [name.strip() for name in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if name.strip()]
    return tuple(named[:count]) if named else tuple(str(index) for index in range(count))


def plan_workers(requested: int | None, cores: int, gpus: tuple[str, ...] = (), *,
                 max_threads: int | None = None, default_cap: int | None = MAX_DEFAULT_CPU_WORKERS) -> WorkerPlan:
    """``requested`` workers (default: one per GPU, else one per core up to ``default_cap``).

    Each evaluation's torch threads are the cores split between the *default* number of workers (at
    most ``max_threads``: one node's cores on a cluster), whatever ``requested`` says: the thread count
    can change a float sum's rounding, so keeping it fixed per machine keeps every candidate's metrics
    the same with any number of workers. Fewer workers than the default leave cores idle.
    """
    cores = max(1, cores)
    if gpus:
        default = len(gpus)
    else:
        default = cores if default_cap is None else min(cores, default_cap)
    threads = max(1, cores // default)
    if max_threads is not None:
        threads = max(1, min(threads, max_threads))
    return WorkerPlan(workers=requested or default, threads=threads, gpus=gpus)


class Slots:
    """``count`` numbered slots; :meth:`held` waits for a free one and gives its number back after."""

    def __init__(self, count: int) -> None:
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(count):
            self._free.put(index)

    @contextmanager
    def held(self) -> Iterator[int]:
        index = self._free.get()
        try:
            yield index
        finally:
            self._free.put(index)


def parallel_wall_s(durations: list[float], workers: int) -> float:
    """Wall seconds ``workers`` slots take for jobs of ``durations`` (longest first, each to the slot free
    first): what the time budget must fit, rather than their sum."""
    loads = [0.0] * max(1, workers)
    for seconds in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)

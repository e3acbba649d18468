"""How evaluations share a machine or a cluster: the worker plan (how many at once, threads and GPU
each), the numbered slots they hold while they run, and the wall time of jobs spread over them."""

from __future__ import annotations

import heapq
import itertools
import os
import threading
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
    """``count`` numbered slots. :meth:`held` waits for a free one and gives its number back after;
    among waiting jobs the one with the highest ``priority`` goes first (a step's longest jobs start
    first, so its shortest fill the gaps at the end), then the first to come. :meth:`take_idle` takes
    a free slot only when no job waits: work that may be useless (speculation) never delays a real job.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._free = list(range(count))
        self._waiting: list[tuple[float, int]] = []   # heap of (-priority, arrival)
        self._arrivals = itertools.count()
        self._changed = threading.Condition()

    @contextmanager
    def held(self, priority: float = 0.0) -> Iterator[int]:
        index = self._acquire(priority)
        try:
            yield index
        finally:
            self.give_back(index)

    def _acquire(self, priority: float) -> int:
        entry = (-priority, next(self._arrivals))
        with self._changed:
            heapq.heappush(self._waiting, entry)
            while not (self._free and self._waiting[0] == entry):
                self._changed.wait()
            heapq.heappop(self._waiting)
            index = self._free.pop(0)
            self._changed.notify_all()  # the next waiter may take another free slot
            return index

    def take_idle(self) -> int | None:
        """A free slot's number when one is free and no job waits for it, else None (never blocks)."""
        with self._changed:
            if self._free and not self._waiting:
                return self._free.pop(0)
            return None

    def give_back(self, index: int) -> None:
        with self._changed:
            self._free.append(index)
            self._free.sort()
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._waiting)


def parallel_wall_s(durations: list[float], workers: int) -> float:
    """Wall seconds ``workers`` slots take for jobs of ``durations`` (longest first, each to the slot free
    first): what the time budget must fit, rather than their sum."""
    loads = [0.0] * max(1, workers)
    for seconds in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)

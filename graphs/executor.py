"""Where candidate evaluations run, and how many at once (``budget.workers``, the task's ``executor``).

Every evaluation is a LangGraph task sent with ``Send`` (see :mod:`torchscout.graphs.routing`), so the
graph's own thread pool already runs the tasks of one step side by side and checkpoints each one as
it finishes (``durability="sync"``): a crash loses only the evaluations in flight. What this module
adds is the limit and the place:

- a :class:`Slots` pool of ``workers`` numbered slots: a task holds one while its evaluation runs
  (the others wait for a free slot), so at most ``workers`` evaluations share the machine, each with
  ``threads`` torch threads (the cores split between them, so their thread pools do not fight) and,
  on a machine with GPUs, the GPU of its slot;
- the executor that runs the evaluation itself: :class:`LocalExecutor` sends it to this process's
  warm fork server (``graphs.evaluate.evaluate_confined``, confined as always), the Ray executor
  (:mod:`torchscout.graphs.ray_executor`) makes it a task of a Ray cluster, where it is confined the
  same way on the node that runs it.

Either way the record comes back into the node that waited for it, so the state, the checkpoints
and a resume are the same as with one worker. An evaluation's seed fixes its result; the thread
count can still change the last bits of a float sum, so runs are compared at the same ``threads``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch

from torchscout.agent.records import EvaluationRecord
from torchscout.agent.task import Task
from torchscout.graphs.evaluate import evaluate_confined
from torchscout.graphs.state import EvaluationJob

# Evaluations at once by default on a CPU-only machine: one per core, at most this many (each holds
# its data set and model in memory; past a few, rungs wait on the slowest candidate anyway).
MAX_DEFAULT_CPU_WORKERS = 8
# The graph's thread pool holds a thread per waiting evaluation plus a few for checkpoint writes.
POOL_HEADROOM = 4
RAY_DEFAULT_POOL = 64  # threads for a Ray run without budget.workers (the cluster's size is known later)


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
    """``requested`` workers (default: one per GPU, else one per core up to ``default_cap``), each with an
    equal share of ``cores`` as threads (at most ``max_threads``: one node's cores on a cluster)."""
    cores = max(1, cores)
    if requested is not None:
        workers = requested
    elif gpus:
        workers = len(gpus)
    else:
        workers = cores if default_cap is None else min(cores, default_cap)
    threads = max(1, cores // workers)
    if max_threads is not None:
        threads = max(1, min(threads, max_threads))
    return WorkerPlan(workers=workers, threads=threads, gpus=gpus)


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


class Executor(Protocol):
    """Runs one confined evaluation in a slot and returns its record (never raises for the candidate's faults)."""

    plan: WorkerPlan
    slots: Slots

    def evaluate(self, job: EvaluationJob, time_left_s: float, slot: int) -> EvaluationRecord: ...


class LocalExecutor:
    """Evaluations on this machine, through this process's warm fork server."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.slots = Slots(plan.workers)

    def evaluate(self, job: EvaluationJob, time_left_s: float, slot: int) -> EvaluationRecord:
        return evaluate_confined(job, time_left_s, threads=self.plan.threads, gpu=self.plan.gpu_of(slot))


_EXECUTORS: dict[tuple[str, str | None, int | None], Executor] = {}
_EXECUTORS_LOCK = threading.Lock()


def executor_for(task: Task) -> Executor:
    """The executor of ``task``'s evaluations, made once per process (a Ray one connects to its cluster)."""
    key = (task.executor, task.ray_address, task.budget.workers)
    with _EXECUTORS_LOCK:
        if key not in _EXECUTORS:
            if task.executor == "ray":
                from torchscout.graphs.ray_executor import RayExecutor

                _EXECUTORS[key] = RayExecutor(task.ray_address, task.budget.workers)
            else:
                _EXECUTORS[key] = LocalExecutor(plan_workers(task.budget.workers, machine_cores(), visible_gpus()))
        return _EXECUTORS[key]


def graph_threads(task: Task) -> int:
    """Threads the graph's pool needs so that every evaluation that may run at once has one."""
    if task.budget.workers is not None:
        workers = task.budget.workers
    elif task.executor == "ray":
        workers = RAY_DEFAULT_POOL
    else:
        workers = plan_workers(None, machine_cores(), visible_gpus()).workers
    return workers + POOL_HEADROOM


def parallel_wall_s(durations: list[float], workers: int) -> float:
    """Wall seconds ``workers`` slots take for jobs of ``durations`` (longest first, each to the slot free
    first): what the time budget must fit, rather than their sum."""
    loads = [0.0] * max(1, workers)
    for seconds in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)

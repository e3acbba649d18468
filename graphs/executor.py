"""Where candidate evaluations run, and how many at once (``budget.workers``, the task's ``executor``).

Every evaluation is a LangGraph task sent with ``Send`` (see :mod:`torchscout.graphs.routing`), so the
graph's own thread pool already runs the tasks of one step side by side and checkpoints each one as
it finishes (``durability="sync"``): a crash loses only the evaluations in flight. What this module
adds is the limit and the place:

- a :class:`~torchscout.graphs.workers.Slots` pool of ``workers`` numbered slots: a task holds one
  while its evaluation runs (the others wait for a free slot), so at most ``workers`` evaluations
  share the machine, each with ``threads`` torch threads (the cores split between the default number
  of workers, so their thread pools do not fight) and, on a machine with GPUs, the GPU of its slot;
- the executor that runs the evaluation itself: :class:`LocalExecutor` sends it to this process's
  warm fork server (``graphs.evaluate.evaluate_confined``, confined as always), the Ray executor
  (:mod:`torchscout.graphs.ray_executor`) makes it a task of a Ray cluster, where it is confined the
  same way on the node that runs it;
- on this machine, a :class:`~torchscout.graphs.speculation.Speculator` that runs the evaluations the
  next decision will likely ask for in the slots a step leaves idle (the search and its metrics stay
  exactly those of one worker; only the wall time shrinks).

Either way the record comes back into the node that waited for it, so the state, the checkpoints
and a resume are the same as with one worker. An evaluation's seed and its thread count fix its
result; the thread count is set by the machine, not by ``workers``, so the metrics per candidate do
not depend on how many workers a run has (see :func:`~torchscout.graphs.workers.plan_workers`).
"""

from __future__ import annotations

import threading
from typing import Protocol

from torchscout.agent.records import EvaluationRecord
from torchscout.agent.task import Task
from torchscout.graphs.evaluate import evaluate_confined
from torchscout.graphs.ray_executor import RayExecutor
from torchscout.graphs.speculation import Speculator
from torchscout.graphs.state import EvaluationJob
from torchscout.graphs.workers import Slots, WorkerPlan, machine_cores, plan_workers, visible_gpus

# The graph's thread pool holds a thread per waiting evaluation plus a few for checkpoint writes.
POOL_HEADROOM = 4


class Executor(Protocol):
    """Runs one confined evaluation in a slot and returns its record (never raises for the candidate's faults)."""

    plan: WorkerPlan
    slots: Slots
    speculator: Speculator | None   # runs likely next evaluations in idle slots (local machines only)

    def evaluate(self, job: EvaluationJob, time_left_s: float, slot: int) -> EvaluationRecord: ...


class LocalExecutor:
    """Evaluations on this machine, through this process's warm fork server."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.slots = Slots(plan.workers)
        self.speculator = Speculator(self.slots, self.evaluate)

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
                _EXECUTORS[key] = RayExecutor(task.ray_address, task.budget.workers)
            else:
                _EXECUTORS[key] = LocalExecutor(plan_workers(task.budget.workers, machine_cores(), visible_gpus()))
        return _EXECUTORS[key]


def graph_threads(task: Task) -> int:
    """Threads the graph's pool needs so that every evaluation that may run at once has one. Called
    before the run streams, in the main thread: a Ray cluster is reached (or refused) here, before any
    step runs, and Ray's driver sets up there rather than in one of the pool's threads."""
    return executor_for(task).plan.workers + POOL_HEADROOM

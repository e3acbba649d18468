"""Candidate evaluations as tasks of a Ray cluster (``executor: ray``; the ``torchscout[ray]`` extra).

The driver (``torchscout run`` / ``resume``) connects to the cluster at ``ray_address``, or starts a
local Ray instance without one. Each evaluation becomes one Ray task asking for its share of a node
(``threads`` CPUs, and one GPU on a cluster that has GPUs); on the node that runs it,
:func:`evaluate_on_node` sends it to that worker's own warm fork server, confined as it is on this
machine. The record comes back to the graph node waiting for it, so the state and the checkpoints
are what a local run writes, and a run resumes the same way (evaluations in flight when the driver
died are sent again; Ray ends the tasks of a driver that is gone).

Files travel by path: the candidate's script, the run folder and the data are workspace paths, so
the workspace (and the data folder) must be on a path every node shares (NFS, a cluster file
system), with torchscout installed on every node.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from torchscout.agent.records import EvaluationRecord
from torchscout.graphs.evaluate import EVALUATION_SLACK_S, evaluate_confined
from torchscout.graphs.state import EvaluationJob
from torchscout.graphs.workers import Slots, WorkerPlan, plan_workers
from torchscout.settings import reset_configuration
from torchscout.tools.errors import ToolError
from torchscout.tools.sandbox.runner import settings_environment
from torchscout.tools.workspace import resolve

# Seconds an evaluation may wait in the cluster's queue on top of its own time limit.
QUEUE_ALLOWANCE_S = 600.0
# The cluster loses a task (a node died, a worker crashed): Ray tries again this often, then the graph's retry.
RAY_TASK_RETRIES = 2


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ToolError("executor: ray needs Ray installed: pip install 'torchscout[ray]' (or executor: "
                        "local)") from exc
    return ray


# The address this process's Ray driver connected to (None: a local instance it started).
_CONNECTED_TO: list[str | None] = []
# Seconds to wait for the cluster's address to answer before Ray's own, much longer, connection retries.
REACH_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """A ToolError now when nothing answers at ``address`` (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ToolError(f"ray_address {address!r}: give HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ToolError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; start it with "
                        "`ray start --head` or check ray_address") from exc


def connect(address: str | None) -> Any:
    """Ray, connected to the cluster at ``address`` or to a new local instance; a ToolError when unreachable."""
    ray = _ray()
    if address:
        _check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from an offline-first tool
    if ray.is_initialized():
        if _CONNECTED_TO == [address]:
            return ray
        ray.shutdown()  # this process ran with another cluster before: one driver connects to one cluster
    _CONNECTED_TO[:] = [address]
    try:
        if address:
            ray.init(address=address, namespace="torchscout", logging_level=logging.WARNING, log_to_driver=False)
        else:  # "local": a new instance, never some cluster that `ray start` left on this machine
            ray.init(address="local", namespace="torchscout", include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ToolError(f"cannot reach {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                        "check ray_address (HOST:6379 from a node of the cluster, or ray://HOST:10001)") from exc
    return ray


def cluster_plan(ray: Any, requested: int | None) -> WorkerPlan:
    """Workers over the cluster's CPUs and GPUs; an evaluation's CPUs fit on one node."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    cpus = int(sum(node.get("CPU", 0) for node in nodes))
    gpus = int(sum(node.get("GPU", 0) for node in nodes))
    largest = int(max((node.get("CPU", 0) for node in nodes), default=1))
    return plan_workers(requested, cpus, tuple(str(index) for index in range(gpus)),
                        max_threads=max(1, largest), default_cap=None)


def evaluate_on_node(job: EvaluationJob, time_left_s: float, threads: int,
                     environment: dict[str, str]) -> EvaluationRecord:
    """The Ray task: one confined evaluation on this node, with the driver's settings (workspace, data)."""
    os.environ.update(environment)
    reset_configuration()
    script = resolve(job["candidate"]["script"], kind="candidate script")
    if not script.is_file():
        raise ToolError(f"this Ray node cannot see {script}: put the workspace ({environment['TORCHSCOUT_WORKSPACE']}) "
                        "on a path every node of the cluster shares")
    # Ray already restricted CUDA_VISIBLE_DEVICES to this task's GPU, and the child inherits it
    return evaluate_confined(job, time_left_s, threads=threads)


class RayExecutor:
    """Evaluations as Ray tasks; ``slots`` keeps ``workers`` of them in the cluster at once."""

    def __init__(self, address: str | None, requested_workers: int | None) -> None:
        self._ray = connect(address)
        self.plan = cluster_plan(self._ray, requested_workers)
        self.slots = Slots(self.plan.workers)
        self.speculator = None  # the cluster's nodes are not idle-slot aware; every evaluation runs as sent
        self._task = self._ray.remote(evaluate_on_node).options(
            num_cpus=self.plan.threads, num_gpus=1 if self.plan.gpus else 0, max_retries=RAY_TASK_RETRIES)

    def evaluate(self, job: EvaluationJob, time_left_s: float, slot: int) -> EvaluationRecord:
        ray = self._ray
        reference = self._task.remote(job, time_left_s, self.plan.threads, settings_environment())
        try:
            return ray.get(reference, timeout=time_left_s + EVALUATION_SLACK_S + QUEUE_ALLOWANCE_S)
        except ray.exceptions.GetTimeoutError as exc:
            ray.cancel(reference, force=True)
            raise TimeoutError(f"the Ray cluster did not finish evaluation {job['key']} in time") from exc
        except ray.exceptions.RayTaskError as exc:
            # the task's own error (a ToolError, a transient one): raised as itself, without Ray's wrapping
            if isinstance(exc.cause, Exception) and not isinstance(exc.cause, ray.exceptions.RayError):
                raise exc.cause from None
            raise
        except ray.exceptions.RayError as exc:  # a node or worker was lost: the graph's RetryPolicy sends it again
            raise ConnectionError(f"the Ray cluster lost evaluation {job['key']}: {str(exc).splitlines()[0]}") from exc

"""Progress events of a research run: one line in ``runs/<name>/events.jsonl`` and one streamed event.

The log file is append-only and written by the node that did the work, so it is the ground
truth of what ran (tests count evaluations in it across a kill and a resume); the streamed copy
(``get_stream_writer``) is what the CLI prints as one readable line per event.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from langgraph.config import get_stream_writer

from torchscout.tools.workspace import resolve

logger = logging.getLogger(__name__)
EVENTS_FILE = "events.jsonl"


def emit(run_dir: str, event: str, **fields: Any) -> None:
    """Record ``event`` (e.g. 'evaluated') with its fields for run ``run_dir``."""
    record = {"time": round(time.time(), 3), "pid": os.getpid(), "event": event, **fields}
    path = resolve(run_dir, kind="run folder") / EVENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # one write() of one line in append mode: concurrent writers never interleave within a line
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str) + "\n")
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return  # called outside a graph run (e.g. a test of a node function): the file is enough
    writer(record)


def read_events(run_dir: str) -> list[dict[str, Any]]:
    """Every event recorded for ``run_dir``, oldest first (a torn last line is skipped)."""
    path = resolve(run_dir, kind="run folder") / EVENTS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("skipping a torn line in %s (the run was killed while writing it)", path)
    return events


def format_event(record: dict[str, Any]) -> str:
    """One human-readable line for a progress event."""
    event = record.get("event", "?")
    who = record.get("key") or record.get("candidate_id") or ""
    if event == "evaluated":
        metric = record.get("metric")
        value = f"{record.get('metric_name', 'metric')}={metric:.4f}" if isinstance(metric, float) else "no metric"
        return (f"evaluated  {who:<24} [{record.get('kind')}] {value}  "
                f"({record.get('duration_s', 0):.1f}s)")
    if event == "failed":
        return f"failed     {who:<24} [{record.get('stage')}] {record.get('error', '')}"
    if event == "rejected":
        return f"rejected   {who:<24} {record.get('reason', '')}"
    if event == "assembled":
        return f"assembled  {who:<24} {record.get('params', 0):,} params, {record.get('flops', 0):,} FLOPs"
    if event == "decision":
        return f"decision   {record.get('text', '')}"
    if event == "started":
        return f"started    {who:<24} [{record.get('kind', '')}]"
    if event == "proposed":
        return f"proposed   {who:<24} {record.get('rationale', '')}"
    if event == "skipped":
        return f"skipped    {who:<24} {record.get('reason', '')}"
    if event == "setup":
        return f"setup      run {record.get('run')} (planner {record.get('planner')}, project {record.get('project')})"
    if event == "trained":
        value = record.get("value")
        shown = f"{value:.4f}" if isinstance(value, float) else value
        return (f"trained    {who:<24} full training: best {record.get('metric')}={shown} "
                f"after {record.get('epochs')} epochs")
    if event == "report":
        return f"report     {record.get('path')}"
    if event == "llm":  # an LLM answer replaced by the builtin way, or dropped: never silent
        return f"llm        {record.get('text', '')}"
    details = ", ".join(f"{key}={value}" for key, value in record.items() if key not in {"time", "pid", "event"})
    return f"{event:<10} {details}"

"""Where a research run's wall time went: training and evaluation against orchestration.

result.json's ``time_use`` section and the report's "Time use" lines. The numbers come from what
the run recorded as it went: every node's own duration (``node_seconds``, summed over its tasks),
each evaluation's phases as the training engine measured them inside the sandbox (``timings``:
``train_steps_s``, ``validation_s``, ``data_s``, ...) plus the wall time of the whole confined
call (``wall_s``), and the full training's phases.

- ``training_s``: optimizer steps and validation passes, in the evaluations and the full training;
- ``in_evaluations_s``: the wall time during which an evaluation was running (their intervals
  joined, so parallel evaluations count once) plus the full training's: what training and
  evaluating cost end to end (the sandbox's fork, data, set-up, sanity check and the steps);
- ``orchestration_s``: the rest of the wall time (planning, assembly, measurement, baselines,
  checkpoints, the report);
- ``training_s`` and ``evaluation_phases_s`` are summed over evaluations, and ``nodes_s`` over each
  node's tasks (waiting for a turn included): with parallel tasks they can exceed the wall time.
"""

from __future__ import annotations

from typing import TypedDict

from torchscout.agent.records import ResearchState, evaluations_of

WORK_PHASES = ("train_steps_s", "validation_s")
EVALUATING_NODES = ("evaluate", "full_train")


def _work_s(timings: dict[str, float] | None) -> float:
    return sum(float((timings or {}).get(phase, 0.0)) for phase in WORK_PHASES)


def evaluation_phases(state: ResearchState) -> dict[str, float]:
    """Each engine phase summed over the run's evaluations, and their wall time (``wall_s``)."""
    totals: dict[str, float] = {}
    for record in evaluations_of(state).values():
        for phase, seconds in (record.get("timings") or {}).items():
            if phase.endswith("_s") and phase != "total_s":
                totals[phase] = totals.get(phase, 0.0) + float(seconds)
    return {phase: round(seconds, 3) for phase, seconds in sorted(totals.items())}


def joined_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of ``(start, end)`` intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _evaluation_wall_s(state: ResearchState) -> float:
    """Seconds during which at least one evaluation ran (records without a start time: their wall)."""
    intervals, unplaced = [], 0.0
    for record in evaluations_of(state).values():
        timings = record.get("timings") or {}
        wall = float(timings.get("wall_s") or record.get("duration_s") or 0.0)
        if "started_at" in timings:
            intervals.append((float(timings["started_at"]), float(timings["started_at"]) + wall))
        else:
            unplaced += wall
    return joined_seconds(intervals) + unplaced


class TimeUse(TypedDict):
    """Where a run's wall time went (result.json's ``time_use``)."""

    wall_s: float
    training_s: float  # training steps and validation inside evaluations and the full training
    training_fraction: float
    in_evaluations_s: float  # wall time of evaluations and the full training, as the graph saw them
    evaluation_fraction: float
    orchestration_s: float  # the rest: assembly, measurement, planning, checkpoints, start-up
    nodes_s: dict[str, float]
    evaluation_phases_s: dict[str, float]
    speculative_evaluations: int  # computed ahead in a slot their step left idle (graphs.speculation)


def time_use_section(state: ResearchState) -> TimeUse:
    """The run's time split; fractions are of ``wall_s`` (the budget clock)."""
    wall = float(state.get("elapsed_s") or 0.0)
    evaluations = evaluations_of(state).values()
    full_timings = (state.get("full_training") or {}).get("timings")
    training = sum(_work_s(record.get("timings")) for record in evaluations) + _work_s(full_timings)
    nodes = state.get("node_seconds") or {}
    evaluating = _evaluation_wall_s(state) + float(nodes.get("full_train", 0.0))

    def share(seconds: float) -> float:
        return round(seconds / wall, 4) if wall > 0 else 0.0

    return {
        "wall_s": round(wall, 3),
        "training_s": round(training, 3), "training_fraction": share(training),
        "in_evaluations_s": round(evaluating, 3), "evaluation_fraction": share(evaluating),
        "orchestration_s": round(max(0.0, wall - evaluating), 3),
        "nodes_s": {name: round(float(seconds), 3)
                    for name, seconds in sorted(nodes.items(), key=lambda item: -float(item[1]))},
        "evaluation_phases_s": evaluation_phases(state),
        "speculative_evaluations": sum(1 for record in evaluations if record.get("speculative")),
    }


def time_use_lines(state: ResearchState) -> list[str]:
    """The report's lines: the two fractions, then the biggest other costs."""
    section = time_use_section(state)
    if section["wall_s"] <= 0:
        return []
    if section["training_fraction"] <= 1:
        training = (f"of which {100 * section['training_fraction']:.0f}% of the wall time in training steps and "
                    f"validation ({section['training_s']:.1f} s)")
    else:  # evaluations side by side: their training time adds up to more than the wall time
        training = (f"running side by side {section['training_s']:.1f} s of training steps and validation "
                    f"({section['training_fraction']:.2f}x the wall time)")
    lines = [f"- Wall time {section['wall_s']:.1f} s: {100 * section['evaluation_fraction']:.0f}% in "
             f"evaluations and full training ({section['in_evaluations_s']:.1f} s), {training}; "
             f"orchestration {section['orchestration_s']:.1f} s."]
    others = [(name, seconds) for name, seconds in section["nodes_s"].items()
              if name not in EVALUATING_NODES and seconds >= 0.05]
    if others:
        lines.append("- Other steps: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in others[:6]) + ".")
    phases = section["evaluation_phases_s"]
    if phases:
        inside = ", ".join(f"{phase[:-2]} {seconds:.1f} s" for phase, seconds in phases.items()
                           if seconds >= 0.05 and phase != "wall_s")
        lines.append(f"- Inside the evaluations: {inside}.")
    if section["speculative_evaluations"]:
        lines.append(f"- {section['speculative_evaluations']} evaluation(s) ran ahead in a worker slot their step "
                     "left idle (the same computation the graph then asked for; its result was taken).")
    return lines

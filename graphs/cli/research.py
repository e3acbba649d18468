"""The research commands of the ``torchscout`` CLI: run, resume, history, replay, trace, report, export, runs.

``register_research_commands(app)`` adds them to the typer app in ``app.py``. Progress streams
as one readable line per event (candidate assembled, evaluated with its metric, rejected and why).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # (the driver is imported when a command runs: `torchscout --help` stays fast)
    from torchscout.graphs.driver import EventCallback, Outcome


def _fail(exc: Exception) -> None:
    message = str(exc).strip()
    typer.echo(message if message.startswith("Error:") else f"Error: {message}", err=True)
    raise typer.Exit(1)


def _start_early() -> None:
    """Start the fork server and the driver's first-use imports now, in background threads: they
    overlap with the driver's own imports (``graphs/warm_up.py``)."""
    from torchscout.graphs.warm_up import start_early

    start_early()


def _print_event(record: dict[str, Any]) -> None:
    from torchscout.graphs.events import format_event

    typer.echo(format_event(record))


def _print_json_event(record: Mapping[str, Any]) -> None:
    typer.echo(json.dumps(record, default=str, ensure_ascii=False))


def _ignore_event(record: Mapping[str, Any]) -> None:
    return None


QUIET_HELP = "No event lines and no progress bars: only the run's outcome (and errors) at the end."
JSON_EVENTS_HELP = ("Print each event as one JSON object per line on stdout, then the outcome as a last JSON "
                    "object with \"event\": \"outcome\" (for scripts); no progress bars.")


def _output_mode(quiet: bool, json_events: bool) -> tuple[EventCallback, bool]:
    """(the event printer, whether the outcome is JSON); scripts' modes turn the progress bars off."""
    if quiet and json_events:
        raise typer.BadParameter("use either --quiet or --json-events", param_hint="--quiet/--json-events")
    if quiet or json_events:
        from torchscout.settings import configure

        configure(progress=False)
    return (_print_json_event if json_events else _ignore_event if quiet else _print_event), json_events


def _report_outcome(outcome: Outcome, as_json: bool) -> None:
    if not as_json:
        _print_outcome(outcome)
        return
    _print_json_event({"event": "outcome", **outcome})
    if outcome.get("problem"):
        raise typer.Exit(1)


def _print_waiting(outcome: dict[str, Any]) -> None:
    from torchscout.graphs.approval import format_request, resume_command

    for line in format_request(outcome["approval"]):
        typer.echo(line)
    typer.echo(f"waiting for approval: {resume_command(outcome['name'])}")


def _print_outcome(outcome: dict[str, Any]) -> None:
    typer.echo("")
    typer.echo(f"run {outcome['name']}: {outcome['status']} ({outcome['evaluations']} evaluations)")
    if outcome.get("branch") not in (None, "main"):
        typer.echo(f"branch {outcome['branch']}: its files are in {outcome['run_dir']}/")
    if outcome["status"] == "waiting_for_approval":
        _print_waiting(outcome)
        return
    best = outcome.get("best")
    if best:
        stats = best["stats"]
        typer.echo(f"best: {best['label']}  mean {stats['mean']:.4f} ± {stats['std']:.4f} over {stats['n']} seed(s)")
    training = outcome.get("full_training") or {}
    if training.get("best_metric"):
        metric = training["best_metric"]
        value = metric.get("value")
        shown = f"{value:.4f}" if isinstance(value, float) else value
        typer.echo(f"full training: best {metric.get('name')} = {shown} (epoch {metric.get('epoch')})")
    if outcome.get("report_path"):
        typer.echo(f"report: {outcome['report_path']}")
    for answer in (outcome.get("approvals") or {}).values():
        verdict = "approved" if answer.get("answer") == "yes" else "skipped by the user"
        typer.echo(f"{answer.get('action')}: {verdict}")
    if outcome["status"] != "finished":
        typer.echo(f"resume with: torchscout resume {outcome['name']}")
    if outcome.get("problem"):
        # a run without a usable result is a failure for scripts and CI, whatever else it wrote
        typer.echo(f"Error: run {outcome['name']} has no result: {outcome['problem']}", err=True)
        raise typer.Exit(1)


def _guarded(action: Callable[[], Any]) -> Any:
    from torchscout.tools.errors import ToolError  # imported late: `torchscout --help` stays fast

    try:
        return action()
    except ToolError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: every finished step is checkpointed; `torchscout resume NAME` goes on",
                   err=True)
        raise typer.Exit(130) from None


def run_command(
    task_file: Path = typer.Argument(..., help="Task YAML file, e.g. examples/digits.yaml."),
    name: str = typer.Option(None, "--name", "-n", help="Run name (default: the task's name); must be new."),
    planner: str = typer.Option(None, "--planner", help="builtin or llm (default: the task file's planner)."),
    approve: str = typer.Option(
        None, "--approve",
        help="Comma-separated actions to pause before until you approve them: full_train, pip_install "
             "(default: the task file's `approve` list)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    json_events: bool = typer.Option(False, "--json-events", help=JSON_EVENTS_HELP),
) -> None:
    """Run the research loop on a task: propose, assemble, measure, evaluate, refine, confirm, train, report.

    Prints one line per event (--json-events: one JSON object per line; --quiet: none), and progress
    bars only when stderr is a terminal; the report lands in runs/<name>/report.md. Killed or interrupted
    runs continue with `torchscout resume NAME`. With --approve full_train the run stops before
    the full training, shows what it will run and its estimated cost, and waits for
    `torchscout resume NAME --approve yes|no`.
    """
    _start_early()
    from torchscout.graphs.driver import research

    on_event, as_json = _output_mode(quiet, json_events)
    _report_outcome(_guarded(lambda: research(task_file, name=name, planner=planner, approve=approve,
                                              on_event=on_event)), as_json)


def resume_command(
    name: str = typer.Argument(..., help="Run name."),
    approve: str = typer.Option(None, "--approve",
                                help="Answer for a run waiting at an approval gate: yes (run the step) or no "
                                     "(skip it)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    json_events: bool = typer.Option(False, "--json-events", help=JSON_EVENTS_HELP),
) -> None:
    """Finish an interrupted run from its last checkpoint, keeping every completed evaluation.

    A run waiting for approval goes on with --approve yes, or skips the gated step with --approve no.
    """
    _start_early()
    from torchscout.graphs.driver import resume

    on_event, as_json = _output_mode(quiet, json_events)
    _report_outcome(_guarded(lambda: resume(name, approve=approve, on_event=on_event)), as_json)


def history_command(
    name: str = typer.Argument(..., help="Run name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List a run's checkpoints by branch: id, parent, branch, step, node, time (UTC), best so far.

    Use an id with `replay` to fork the run there; each fork is a branch with its own folder.
    """
    from torchscout.graphs.driver import checkpoint_history

    rows = _guarded(lambda: checkpoint_history(name))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'checkpoint_id':<37} {'parent':<9} {'branch':<9} {'step':>4}  {'node':<18} {'time (UTC)':<20} "
               f"{'evals':>5}  best so far")
    for row in rows:
        best = f"{row['best_id']} {row['best_metric']:.4f}" if row["best_metric"] is not None else "-"
        parent = (row["parent_checkpoint_id"] or "-")[-8:]
        typer.echo(f"{row['checkpoint_id']:<37} {parent:<9} {row['branch']:<9} "
                   f"{row['step'] if row['step'] is not None else '':>4}  {row['node'][:18]:<18} "
                   f"{row['time'][:19]:<20} {row['evaluations']:>5}  {best}")


def replay_command(
    name: str = typer.Argument(..., help="Run name."),
    checkpoint: str = typer.Option(..., "--checkpoint", "-c", help="Checkpoint id from `torchscout history`."),
) -> None:
    """Fork the run at a checkpoint and run the fork for real, in runs/NAME/branches/ID/.

    The parent's report, checkpoints and training files stay as they were; `history` shows both branches.
    """
    _start_early()
    from torchscout.graphs.driver import replay

    _print_outcome(_guarded(lambda: replay(name, checkpoint, on_event=_print_event)))


def trace_command(
    name: str = typer.Argument(..., help="Run name."),
    as_json: bool = typer.Option(False, "--json", help="Print the trace as JSON (schema: graphs/trace_schema.json)."),
    full_state: bool = typer.Option(False, "--full-state",
                                    help="Every step's whole state instead of its diff from the parent checkpoint."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the JSON trace to this file instead."),
) -> None:
    """Export every step of a run (branch, node, time, state changes) for other tools."""
    from torchscout.graphs.driver import checkpoint_trace

    trace = _guarded(lambda: checkpoint_trace(name, full_state=full_state))
    if as_json or output:
        text = json.dumps(trace, indent=2, allow_nan=False)
        if output:
            from torchscout.tools.workspace import atomic_write_text

            atomic_write_text(output, text)
            typer.echo(f"wrote {len(trace['steps'])} steps to {output}")
        else:
            typer.echo(text)
        return
    for step in trace["steps"]:
        step_number = step["step"] if step["step"] is not None else ""
        typer.echo(f"{step['branch']:<9} step {step_number:>3}  {step['node']:<18} "
                   f"next={','.join(step['next']) or 'END'}  evaluations={step['evaluations']}")


def report_command(name: str = typer.Argument(..., help="Run name.")) -> None:
    """Print a run's report.md (goal, leaderboard, decisions, failures, confidence)."""
    from torchscout.graphs.driver import report_text

    typer.echo(_guarded(lambda: report_text(name)))


def export_command(
    name: str = typer.Argument(..., help="Run name."),
    directory: str = typer.Argument(..., help="New project folder (inside the workspace)."),
) -> None:
    """Write the run's best model as a standalone project: source, config, train.py, pinned requirements, test."""
    from torchscout.graphs.export import export_run

    result = _guarded(lambda: export_run(name, directory))
    typer.echo(f"exported {result['model_class']} to {result['project_dir']}")
    for step in result["next_steps"]:
        typer.echo(f"  {step}")


def runs_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the workspace's research runs with their status and best metric."""
    from torchscout.graphs.driver import list_runs

    rows = _guarded(list_runs)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("no research runs in this workspace yet: torchscout run examples/digits.yaml")
        return
    for row in rows:
        best = f"{row['best']} {row['metric']}={row['best_metric']:.4f}" if row["best_metric"] is not None else "-"
        typer.echo(f"{row['name']:<24} {row['status']:<32} {row['evaluations']:>3} evals  {best}")

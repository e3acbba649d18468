"""Red-team cases: run state survives concurrent processes and damaged files, with clear messages."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.redteam.harness import Arena, case, workspace_at

TINY = {"name": "tiny", "dataset": "digits", "input_shape": [1, 8, 8], "num_classes": 10,
        "budget": {"max_rounds": 1, "candidates_per_round": 1, "screen_steps": 5, "quick_epochs": 1,
                   "full_epochs": 0, "optimizer_trials": 0, "confirm_seeds": 1, "max_minutes": 2}}
DATABASE = ".torchscout/graph.sqlite"
_TEMPLATE: list[Path] = []  # the finished run, made once per process and copied into each case


def _finished_run(arena: Arena) -> None:
    """A finished research run 'tiny' (with its report) in the arena's workspace."""
    from torchscout.graphs.driver import research

    if not _TEMPLATE:
        scratch = tempfile.mkdtemp(prefix="torchscout-redteam-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # made here, removed with the process
        template = Path(scratch) / "workspace"
        template.mkdir()
        with workspace_at(template):
            research(TINY)
        _TEMPLATE.append(template)
    shutil.copytree(_TEMPLATE[0], arena.root, dirs_exist_ok=True, symlinks=True)


def _write_task(arena: Arena) -> None:
    import yaml

    arena.write("tiny.yaml", yaml.safe_dump(TINY))


@case("run_state", "a second process on a run that is running (both executed; metrics.jsonl doubled)",
      time_limit_s=180, refusal=True)
def second_process_on_a_running_run(arena: Arena) -> str | None:
    from torchscout.graphs.driver import replay

    _finished_run(arena)
    holder = subprocess.Popen(  # another torchscout process holding the run, as a running `resume` does
        [sys.executable, "-c", "import sys, time\nfrom torchscout.graphs.run_lock import run_lock\n"
                               "with run_lock('tiny'):\n    print('held', flush=True)\n    time.sleep(120)"],
        cwd=arena.root, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "TORCHSCOUT_WORKSPACE": str(arena.root)})
    try:
        if holder.stdout is None or holder.stdout.readline().strip() != "held":
            return "the holder process did not take the lock"
        with arena.attack():
            answer = arena.cli("resume", "tiny")
            arena.call(replay, "tiny", "any")
    finally:
        holder.kill()
        holder.wait()
    if f"pid {holder.pid}" not in answer.text:
        return f"the refusal does not name the holder (pid {holder.pid}): {answer.text[-300:]}"
    return None


@case("run_state", "a lock left by a killed process is taken over", time_limit_s=180)
def stale_lock_is_taken_over(arena: Arena) -> str | None:
    from torchscout.graphs.driver import resume

    _finished_run(arena)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    arena.write(".torchscout/locks/tiny.lock", str(dead.pid))
    with arena.attack(may_change=(".torchscout",)):
        answer = arena.call(resume, "tiny")
    return None if "'status': 'finished'" in answer.text else f"the stale lock blocked the run: {answer.text[:300]}"


@case("run_state", "a zero-byte graph.sqlite (read as 'no runs'; `run` silently started over)", time_limit_s=180)
def zero_byte_database(arena: Arena) -> str | None:
    from torchscout.graphs.driver import list_runs, report_text

    _finished_run(arena)
    _write_task(arena)
    arena.path(DATABASE).write_bytes(b"")
    with arena.attack():
        arena.call(list_runs)
        arena.cli("run", "tiny.yaml", "--name", "again")
        report = arena.call(report_text, "tiny")
    if "Research report" not in report.text:
        return f"the report is not readable any more: {report.text[-300:]}"
    return None if not arena.path("runs/again").exists() else "a new run started on the emptied database"


@case("run_state", "a half-truncated graph.sqlite (a 49-line traceback on every command)", time_limit_s=180)
def half_truncated_database(arena: Arena) -> str | None:
    from torchscout.graphs.driver import checkpoint_history, report_text, resume

    _finished_run(arena)
    database = arena.path(DATABASE)
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 2])
    with arena.attack():
        listed = arena.cli("runs")
        arena.call(checkpoint_history, "tiny")
        arena.call(resume, "tiny")
        report = arena.call(report_text, "tiny")
    if "graph.sqlite.damaged" not in listed.text:
        return f"the message does not say what to do: {listed.text[-300:]}"
    return None if "Research report" in report.text else f"the report is not readable: {report.text[-300:]}"


@case("run_state", "graph.sqlite overwritten with garbage", time_limit_s=180, refusal=True)
def garbage_database(arena: Arena) -> str | None:
    from torchscout.graphs.driver import checkpoint_trace, list_runs, research

    _finished_run(arena)
    arena.path(DATABASE).write_bytes(b"this is not a database\n" * 100)
    with arena.attack():
        arena.call(list_runs)
        arena.call(checkpoint_trace, "tiny")
        arena.call(research, TINY, name="again")
    return None


@case("run_state", "a corrupt registry.json (must be reported, not overwritten)", refusal=True)
def corrupt_registry(arena: Arena) -> str | None:
    arena.write(".torchscout/registry.json", "{half a manifest")
    arena.write("data/corpus.txt", "hello world\n" * 100)
    with arena.attack():
        arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                   config={"type": "BPE", "vocab_size": 300, "data_files": ["data/corpus.txt"]})
        arena.tool("pytorch_optimizer_configurator", action="generate_config", config_name="c",
                   optimizer_details={"type": "AdamW"})
    leftovers = list(arena.path("tokenizers").glob("*")) if arena.path("tokenizers").exists() else []
    return f"a tokenizer was written although it could not be registered: {leftovers}" if leftovers else None


@case("run_state", "a run whose every candidate is rejected says so (exit 0 before)")
def run_without_a_result(arena: Arena) -> str | None:
    from torchscout.graphs.driver import research

    task = {**TINY, "budget": {**TINY["budget"], "max_params": 1}}
    outcome = research(task)
    if not outcome.get("problem"):
        return f"the outcome does not say the run has no result: status {outcome['status']}, " \
               f"{outcome['evaluations']} evaluations"
    return None


@case("run_state", "`torchscout run` of a task whose every candidate fails exits non-zero", slow=True,
      time_limit_s=300)
def cli_exit_status_without_a_result(arena: Arena) -> str | None:
    import yaml

    arena.write("tiny.yaml", yaml.safe_dump({**TINY, "budget": {**TINY["budget"], "max_params": 1}}))
    with arena.attack(may_change=("runs", ".torchscout")):
        answer = arena.cli("run", "tiny.yaml", timeout_s=280)
    return None if answer.text.startswith("exit 1") else f"exit status: {answer.text[:200]}"


@case("run_state", "resume of a run that does not exist")
def resume_of_a_missing_run(arena: Arena) -> str | None:
    from torchscout.graphs.driver import checkpoint_history, resume

    _finished_run(arena)
    with arena.attack(may_change=(".torchscout",)):
        arena.call(resume, "never-ran")
        arena.call(checkpoint_history, "never-ran")
    return "a run folder was created for it" if arena.path("runs/never-ran").exists() else None

"""The red-team harness: hostile cases run through the real tools in a fresh workspace each.

A case is a function decorated with :func:`case`; it gets an :class:`Arena` (an empty workspace
that is the current one while the case runs), prepares what a user would have there, and makes
its hostile call(s) inside ``with arena.attack():``::

    @case("data_loss", "tokenizer train into the workspace root")
    def tokenizer_into_the_root(arena: Arena) -> str | None:
        arena.write("src/model.py", "x = 1\\n")              # the user's data
        with arena.attack():                                  # everything there is protected
            arena.tool("pytorch_tokenizer_manager", action="train", tokenizer_name="t",
                       tokenizer_path=".", config={"data_files": ["src/model.py"]})
        return None                                           # or: why the attack got through

The harness judges every case the same way (:class:`Verdict`):

- **data lost**: a file that existed when the attack began is gone or changed (``arena.attack(
  may_change=[...])`` names files the legitimate outcome updates, such as the registry);
- **traceback**: any answer or output of the attack holds a Python traceback or "this is a bug";
- **escaped**: data lost, a traceback, a hang past the case's time limit, the case's own check
  (its return value) says the hostile input got through, or a case marked ``refusal=True`` had a
  call that was not refused;
- otherwise **refused** when every call of the attack was answered with a one-line error
  (``Error: ...`` from a tool, a non-zero exit and an ``Error:`` line from the CLI, a ToolError
  from a Python call), else **handled** (it ran, and safely).

Tool calls go through the LangChain tool objects (``.invoke``: the agent's path) and CLI calls
through a real ``torchscout`` subprocess. Cases live in ``tests/redteam/cases_*.py``;
``tests/redteam/test_redteam.py`` runs them under pytest and ``evals/redteam.py`` prints counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES: dict[str, Case] = {}
TRACEBACK_MARKERS = ("Traceback (most recent call last)", "this is a bug")
DEFAULT_TIME_LIMIT_S = 60.0


@dataclass(frozen=True)
class Case:
    key: str
    category: str
    title: str
    run: Callable[[Arena], str | None]
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    slow: bool = False  # needs a long research run or training: left out of the default test run
    refusal: bool = False  # every call of the attack must be refused (not merely survived)


def case(category: str, title: str, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, slow: bool = False,
         refusal: bool = False) -> Callable[[Callable[[Arena], str | None]], Callable[[Arena], str | None]]:
    """Register the decorated function as a red-team case of ``category``.

    ``refusal=True``: the attack only counts as stopped when every call of it was refused.
    """
    def register(function: Callable[[Arena], str | None]) -> Callable[[Arena], str | None]:
        key = f"{category}:{function.__name__}"
        if key in CASES:
            raise ValueError(f"red-team case {key} is defined twice")
        CASES[key] = Case(key, category, title, function, time_limit_s, slow, refusal)
        return function
    return register


class CaseTimeout(Exception):
    """The attack ran past its time limit (the harness's alarm interrupted it)."""


class SetupFailed(Exception):
    """A legitimate call that prepares the case failed, so the attack would prove nothing."""


@dataclass
class Answer:
    """One call of the attack: what came back, and whether it was a refusal."""

    text: str
    refused: bool


@dataclass
class Verdict:
    key: str
    category: str
    title: str
    outcome: str = "handled"  # refused | handled | escaped
    data_lost: list[str] = field(default_factory=list)
    traceback: bool = False
    timed_out: bool = False
    problem: str | None = None
    duration_s: float = 0.0
    answers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome != "escaped"


def _is_one_line_error(text: str) -> bool:
    return text.startswith("Error:") and "\n" not in text.strip()


class Arena:
    """A fresh workspace for one case; see the module doc."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.answers: list[Answer] = []
        self.data_lost: list[str] = []
        self._attacking = False

    # --- preparing the workspace -------------------------------------------------------------
    def write(self, relative: str, content: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def path(self, relative: str) -> Path:
        return self.root / relative

    @staticmethod
    def must(answer: Answer) -> Answer:
        """``answer`` of a preparing call, which has to succeed (else the case reports a broken setup)."""
        if answer.text.startswith(("Error:", TRACEBACK_MARKERS[0])):
            raise SetupFailed(answer.text[:500])
        return answer

    # --- the attack --------------------------------------------------------------------------
    @contextlib.contextmanager
    def attack(self, may_change: tuple[str, ...] = ()) -> Iterator[None]:
        """Protect every file there now (except ``may_change``) while the block runs."""
        before = _snapshot(self.root)
        self._attacking = True
        try:
            yield
        finally:
            self._attacking = False
            after = _snapshot(self.root)
            allowed = {self.root / item for item in may_change}
            for path, digest in before.items():
                if path in allowed or any(path.is_relative_to(item) for item in allowed):
                    continue
                if after.get(path) != digest:
                    state = "deleted" if path not in after else "changed"
                    self.data_lost.append(f"{path.relative_to(self.root)} ({state})")

    def tool(self, name: str, **arguments: Any) -> Answer:
        """Call tool ``name`` as an agent does (``tool.invoke``); its answer is recorded."""
        from torchscout.tools import ALL_TOOLS

        tools = {tool.name: tool for tool in ALL_TOOLS}
        try:
            result = tools[name].invoke(arguments)
        except CaseTimeout:
            raise
        except BaseException as exc:  # noqa: BLE001 - an exception out of invoke is itself the finding
            return self._record(f"{type(exc).__name__} raised out of {name}.invoke: {exc}", refused=False,
                                traceback=True)
        text = result if isinstance(result, str) else repr(result)
        return self._record(text, refused=isinstance(result, str) and _is_one_line_error(result))

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Answer:
        """Call a Python API (for inputs JSON cannot carry, such as a list containing itself)."""
        from torchscout.tools.errors import ToolError

        try:
            result = function(*args, **kwargs)
        except CaseTimeout:
            raise
        except ToolError as exc:
            message = str(exc).strip()
            return self._record(f"Error: {message}", refused="\n" not in message)
        except BaseException as exc:  # noqa: BLE001 - anything else escaping the API is the finding
            return self._record(f"{type(exc).__name__}: {exc}", refused=False, traceback=True)
        return self._record(repr(result)[:2000], refused=False)

    def cli(self, *args: str, timeout_s: float = 120.0) -> Answer:
        """Run ``torchscout ARGS`` in a subprocess in this workspace; a non-zero exit with a one-line
        ``Error:`` on stderr is a refusal."""
        env = {**os.environ, "TORCHSCOUT_WORKSPACE": str(self.root), "TORCHSCOUT_PROGRESS": "0",
               "TORCHSCOUT_LLM": "builtin", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
        try:
            done = subprocess.run([sys.executable, "-m", "torchscout.graphs.cli", *args], cwd=self.root, env=env,
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return self._record(f"torchscout {' '.join(args)} ran past {timeout_s:.0f} s", refused=False,
                                timed_out=True)
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        text = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        refused = done.returncode != 0 and len(errors) == 1 and errors[0].startswith("Error:")
        return self._record(text, refused=refused)

    def _record(self, text: str, refused: bool, traceback: bool = False, timed_out: bool = False) -> Answer:
        if traceback:
            text = f"{TRACEBACK_MARKERS[0]} (raised): {text}"
        if timed_out:
            text = f"TIMEOUT: {text}"
        answer = Answer(text, refused)
        if self._attacking:
            self.answers.append(answer)
        return answer


def _snapshot(root: Path) -> dict[Path, str]:
    files = {}
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders[:] = [name for name in subfolders if not os.path.islink(os.path.join(folder, name))]
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or name.endswith((".lock", "-wal", "-shm")):
                continue  # links, pipes and sockets are not data (and reading a pipe would block)
            with contextlib.suppress(OSError):
                files[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt the main thread after ``seconds`` (a hang in Python code becomes CaseTimeout)."""
    def interrupt(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"ran past {seconds:.0f} s")

    previous_handler = signal.signal(signal.SIGALRM, interrupt)
    previous_delay, _interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:  # give back what is left of an outer timer (pytest-timeout's)
            signal.setitimer(signal.ITIMER_REAL, max(0.001, previous_delay - (time.monotonic() - started)))


@contextlib.contextmanager
def workspace_at(root: Path) -> Iterator[None]:
    """Make ``root`` the workspace (and the current directory) for the block."""
    from torchscout.settings import reset_configuration

    saved_env = os.environ.get("TORCHSCOUT_WORKSPACE")
    saved_cwd = os.getcwd()
    os.environ["TORCHSCOUT_WORKSPACE"] = str(root)
    os.chdir(root)
    reset_configuration()
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("TORCHSCOUT_WORKSPACE", None)
        else:
            os.environ["TORCHSCOUT_WORKSPACE"] = saved_env
        reset_configuration()


def run_case(item: Case, root: Path) -> Verdict:
    """Run one case in the empty folder ``root`` and judge it."""
    root.mkdir(parents=True, exist_ok=True)
    arena = Arena(root)
    verdict = Verdict(item.key, item.category, item.title)
    started = time.monotonic()
    with workspace_at(root):
        try:
            with _alarm(item.time_limit_s):
                verdict.problem = item.run(arena)
        except CaseTimeout as exc:
            verdict.timed_out, verdict.problem = True, str(exc)
        except SetupFailed as exc:
            verdict.problem = f"the case's preparation failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - a case that crashes outside its calls is reported, not hidden
            verdict.traceback, verdict.problem = True, f"the case itself raised {type(exc).__name__}: {exc}"
    verdict.duration_s = time.monotonic() - started
    verdict.data_lost = arena.data_lost
    verdict.answers = [answer.text for answer in arena.answers]
    verdict.timed_out = verdict.timed_out or any(text.startswith("TIMEOUT:") for text in verdict.answers)
    verdict.traceback = verdict.traceback or any(marker in text for text in verdict.answers
                                                 for marker in TRACEBACK_MARKERS)
    refused = bool(arena.answers) and all(answer.refused for answer in arena.answers)
    if item.refusal and not refused and not verdict.problem:
        accepted = next((text for text in verdict.answers if not text.startswith("Error:")), "no call was made")
        verdict.problem = f"expected every call to be refused; one was not: {accepted[:300]}"
    if verdict.data_lost or verdict.traceback or verdict.timed_out or verdict.problem:
        verdict.outcome = "escaped"
    elif refused:
        verdict.outcome = "refused"
    return verdict


def load_cases() -> dict[str, Case]:
    """Import every ``cases_*.py`` next to this file (each registers its cases) and return them all."""
    import importlib

    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        importlib.import_module(f"tests.redteam.{path.stem}")
    return CASES

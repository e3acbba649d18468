"""The one code-generation pipeline every code-writing tool uses.

    prompt (prompts/<name>.yaml) -> backend (builtin generator or chat model) -> code block
    -> ast.parse -> static safety check -> validation in the sandbox -> repair loop -> atomic write

The file at ``output_path`` is written only after a candidate passed every stage; on failure
nothing is left behind (the temporary candidate is removed, and so are folders this call
created). A failure raises :class:`CodeGenerationError`, whose message names the stage that
failed and shows the last error.

Example (a custom optimizer, validated by a probe that runs in the sandbox)::

    from torchscout.tools.codegen.pipeline import generate_code

    # in a module of yours, at module level (the sandbox imports it by name):
    def probe_optimizer(code_path: str, class_name: str) -> dict:
        module = load_module(code_path)          # torchscout.tools.loading
        ...                                      # construct, 50 steps, state_dict round trip
        return {"loss_before": 1.0, "loss_after": 0.1}     # JSON-able report; raise on failure

    result = generate_code(
        prompt="custom_optimizer",               # prompts/custom_optimizer.yaml
        variables={"class_name": "MomentumAdam", "description": "..."},
        output_path="src/optimizers/momentum_adam.py",
        validate=probe_optimizer,
        validate_kwargs={"class_name": "MomentumAdam"},
        builtin=None,                            # or a zero-argument function returning code
    )
    result.path, result.backend, result.report, result.attempts

The validation function is called in the sandbox as
``validate(code_path=<absolute path of the candidate>, **validate_kwargs)``; the candidate is
written next to ``output_path`` (so relative imports and ``__file__`` behave as they will
for the final file). Whatever it raises -- message and traceback tail -- is what the repair
loop shows the model.

Backends: ``backend="auto"`` uses the configured chat model when there is one and the
``builtin`` generator otherwise; ``"builtin"`` and ``"llm"`` force one. A builtin candidate
that fails is not repaired (it is deterministic: the same input gives the same code).

A chat model gets up to ``max_repair_rounds`` more tries, each in a *focused* context: the system
prompt, the request, its latest answer and that answer's error -- not the few-shot examples and
not the whole history, so the conversation does not grow. A file that does not define the
``required_class`` (typically a copy of a few-shot example) fails before it reaches the sandbox. A reply identical or nearly identical to an earlier failed one changes the
next request (a raised temperature and a "start again" prompt); a second repeat stops the loop
early. A reply cut off at the token cap is a failure the model is told about. Every model call
goes through :func:`torchscout.tools.codegen.llm.ask`; the replies of a generation that passed
are accepted into the cache (a repeated generation is free), those of a failed one are not.
"""

from __future__ import annotations

import ast
import difflib
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from torchscout.prompts.loader import PromptError, load_prompt
from torchscout.tools.codegen.llm import Reply, accept, ask, get_chat_model, max_tokens_for, model_identity
from torchscout.tools.codegen.safety import UnsafeCodeError, check_code_safety, parse_python
from torchscout.tools.errors import ToolError
from torchscout.tools.sandbox.runner import DEFAULT_MEMORY_LIMIT_BYTES, run_in_sandbox
from torchscout.tools.workspace import atomic_write_text, relative_to_workspace, resolve

logger = logging.getLogger(__name__)

Stage = Literal["prompt", "llm", "extract", "parse", "safety", "validate", "write"]
MAX_ERROR_CHARS = 4000
# a reply this similar to an earlier failed one (difflib ratio of the code) counts as a repeat
REPEAT_SIMILARITY = 0.97
# the temperature of the request after a repeated answer: the model's default (0) evidently loops
REPEAT_TEMPERATURE = 0.7


@dataclass(frozen=True)
class Attempt:
    """One candidate and what became of it."""

    backend: str
    stage: str  # the stage it failed at, or "passed"
    error: str = ""
    repeated: bool = False  # the answer repeated an earlier failed one


@dataclass(frozen=True)
class GeneratedCode:
    """The outcome of a successful generation."""

    path: Path
    code: str
    backend: str
    report: Any
    attempts: list[Attempt] = field(default_factory=list)


class CodeGenerationError(ToolError):
    """No candidate passed; ``stage`` is where the last one failed, ``last_error`` why."""

    def __init__(self, *, target: str, stage: str, last_error: str, attempts: list[Attempt]) -> None:
        self.stage = stage
        self.last_error = last_error
        self.attempts = attempts
        backends = sorted({attempt.backend for attempt in attempts}) or ["none"]
        super().__init__(
            f"generating {target} failed at the {stage} stage after {len(attempts)} attempt(s) "
            f"(backend: {', '.join(backends)}); no file was written. Last error:\n{last_error}"
        )


class _StageFailure(Exception):
    def __init__(self, stage: Stage, error: str) -> None:
        super().__init__(error)
        self.stage = stage
        self.error = error[-MAX_ERROR_CHARS:]


_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(reply: str) -> str:
    """The Python code in a model reply: the longest fenced block, or the whole reply if it parses."""
    blocks = [block.strip("\n") for block in _CODE_BLOCK.findall(reply)]
    if blocks:
        return max(blocks, key=len) + "\n"
    text = reply.strip()
    if text:
        try:
            parse_python(text)
        except SyntaxError:
            pass
        else:
            return text + "\n"
    raise _StageFailure("extract", "the reply holds no ```python code block; answer with the whole file "
                                   "in one ```python block")


def _check_static(code: str, allowed_modules: Iterable[str], class_name: str | None = None) -> None:
    try:
        tree = parse_python(code)
    except SyntaxError as exc:
        raise _StageFailure("parse", f"SyntaxError: {exc.msg} (line {exc.lineno}: {(exc.text or '').strip()})") from exc
    defined = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    if class_name and class_name not in defined:
        found = f"it defines {', '.join(defined)}" if defined else "it defines no class"
        raise _StageFailure("parse", f"the file must define the class {class_name} that was asked for, but {found} "
                                     "(an example shows the format only; do not copy it)")
    try:
        check_code_safety(code, allowed_modules)
    except UnsafeCodeError as exc:
        raise _StageFailure("safety", str(exc)) from exc


def missing_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``folder``, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Undo :func:`missing_folders`' mkdir after a failure: remove them, deepest first, while empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _validate_candidate(code: str, target: Path, validate: Callable[..., Any], validate_kwargs: dict[str, Any],
                        timeout_s: float, memory_limit_bytes: int | None) -> Any:
    candidate = target.with_name(f".{target.stem}.candidate-{secrets.token_hex(4)}.py")
    candidate.write_text(code, encoding="utf-8")
    try:
        # one thread: validation runs dummy batches, and must not fight other work for the cores
        result = run_in_sandbox(validate, {"code_path": str(candidate), **validate_kwargs},
                                timeout_s=timeout_s, memory_limit_bytes=memory_limit_bytes, threads=1)
    finally:
        candidate.unlink(missing_ok=True)
    if not result.ok:
        # the candidate's temporary name means nothing to the model; show the real one
        text = result.error_text().replace(candidate.name, target.name)
        raise _StageFailure("validate", text)
    return result.value


def generate_code(
    *,
    prompt: str,
    variables: dict[str, Any],
    output_path: str | Path,
    validate: Callable[..., Any],
    validate_kwargs: dict[str, Any] | None = None,
    builtin: Callable[[], str] | None = None,
    backend: Literal["auto", "builtin", "llm"] = "auto",
    llm: BaseChatModel | None = None,
    purpose: str | None = None,
    allowed_modules: Iterable[str] = (),
    header: str = "",
    max_repair_rounds: int = 3,
    timeout_s: float = 60.0,
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES,
    required_class: str | None = None,
) -> GeneratedCode:
    """Generate, check, validate and write code; see the module docstring for the contract.

    ``prompt``/``variables`` render the request for a chat model; ``builtin`` (optional)
    returns the code without a model; ``validate`` is a module-level function run in the
    sandbox; ``allowed_modules`` relaxes the safety check for a caller that needs e.g.
    ``importlib``; ``header`` (comment lines) is put above the code of every candidate;
    ``required_class`` is the class the file must define (checked before the sandbox).
    Raises CodeGenerationError (a ToolError) when no candidate passes.
    """
    target = resolve(output_path, kind="output path")
    if target.suffix != ".py":
        raise ToolError(f"the output path {output_path!s} must end in .py")
    if target.is_dir():
        raise ToolError(f"the output path {output_path!s} is a folder; give a .py file path")
    chat_model = llm if llm is not None else (get_chat_model() if backend != "builtin" else None)
    use_llm = backend == "llm" or (backend == "auto" and chat_model is not None) or builtin is None
    if use_llm and chat_model is None:
        raise ToolError(f"writing {relative_to_workspace(target)} needs an LLM (no builtin generator "
                        "covers this request) but TORCHSCOUT_LLM is 'builtin'; set TORCHSCOUT_LLM to an "
                        "init_chat_model spec such as 'openai:gpt-4.1-mini', or torchscout.configure(llm=...)")

    new_folders = missing_folders(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        run = _Generation(target, validate, validate_kwargs or {}, allowed_modules, timeout_s, memory_limit_bytes,
                          header)
        run.class_name = required_class
        if use_llm:
            assert chat_model is not None
            code, report = run.with_llm(chat_model, prompt, variables, purpose or prompt, max_repair_rounds)
            backend_name = f"llm:{model_identity(chat_model)}"
        else:
            assert builtin is not None
            code, report = run.with_builtin(builtin)
            backend_name = "builtin"
        try:
            atomic_write_text(target, code)
        except OSError as exc:
            raise CodeGenerationError(target=relative_to_workspace(target), stage="write",
                                      last_error=str(exc), attempts=run.attempts) from exc
    except BaseException:
        remove_empty_folders(new_folders)
        raise
    logger.info("wrote %s (%s, %d attempt(s))", relative_to_workspace(target), backend_name, len(run.attempts))
    return GeneratedCode(path=target, code=code, backend=backend_name, report=report, attempts=run.attempts)


class _Generation:
    """The state of one generate_code call: its target, its checks and its attempts."""

    def __init__(self, target: Path, validate: Callable[..., Any], validate_kwargs: dict[str, Any],
                 allowed_modules: Iterable[str], timeout_s: float, memory_limit_bytes: int | None,
                 header: str = "") -> None:
        self.target = target
        self.header = header
        self.validate = validate
        self.validate_kwargs = validate_kwargs
        self.allowed_modules = tuple(allowed_modules)
        self.timeout_s = timeout_s
        self.memory_limit_bytes = memory_limit_bytes
        self.attempts: list[Attempt] = []
        self.class_name: str | None = None

    def check(self, code: str) -> Any:
        _check_static(code, self.allowed_modules, self.class_name)
        return _validate_candidate(code, self.target, self.validate, self.validate_kwargs,
                                   self.timeout_s, self.memory_limit_bytes)

    def fail(self, failure: _StageFailure) -> CodeGenerationError:
        return CodeGenerationError(target=relative_to_workspace(self.target), stage=failure.stage,
                                   last_error=failure.error, attempts=self.attempts)

    def with_header(self, code: str) -> str:
        if not self.header:
            return code
        return self.header.rstrip("\n") + "\n" + code

    def with_builtin(self, builtin: Callable[[], str]) -> tuple[str, Any]:
        code = self.with_header(builtin())
        try:
            report = self.check(code)
        except _StageFailure as failure:
            self.attempts.append(Attempt("builtin", failure.stage, failure.error))
            raise self.fail(failure) from None
        self.attempts.append(Attempt("builtin", "passed"))
        return code, report

    def with_llm(self, chat_model: BaseChatModel, prompt_name: str, variables: dict[str, Any],
                 purpose: str, max_repair_rounds: int) -> tuple[str, Any]:
        try:
            prompt = load_prompt(prompt_name)
            request: list[tuple[str, str]] = prompt.render(**variables)
        except PromptError as exc:
            raise CodeGenerationError(target=relative_to_workspace(self.target), stage="prompt",
                                      last_error=str(exc), attempts=self.attempts) from exc
        focused = [request[0], request[-1]]  # the system prompt and the request, without the examples
        backend = f"llm:{model_identity(chat_model)}"
        messages, temperature = request, None
        replies: list[Reply] = []
        failed_answers: list[str] = []
        for _round in range(1 + max(0, max_repair_rounds)):
            try:
                reply = ask(messages, purpose=purpose, prompt_version=prompt.version, model=chat_model,
                            temperature=temperature)
            except ToolError as exc:
                self.attempts.append(Attempt(backend, "llm", str(exc)))
                raise self.fail(_StageFailure("llm", str(exc))) from exc
            replies.append(reply)
            answer = reply.text
            try:
                answer = self._answer_code(reply, purpose)
                report = self.check(answer)
            except _StageFailure as failure:
                repeated = _is_repeat(answer, failed_answers)
                failed_answers.append(answer)
                self.attempts.append(Attempt(backend, failure.stage, failure.error, repeated=repeated))
                logger.info("candidate %d for %s failed at %s%s", len(self.attempts), self.target.name,
                            failure.stage, " (a repeat)" if repeated else "")
                if repeated and temperature is not None:  # the change made no difference: stop early
                    raise self.fail(_StageFailure(failure.stage, f"the model repeated the same failing answer "
                                                                 f"{_repeats(self.attempts)} times; stopped early. "
                                                                 f"Last error:\n{failure.error}")) from None
                if repeated:
                    temperature = REPEAT_TEMPERATURE
                messages = [*focused, ("assistant", reply.text),
                            prompt.repair_message(stage=failure.stage, error=failure.error, repeated=repeated)]
                continue
            self.attempts.append(Attempt(backend, "passed"))
            accept(*replies)  # the conversation that led here may be replayed from the cache
            return answer, report
        raise self.fail(_StageFailure(self.attempts[-1].stage, self.attempts[-1].error))

    def _answer_code(self, reply: Reply, purpose: str) -> str:
        if reply.truncated:
            raise _StageFailure("extract", f"the answer was cut off at the reply limit ({max_tokens_for(purpose)} "
                                           "tokens) before the file was complete; write a shorter file (no "
                                           "comments, docstrings or examples) in one ```python block")
        return self.with_header(extract_code(reply.text))


def _is_repeat(answer: str, earlier: list[str]) -> bool:
    """Whether ``answer`` is (nearly) the same as an earlier failed answer."""
    flat = " ".join(answer.split())
    return any(difflib.SequenceMatcher(None, flat, " ".join(previous.split())).ratio() >= REPEAT_SIMILARITY
               for previous in earlier)


def _repeats(attempts: list[Attempt]) -> int:
    return 1 + sum(attempt.repeated for attempt in attempts)

"""What the training tools answer an agent: the outcome in a sentence, the last epochs, where the rest is.

The plain functions return the whole :class:`~torchscout.tools.training.types.RunAnswer` (every
epoch's record); the agent's answer (see :mod:`torchscout.tools.answers`) keeps the last
:data:`HISTORY_EPOCHS` epochs and names the file with all of them: the experiment's
``result.json`` for the full trainer, a file under ``.torchscout/answers/`` for the quick
evaluator. Its ``message`` says how the run ended and, for a failure in the model's code, where
(the user's file and line) and what to change.
"""

from __future__ import annotations

from torchscout.tools.answers import Answer, to_json, write_details
from torchscout.tools.errors import user_location, what_to_change
from torchscout.tools.training.status import COMPLETED, DIVERGED

HISTORY_EPOCHS = 3


def _numbers(values: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                     for key, value in values.items())


def _failure_message(answer: Answer) -> str:
    error = str(answer.get("error") or "the run failed").strip()
    stage = answer.get("stage")
    where = user_location(answer.get("traceback") or "")
    hint = what_to_change(f"{error}\n{answer.get('traceback') or ''}")
    parts = [f"Failed{f' in {stage}' if stage else ''}" + (f" at {where}" if where else "") + f": {error}"
             + ("" if error.endswith((".", "!", "?")) else ".")]
    if answer.get("status") == DIVERGED:
        parts.append("Lower the learning rate, add gradient clipping or check the inputs' scale.")
    elif hint:
        parts.append(hint)
    elif where:
        parts.append(f"Fix {where.rsplit(':', 1)[0]} (the traceback shows the failing line).")
    return " ".join(parts)


def _completed_message(answer: Answer) -> str:
    history = answer.get("history") or []
    text = f"Completed {answer.get('epochs_completed', len(history))} epoch(s)"
    if answer.get("stop_reason"):
        text += f" (stopped by {answer['stop_reason']})"
    numbers = {key: answer[key] for key in ("train_loss", "val_loss") if isinstance(answer.get(key), float)}
    numbers.update(answer.get("metrics") or {})
    if numbers:
        text += f": {_numbers(numbers)}"
    best = answer.get("best_metric")
    if best:
        text += f"; best {best['name']} {best['value']:.4g} at epoch {best['epoch']}"
    if answer.get("best_checkpoint_path"):
        text += f"; best checkpoint {answer['best_checkpoint_path']}"
    return text + "."


def training_answer(tool_name: str, result: Answer) -> Answer:
    """The agent's answer for a training tool's result."""
    answer = dict(result)
    history = answer.get("history") or []
    if len(history) > HISTORY_EPOCHS:
        answer["history"] = history[-HISTORY_EPOCHS:]
        answer["history_epochs"] = len(history)
        if answer.get("experiment_dir"):
            answer["details_path"] = f"{answer['experiment_dir']}/result.json"
        else:
            answer["details_path"] = write_details(tool_name, to_json(result))
    message = _completed_message(answer) if answer.get("status") == COMPLETED else _failure_message(answer)
    if answer.get("details_path"):
        message += f" All {len(history)} epochs are in {answer['details_path']}."
    answer["message"] = message
    return answer

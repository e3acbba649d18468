"""What bash_run, python_run (and pip's install) answer an agent: the exit code, the output's end, the log.

The plain functions return the PRD's text (output, then ``[exit code N after T s]``); the agent
gets a JSON object (see :mod:`torchscout.tools.answers`): ``status`` ``success`` for exit code 0,
else ``failed``; the output's last ~2,500 characters (where errors are) after its first few
lines; and, when that cut anything, the whole output in a log file under ``.torchscout/answers/``.
"""

from __future__ import annotations

import re

from torchscout.tools.answers import Answer, to_json, write_details
from torchscout.tools.errors import user_location, what_to_change
from torchscout.tools.workspace import workspace_root

OUTPUT_HEAD_CHARS = 400
OUTPUT_ANSWER_CHARS = 2800  # of output (as JSON) in one answer
_STATUS_LINE = re.compile(r"\[exit code (-?\d+) after ([\d.]+) s\]\s*$")


def split_status(text: str) -> tuple[str, int | None, float | None]:
    """(output, exit code, seconds) of a command's text; the code is None when the status line is missing."""
    found = _STATUS_LINE.search(text)
    if found is None:
        return text, None, None
    return text[: found.start()], int(found.group(1)), float(found.group(2))


def shortened_output(tool_name: str, output: str) -> Answer:
    """The output, or its head and tail plus the path of a log with all of it."""
    if len(to_json(output)) <= OUTPUT_ANSWER_CHARS:
        return {"output": output}
    head = output[:OUTPUT_HEAD_CHARS]
    tail_chars = OUTPUT_ANSWER_CHARS - OUTPUT_HEAD_CHARS - 120
    tail = output[-tail_chars:]
    while len(to_json(head + tail)) > OUTPUT_ANSWER_CHARS - 120 and len(tail) > 200:
        tail = tail[len(tail) // 8:]
    log = write_details(tool_name, output, "log")
    cut = len(output) - len(head) - len(tail)
    return {"output": f"{head}\n... [{cut:,} characters cut; all of it in {log}] ...\n{tail}",
            "output_chars": len(output), "log_path": log}


def command_answer(tool_name: str, text: str, what: str = "The command") -> Answer:
    """The agent's answer for a finished command's text (timeouts raise before this).

    Python traceback lines name workspace files relative to the workspace (commands run in its root).
    """
    output, exit_code, seconds = split_status(text)
    output = output.replace(f'File "{workspace_root()}/', 'File "')
    answer: Answer = {"status": "success" if exit_code == 0 else "failed", "exit_code": exit_code,
                              "duration_s": seconds, **shortened_output(tool_name, output)}
    if exit_code == 0:
        answer["message"] = f"{what} finished with exit code 0 in {seconds} s."
        return answer
    where = user_location(output)
    hint = what_to_change(output)
    answer["message"] = " ".join(part for part in (
        f"{what} failed with exit code {exit_code}" + (f" at {where}" if where else "") + ";",
        hint or "the end of `output` says why.") if part)
    return answer

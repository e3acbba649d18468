"""Each torchrun worker's own output, kept in the experiment folder, and the failing rank's last lines.

``torchrun --log-dir <experiment>/ranks --redirects 3`` writes every worker's stdout and stderr to
``ranks/<run id>/attempt_<n>/<local rank>/{stdout,stderr}.log``. When a worker dies, torchrun's
own output says only which rank failed and with what exit code or signal; :func:`failure_report`
names the rank and adds the last lines that rank wrote itself (its traceback, or the C++ abort
message a signal leaves), which is what says why.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

RANK_LOGS = "ranks"  # the folder in an experiment that holds the workers' logs
TAIL_LINES = 25
# torchrun's failure summary: "rank      : 1 (local_rank: 1)" then "exitcode  : -6 (pid: 123)"
_FAILED_RANK = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)")


def failed_ranks(torchrun_output: str) -> list[tuple[int, int, int]]:
    """(rank, local rank, exit code) of each worker torchrun reported failed, root cause first."""
    seen, failures = set(), []
    for match in _FAILED_RANK.finditer(torchrun_output):
        rank, local_rank, code = (int(group) for group in match.groups())
        if rank not in seen:
            seen.add(rank)
            failures.append((rank, local_rank, code))
    return failures


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def rank_log_files(log_dir: Path, local_rank: int) -> list[Path]:
    """The newest attempt's stderr and stdout logs of ``local_rank`` under ``log_dir``."""
    folders = sorted(log_dir.glob(f"*/attempt_*/{local_rank}"), key=lambda folder: folder.stat().st_mtime)
    if not folders:
        return []
    return [path for path in (folders[-1] / "stderr.log", folders[-1] / "stdout.log") if path.is_file()]


def last_lines(path: Path, count: int = TAIL_LINES) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 64_000))
        text = handle.read().decode("utf-8", errors="replace")
    return [line for line in text.strip().splitlines() if line.strip()][-count:]


def failure_report(torchrun_output: str, log_dir: Path, shown_as: str) -> str:
    """What each failed worker wrote last, or torchrun's own tail when it named no rank.

    ``shown_as`` is how the user sees ``log_dir`` (a workspace path).
    """
    failures = failed_ranks(torchrun_output)
    if not failures:
        return "\n".join(torchrun_output.strip().splitlines()[-30:])
    parts = []
    for rank, local_rank, code in failures:
        files = rank_log_files(log_dir, local_rank)
        lines = [line for path in files for line in last_lines(path)][-TAIL_LINES:]
        header = f"rank {rank} failed with {describe_exit(code)}"
        if not lines:
            parts.append(f"{header}; it wrote nothing (logs: {shown_as})")
            continue
        parts.append(f"{header}; its last lines ({shown_as}):\n" + "\n".join(f"  {line}" for line in lines))
    return "\n".join(parts)

"""A failed torchrun worker's own last lines, found in the experiment's rank logs."""

from __future__ import annotations

from torchscout.tools.training.rank_logs import failed_ranks, failure_report

# torchrun's summary as it prints it when a worker dies of a signal (torch 2.x format)
TORCHRUN_OUTPUT = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
torchscout.tools.training.launch FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-30_04:40:00
  host      : machine
  rank      : 1 (local_rank: 1)
  exitcode  : -6 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 6 (SIGABRT) received by PID 4242
============================================================
"""


def write_rank_log(log_dir, local_rank, stderr):
    folder = log_dir / "run-id" / "attempt_0" / str(local_rank)
    folder.mkdir(parents=True)
    (folder / "stderr.log").write_text(stderr, encoding="utf-8")
    (folder / "stdout.log").write_text("", encoding="utf-8")


def test_the_failed_rank_and_its_signal_are_read_from_torchrun_output():
    assert failed_ranks(TORCHRUN_OUTPUT) == [(1, 1, -6)]
    assert failed_ranks("no summary here") == []


def test_the_report_quotes_the_failing_ranks_own_last_lines(tmp_path):
    log_dir = tmp_path / "ranks"
    write_rank_log(log_dir, 0, "rank 0 was fine\n")
    lines = [f"line {index}" for index in range(40)]
    write_rank_log(log_dir, 1, "\n".join([*lines, "terminate called after throwing an instance of "
                                          "'gloo::IoException'", ""]))
    report = failure_report(TORCHRUN_OUTPUT, log_dir, "full_experiments/ddp/ranks")
    assert report.startswith("rank 1 failed with signal SIGABRT; its last lines (full_experiments/ddp/ranks):")
    assert "gloo::IoException" in report and "line 39" in report
    assert "line 0\n" not in report and "rank 0 was fine" not in report  # only the tail, only the failed rank


def test_without_a_named_rank_the_report_is_torchruns_own_tail(tmp_path):
    output = "\n".join(f"launcher line {index}" for index in range(50))
    report = failure_report(output, tmp_path / "ranks", "ranks")
    assert report.splitlines() == [f"launcher line {index}" for index in range(20, 50)]
    write_rank_log(tmp_path / "ranks", 1, "")
    assert "it wrote nothing" in failure_report(TORCHRUN_OUTPUT, tmp_path / "ranks", "ranks")

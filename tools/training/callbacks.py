"""The full trainer's callbacks: metrics.jsonl, train.log, checkpoints and curves.png (rank 0 only)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from torchscout.tools.training.checkpoints import save_checkpoint
from torchscout.tools.training.engine import Callback, LoopState, Run
from torchscout.tools.training.plots import plot_curves
from torchscout.tools.training.types import EpochRecord
from torchscout.tools.workspace import atomic_write_text, atomic_writer

TRAINING_LOGGER = "torchscout.tools.training"
CHECKPOINT_COPY_CHUNK = 16 << 20


def _jsonl(records: list[EpochRecord]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


class MetricsFile(Callback):
    """``metrics.jsonl``: one JSON line per epoch. Rewritten from the history on (re)start, appended after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, run: Run, state: LoopState) -> None:
        # after a resume the file matches the checkpoint's history, even if the crash came mid-epoch
        atomic_write_text(self.path, _jsonl(state.history))

    def on_epoch_end(self, run: Run, state: LoopState, record: EpochRecord, improved: bool) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(_jsonl([record]))


class TrainLog(Callback):
    """``train.log``: the training logger's records for this run, one line per epoch plus events."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, encoding="utf-8", delay=True)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger = logging.getLogger(TRAINING_LOGGER)

    def on_train_start(self, run: Run, state: LoopState) -> None:
        # the logger is shared by every run in this process; the research graph trains in several
        # threads at once, so keep only the records of the thread that runs this training
        training_thread = threading.get_ident()
        self.handler.addFilter(lambda record: record.thread == training_thread)
        self.logger.addHandler(self.handler)
        self._log("training %s on %s from epoch %d to %d", type(run.raw_model).__name__, run.device,
                  state.epoch + 1, run.config.epochs)

    def _log(self, message: str, *args: Any) -> None:
        """An INFO line for train.log, and for the caller's handlers only if they asked for INFO.

        The logger's level is left alone: raising it would send every later run's epoch lines to
        whatever handlers the caller configured (an agent's console, the CLI).
        """
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(message, *args)  # reaches this run's handler and the caller's
        else:
            self.handler.handle(self.logger.makeRecord(self.logger.name, logging.INFO, __file__, 0, message,
                                                       args, None))

    def on_epoch_end(self, run: Run, state: LoopState, record: EpochRecord, improved: bool) -> None:
        values = " ".join(f"{key}={value:.5g}" if isinstance(value, float) else f"{key}={value}"
                          for key, value in record.items())
        self._log("%s%s", values, " (best)" if improved else "")

    def on_train_end(self, run: Run, state: LoopState) -> None:
        self._log("stopped after epoch %d (%s); best %s", state.epoch, state.stop_reason or "all epochs", state.best)
        self.close()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()


class Checkpoints(Callback):
    """``last.pt`` every epoch, ``best.pt`` when the monitored metric improves, ``epoch_N.pt`` every interval."""

    def __init__(self, folder: Path, interval: int, save_best: bool) -> None:
        self.folder, self.interval, self.save_best = folder, interval, save_best

    def on_epoch_end(self, run: Run, state: LoopState, record: EpochRecord, improved: bool) -> None:
        epoch = record["epoch"]
        last = save_checkpoint(self.folder / "last.pt", run, state)
        if self.interval and epoch % self.interval == 0:
            self._copy(last, self.folder / f"epoch_{epoch}.pt")
        if self.save_best and improved:
            self._copy(last, self.folder / "best.pt")

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        """An independent copy (not a hard link: damage to one file must not be damage to all), atomically."""
        with source.open("rb") as original, atomic_writer(target, "wb") as copy:
            shutil.copyfileobj(original, copy, CHECKPOINT_COPY_CHUNK)


class Curves(Callback):
    """``curves.png`` at the end of the run: loss and validation metrics per epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_end(self, run: Run, state: LoopState) -> None:
        if state.history:
            plot_curves(state.history, run.config.metrics, self.path)

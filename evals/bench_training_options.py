"""What each PyTorch option buys on this machine, measured on the bare preloaded loop.

Used by ``evals/bench_training.py``. Every option is measured against the same fp32 baseline in
the same process, side by side in rotating order (load from other processes hits them alike):

- ``inference_mode`` instead of ``no_grad`` for the validation pass;
- ``channels_last`` memory format (model and inputs);
- bf16 autocast (on CPU only where the CPU has bf16 instructions; on CUDA always);
- ``torch.compile`` (its compile time is counted separately and amortised over one epoch);
- torch intra-op threads and OpenMP's wait policy (each setting in a fresh process, see
  :func:`thread_settings`).

A time per training step (and per validation batch for ``inference_mode``) is the median over
``repeats`` timed blocks of ``steps`` steps each, after a warm-up block.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def _has_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class StepTimer:
    """Times ``steps`` training steps of one configuration of the model on preloaded tensors."""

    def __init__(self, make_model: Callable[[], nn.Module], inputs: torch.Tensor, targets: torch.Tensor,
                 batch_size: int, device: torch.device) -> None:
        self.make_model, self.inputs, self.targets = make_model, inputs, targets
        self.batch_size, self.device = batch_size, device

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def train_step_s(self, steps: int, repeats: int, *, channels_last: bool = False, bf16: bool = False,
                     compiled: bool = False) -> tuple[float, float]:
        """(median seconds per step, seconds the first step took beyond a normal one: compile time)."""
        torch.manual_seed(0)
        model = self.make_model().to(self.device)
        inputs = self.inputs
        if channels_last:
            model, inputs = model.to(memory_format=torch.channels_last), inputs.contiguous(
                memory_format=torch.channels_last)
        loop_model = torch.compile(model) if compiled else model
        optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
        loss_fn = nn.CrossEntropyLoss()
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext())
        count = len(self.targets)

        def block(n: int, offset: int) -> float:
            started = time.perf_counter()
            for step in range(n):
                start = ((offset + step) * self.batch_size) % max(1, count - self.batch_size)
                with autocast:
                    loss = loss_fn(loop_model(inputs[start:start + self.batch_size]),
                                   self.targets[start:start + self.batch_size])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            self._sync()
            return time.perf_counter() - started

        first = block(1, 0)
        times = [block(steps, steps * (i + 1)) / steps for i in range(repeats + 1)][1:]
        per_step = statistics.median(times)
        return per_step, max(0.0, first - per_step)

    def validation_batch_s(self, batches: int, repeats: int, mode: str) -> float:
        torch.manual_seed(0)
        model = self.make_model().to(self.device).eval()
        context = torch.inference_mode if mode == "inference_mode" else torch.no_grad

        def block() -> float:
            started = time.perf_counter()
            with context():
                for batch in range(batches):
                    start = (batch * self.batch_size) % max(1, len(self.targets) - self.batch_size)
                    model(self.inputs[start:start + self.batch_size]).float().argmax(1)
            self._sync()
            return (time.perf_counter() - started) / batches

        block()
        return statistics.median(block() for _ in range(repeats))


# one process per thread setting: OpenMP reads OMP_WAIT_POLICY once, when torch loads it
_STEP_SCRIPT = """
import statistics, sys, time
import torch
from torch import nn
sys.path.insert(0, sys.argv[1])
from net import {model_class} as Net
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
model, steps = Net(), int(sys.argv[3])
inputs, targets = torch.randn({batch}, 1, 28, 28), torch.randint(0, 10, ({batch},))
optimizer, loss_fn = torch.optim.Adadelta(model.parameters(), lr=1.0), nn.CrossEntropyLoss()
def block(n):
    started = time.perf_counter()
    for _ in range(n):
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / n
block(2)
print(statistics.median(block(steps) for _ in range(3)))
"""


def thread_settings(folder: str, model_class: str, batch: int, steps: int) -> list[tuple[str, float]]:
    """Seconds per training step with 1 thread, and with every core's thread waiting actively
    (OpenMP spins) or passively (sleeps; torchscout's default), each in a fresh process."""
    import os
    import subprocess
    import sys

    script = _STEP_SCRIPT.format(model_class=model_class, batch=batch)
    cores = os.cpu_count() or 1
    settings = [(1, "PASSIVE"), (cores, "ACTIVE"), (cores, "PASSIVE")] if cores > 1 else [(1, "PASSIVE")]
    timings = []
    for threads, policy in settings:
        environment = {**os.environ, "OMP_WAIT_POLICY": policy}
        completed = subprocess.run([sys.executable, "-c", script, folder, str(threads), str(steps)], env=environment,
                                   capture_output=True, text=True, check=True)
        timings.append((f"{threads} thread(s), OMP_WAIT_POLICY={policy}", float(completed.stdout.split()[-1])))
    return timings


def measure_options(timer: StepTimer, steps: int, repeats: int, steps_per_epoch: int,
                    with_compile: bool) -> list[tuple[str, str]]:
    """(option, what it bought) lines; a positive percentage is time saved against the fp32 baseline."""
    base, _ = timer.train_step_s(steps, repeats)
    lines = [("baseline: fp32, contiguous, eager", f"{base * 1000:.2f} ms/step")]

    def saved(seconds: float) -> str:
        return f"{seconds * 1000:.2f} ms/step ({100 * (1 - seconds / base):+.1f}% time saved)"

    no_grad = timer.validation_batch_s(steps, repeats, "no_grad")
    inference = timer.validation_batch_s(steps, repeats, "inference_mode")
    lines.append(("validation: inference_mode vs no_grad", f"{inference * 1000:.2f} vs {no_grad * 1000:.2f} "
                  f"ms/batch ({100 * (1 - inference / no_grad):+.1f}%)"))
    if timer.inputs.dim() == 4:
        lines.append(("channels_last", saved(timer.train_step_s(steps, repeats, channels_last=True)[0])))
    if _has_bf16(timer.device):
        lines.append(("bf16 autocast", saved(timer.train_step_s(steps, repeats, bf16=True)[0])))
    else:
        lines.append(("bf16 autocast", "not measured: no bf16 instructions on this device"))
    if with_compile:
        per_step, compile_s = timer.train_step_s(steps, repeats, compiled=True)
        epoch_gain = (base - per_step) * steps_per_epoch - compile_s
        lines.append(("torch.compile", f"{saved(per_step)}; compile {compile_s:.1f} s, so one epoch of "
                      f"{steps_per_epoch} steps {'gains' if epoch_gain > 0 else 'loses'} {abs(epoch_gain):.1f} s"))
    return lines

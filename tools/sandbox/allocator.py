"""glibc's allocator set up for training loops: memory a step frees is kept for the next step.

A training step allocates and frees the same large tensors every step (activations, gradients).
glibc serves a block above its mmap threshold with a fresh ``mmap`` and gives a freed heap top
back to the kernel once it exceeds its trim threshold; both thresholds move at run time, with what
the process freed before. When a step's blocks land on the wrong side of them, every step starts
on fresh pages that the kernel must fault in and zero. Measured here on PyTorch's MNIST example
``Net`` (evals/bench_training.py): in some evaluations and not others, depending on what the
process had run before, 400,000-950,000 page faults per two epochs instead of a few thousand, and
epochs 15-20% slower. With fixed thresholds (blocks up to 32 MiB from the heap, and up to 1 GiB
of freed memory kept) every step reuses the previous step's pages: a few thousand faults, and the
same epoch time in every run. jemalloc and tcmalloc, which PyTorch suggests for CPU training, keep
freed memory the same way; this needs no extra library.

The cost: a process keeps up to 1 GiB of memory it freed instead of returning it, so only
processes that exist to train or to run one job call :func:`keep_freed_memory`: every sandbox job
(``child.run_job``: evaluations, training, probes), ``torchrun``'s workers and ``torchscout
train``. Values a user set with ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_`` are left
alone. (Sandbox jobs had a 64 MiB trim threshold before; a step of a larger model frees more than
that, and then gave it back every step.)
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's upper limit for it on 64-bit systems
TRIM_THRESHOLD_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Fix glibc's thresholds for this process (and the processes it forks); True if they were set."""
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # the user's own choice
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the libc this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # musl's mallopt does nothing and answers 0; glibc answers 1 for each value it took
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                  TRIM_THRESHOLD_BYTES))

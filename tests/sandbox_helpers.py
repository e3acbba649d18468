"""Module-level job functions for the sandbox and code-generation tests (the child imports them by name)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)


CALLS = {"count": 0}


def add(a: int, b: int) -> dict:
    CALLS["count"] += 1
    return {"sum": a + b, "calls_in_this_process": CALLS["count"], "torch_was_imported": "torch" in sys.modules,
            "cwd": os.getcwd(), "workspace": os.environ.get("TORCHSCOUT_WORKSPACE"),
            "marker": os.environ.get("TORCHSCOUT_TEST_MARKER"), "token": os.environ.get("MY_SERVICE_TOKEN"),
            "tmpdir": os.environ.get("TMPDIR")}


def chatty(lines: int) -> int:
    for index in range(lines):
        print(f"line {index}")
    print("to stderr", file=sys.stderr)
    return lines


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def sleep_forever() -> None:
    time.sleep(3600)


def allocate_bytes(n_bytes: int) -> int:
    import torch

    return torch.ones(n_bytes // 4, dtype=torch.float32).numel()


def crash_hard() -> None:
    import ctypes

    ctypes.string_at(0)  # a segmentation fault in native code




def check_defines(code_path: str, name: str) -> dict:
    """A codegen validation probe: the file imports and defines a callable ``name`` returning an int."""
    from torchscout.tools.loading import load_module

    module = load_module(code_path)
    function = getattr(module, name, None)
    if not callable(function):
        raise AssertionError(f"the file defines no function named {name}")
    value = function()
    if not isinstance(value, int):
        raise AssertionError(f"{name}() returned {value!r}, expected an int")
    return {"value": value}


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def leave_a_daemon_and_write(seconds: str, outside: str) -> dict:
    """A job that detaches a process and tries to write outside the workspace, then returns."""
    import subprocess

    subprocess.Popen(["setsid", "sleep", seconds], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        Path(outside).write_text("pwned")
        error = None
    except OSError as exc:
        error = str(exc)
    return {"outside_error": error}


def kept_after_freeing_mib() -> float:
    """MiB glibc keeps for reuse after three 31 MiB blocks (a training step's activations) are written
    and freed: about 93 where freed memory is kept, next to none where glibc mapped the blocks
    (its default for large blocks) or trimmed the freed heap back to the kernel."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                           "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(31 << 20) for _ in range(3)]
    for block in blocks:
        ctypes.memset(block, 1, 31 << 20)
    for block in blocks:
        libc.free(block)
    return libc.mallinfo2().keepcost / (1 << 20)


def kept_after_freeing_mib_with_kept_memory() -> dict:
    from torchscout.tools.sandbox.allocator import keep_freed_memory

    kept = keep_freed_memory()
    return {"set": kept, "kept_mib": kept_after_freeing_mib()}


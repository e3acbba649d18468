"""Benchmark: the quick evaluator's epoch time against the classic PyTorch MNIST loop and a minimal loop.

Three ways to train the same model (by default the ``Net`` of pytorch/examples ``mnist/main.py``:
two convs, max-pool, dropout, two linear layers; ``--model small`` for a lighter CNN whose
compute no longer hides the data pipeline) on the same MNIST-format data, batch size, optimizer
(Adadelta, lr 1.0) and device, in one process:

1. **classic** -- PyTorch's MNIST example: ``torchvision.datasets.MNIST`` with
   ``ToTensor() + Normalize``, a shuffling ``DataLoader`` (``num_workers=1``, ``pin_memory`` on CUDA,
   as in the example) and the usual loop. Every sample is turned into a PIL image and back each epoch.
2. **quick evaluator** -- ``pytorch_quick_evaluator`` with ``dataset: mnist``: the data is decoded and
   normalised once into tensors on the device; epochs slice seeded permutations; the loop also
   records gradient norms, loss spikes and checks for divergence.
3. **minimal** -- a hand-written loop over the same preloaded tensors with nothing else in it:
   the floor that shows the quick evaluator's own overhead.

Each side trains ``--epochs`` epochs per round (train time only, no evaluation), the sides take
turns for ``--rounds`` rounds, and the reported number is the median of every epoch after each
round's first (warm-up). Targets: quick evaluator faster than classic on CPU
and >= 3x faster on a GPU; quick evaluator within 10% of minimal.

Data: the real MNIST files under ``--data-root`` if they are there, else random images written in
MNIST's idx format (same sizes and formats, so timings are the same; accuracy is meaningless)::

    .venv/bin/python evals/bench_training.py                       # 6000 train images, CPU
    .venv/bin/python evals/bench_training.py --threads 1           # steadier on a busy machine
    .venv/bin/python evals/bench_training.py --model small         # a lighter CNN
    .venv/bin/python evals/bench_training.py --samples 60000 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from torchscout.tools.training.vision_sources import DATASET_STATISTICS  # noqa: E402

MNIST = DATASET_STATISTICS["mnist"]

MODEL_SOURCE = '''
import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    """pytorch/examples mnist/main.py (returning logits; CrossEntropyLoss = log_softmax + nll_loss)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


class SmallNet(nn.Module):
    """A lighter CNN (about 20x fewer FLOPs than Net): per-sample data work weighs more next to it."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))
'''


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def synthetic_mnist(root: Path, train: int, test: int) -> None:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, size in (("train", train), ("t10k", test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (size, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, size))


MODEL_CLASS = {"example": "Net", "small": "SmallNet"}


def load_net(workspace: Path, model: str) -> type[nn.Module]:
    from torchscout.tools.loading import load_class

    return load_class(workspace / "net.py", MODEL_CLASS[model], base=nn.Module)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def classic_epochs(workspace: Path, data_root: Path, model_name: str, samples: int, batch_size: int, epochs: int,
                   device: torch.device) -> list[float]:
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MNIST.mean, MNIST.std)])
    dataset = datasets.MNIST(str(data_root), train=True, download=False, transform=transform)
    dataset = Subset(dataset, range(min(samples, len(dataset))))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=1,
                        pin_memory=device.type == "cuda")
    torch.manual_seed(0)
    model = load_net(workspace, model_name)().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(data), target)
            loss.backward()
            optimizer.step()
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def quick_evaluator_epochs(data_root: Path, model_name: str, samples: int, batch_size: int, epochs: int,
                           device: torch.device, amp: bool = True) -> list[float]:
    from torchscout.tools.training.evaluation import pytorch_quick_evaluator

    result = pytorch_quick_evaluator("net.py", MODEL_CLASS[model_name], {
        "dataset": "mnist", "data_root": str(data_root), "train_subset": samples, "batch_size": batch_size,
        "epochs": epochs, "optimizer": "Adadelta", "learning_rate": 1.0, "device": device.type,
        "metrics": ["accuracy"], "sanity": "off", "amp": amp})
    if result["status"] != "completed":
        raise SystemExit(f"quick evaluator failed: {result.get('error')}\n{result.get('traceback', '')}")
    return [record["epoch_time_s"] for record in result["history"]]


def minimal_epochs(workspace: Path, data_root: Path, model_name: str, samples: int, batch_size: int, epochs: int,
                   device: torch.device) -> list[float]:
    from torchvision import datasets

    raw = datasets.MNIST(str(data_root), train=True, download=False)
    inputs = MNIST.normalise(raw.data[:samples].float().div(255).unsqueeze(1)).to(device)
    targets = raw.targets[:samples].to(device)
    torch.manual_seed(0)
    model = load_net(workspace, model_name)().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(epoch)).to(device)
        for start in range(0, len(targets), batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def run_rounds(workspace: Path, data_root: Path, args: argparse.Namespace,
               device: torch.device) -> dict[str, list[float]]:
    """Interleave the sides round by round, so load from other processes hits them alike.

    Each round trains every side for ``args.epochs`` epochs and keeps the epochs after the first;
    the order rotates from round to round.
    """
    sizes = (args.samples, args.batch_size, args.epochs, device)
    sides: dict[str, Callable[[], list[float]]] = {
        "classic (DataLoader + ToTensor)": lambda: classic_epochs(workspace, data_root, args.model, *sizes),
        "quick evaluator": lambda: quick_evaluator_epochs(data_root, args.model, *sizes),
        "minimal preloaded loop": lambda: minimal_epochs(workspace, data_root, args.model, *sizes),
    }
    if device.type == "cuda":
        # the classic loop runs in fp32: show how much of the gap is bf16 autocast
        sides["quick evaluator, fp32 (amp off)"] = lambda: quick_evaluator_epochs(
            data_root, args.model, *sizes, amp=False)
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for round_number in range(args.rounds):
        # rotate who goes first, so whatever a side leaves behind (worker processes, cache) is shared out
        for name in names[round_number % len(names):] + names[:round_number % len(names)]:
            times[name].extend(sides[name]()[1:])
    return times


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000, help="training images per epoch")
    parser.add_argument("--model", choices=sorted(MODEL_CLASS), default="example",
                        help="example: the Net of PyTorch's MNIST example; small: a lighter CNN")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per side and round (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all sides, interleaved")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-root", type=Path, default=None, help="folder with MNIST/raw (else synthetic)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 gives stable numbers on a busy shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        os.environ["TORCHSCOUT_WORKSPACE"] = str(workspace)
        os.environ["TORCHSCOUT_PROGRESS"] = "0"
        os.chdir(workspace)
        (workspace / "net.py").write_text(MODEL_SOURCE, encoding="utf-8")
        data_root = args.data_root
        if data_root is None or not (data_root / "MNIST" / "raw").is_dir():
            data_root = workspace / "data"
            synthetic_mnist(data_root, args.samples, 1000)
            source = "synthetic MNIST-format idx files"
        else:
            source = f"MNIST from {data_root}"
        sides = run_rounds(workspace, data_root, args, device)
    print(f"machine: {machine(device)}")
    print(f"model: {MODEL_CLASS[args.model]}; data: {source}; {args.samples} training images, batch {args.batch_size}, device {device}, "
          f"median over {args.rounds} interleaved rounds of epochs 2..{args.epochs}")
    for name, times in sides.items():
        print(f"  {name:<34} {statistics.median(times):8.3f} s/epoch   ({', '.join(f'{t:.3f}' for t in times)})")
    classic, quick, minimal = (statistics.median(sides[name]) for name in list(sides)[:3])
    print(f"quick evaluator vs classic loop: {classic / quick:.2f}x faster")
    if device.type == "cuda":
        fp32 = statistics.median(sides["quick evaluator, fp32 (amp off)"])
        print(f"quick evaluator in fp32 vs classic loop (fp32 too): {classic / fp32:.2f}x faster")
    print(f"quick evaluator overhead vs minimal loop: {100 * (quick / minimal - 1):+.1f}%")


if __name__ == "__main__":
    main()

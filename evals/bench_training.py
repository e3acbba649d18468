"""Benchmark: where a quick evaluation's time goes, and the engine against the textbook loop and a bare loop.

For each model (``--models``: ``example``, the compute-bound ``Net`` of pytorch/examples
``mnist/main.py``; ``small``, a data-bound CNN about 20x lighter), on the same MNIST-format data,
batch size, optimizer (Adadelta, lr 1.0) and device, in one process:

1. **textbook** -- PyTorch's MNIST example: ``torchvision.datasets.MNIST`` with ``ToTensor() +
   Normalize``, a shuffling ``DataLoader`` (``num_workers=1``, ``pin_memory`` on CUDA) and the
   usual loop. Every sample becomes a PIL image and a tensor again each epoch.
2. **quick evaluator** -- ``pytorch_quick_evaluator`` with ``dataset: mnist``: decoded and normalised
   once into tensors on the device; epochs slice seeded permutations; the loop also records
   gradient norms, loss spikes and checks for divergence.
3. **bare preloaded loop** -- a hand-written loop over the same preloaded tensors in the memory
   format the engine picks (channels_last for these CNNs), nothing else: the floor that shows the
   engine's own overhead.

The sides take turns for ``--rounds`` (5) rounds of ``--epochs`` epochs; each round keeps the epochs
after its first. A ratio is taken within each round (the sides ran back to back there, so a stretch
of load from another process slows both) and the number is the median of the rounds' ratios.
Targets: >= 1.0x the textbook loop on ``Net`` on a CPU, >= 2x on the data-bound model, overhead
vs the bare loop <= 3%. Then the quick evaluation's own
breakdown (the engine's ``timings``: start-up, data, set-up, sanity check, train steps,
validation, metrics, callbacks, results; plus the sandbox's per-job start-up when confined), and
what each PyTorch option buys here (``evals/bench_training_options.py``: inference_mode,
channels_last, bf16 autocast, ``--compile``, threads and OpenMP's wait policy).

Data: the real MNIST files under ``--data-root`` if they are there, else synthetic digits
(scikit-learn's 8x8 digits scaled to 20x20 and placed like MNIST's) written as MNIST's idx files,
read by torchvision like the real ones; no download::

    .venv/bin/python evals/bench_training.py                        # 6000 images, both models, CPU
    .venv/bin/python evals/bench_training.py --models example --compile
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
# every side runs as torchscout runs its training: OpenMP threads wait passively (torchscout's default,
# set before torch loads); the thread-settings lines compare the policies in fresh processes
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from torchscout.tools.sandbox.allocator import keep_freed_memory  # noqa: E402

# and glibc keeps the memory a step frees, as in torchscout's training processes (every sandbox job,
# torchrun's workers; tools/sandbox/allocator.py): every side runs with it
keep_freed_memory()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from torchscout.tools.training.memory_format import apply_memory_format  # noqa: E402
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


def synthetic_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` 28x28 digit images: scikit-learn's 8x8 digits scaled to 20x20 and placed like MNIST's
    (a random shift around the centre, a little noise), with their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    chosen = rng.integers(0, len(digits.target), count)
    small = torch.from_numpy(digits.images[chosen] / 16.0).float().unsqueeze(1)
    scaled = nn.functional.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)[:, 0].numpy()
    images = np.zeros((count, 28, 28), dtype=np.float32)
    for index, (dy, dx) in enumerate(rng.integers(2, 7, (count, 2))):
        images[index, dy:dy + 20, dx:dx + 20] = scaled[index]
    images = np.clip(images + rng.normal(0, 0.05, images.shape), 0, 1)
    return (images * 255).round().astype(np.uint8), digits.target[chosen].astype(np.uint8)


def synthetic_mnist(root: Path, train: int, test: int) -> None:
    """MNIST's four idx files (the format torchvision reads) with synthetic digits, no download."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, size in (("train", train), ("t10k", test)):
        images, labels = synthetic_digits(size, rng)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


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
                           device: torch.device, amp: bool = True) -> tuple[list[float], dict[str, float]]:
    """The evaluator's epoch times and its own breakdown of the whole evaluation (``timings``)."""
    from torchscout.tools.training.evaluation import pytorch_quick_evaluator

    result = pytorch_quick_evaluator("net.py", MODEL_CLASS[model_name], {
        "dataset": "mnist", "data_root": str(data_root), "train_subset": samples, "batch_size": batch_size,
        "epochs": epochs, "optimizer": "Adadelta", "learning_rate": 1.0, "device": device.type,
        "metrics": ["accuracy"], "amp": amp})
    if result["status"] != "completed":
        raise SystemExit(f"quick evaluator failed: {result.get('error')}\n{result.get('traceback', '')}")
    return [record["epoch_time_s"] for record in result["history"]], result["timings"]


def minimal_epochs(workspace: Path, data_root: Path, model_name: str, samples: int, batch_size: int, epochs: int,
                   device: torch.device) -> list[float]:
    from torchvision import datasets

    raw = datasets.MNIST(str(data_root), train=True, download=False)
    inputs = MNIST.normalise(raw.data[:samples].float().div(255).unsqueeze(1)).to(device)
    targets = raw.targets[:samples].to(device)
    torch.manual_seed(0)
    model = load_net(workspace, model_name)().to(device)
    # the memory format the engine picks for this model (channels_last for these CNNs): the bare loop
    # measures the engine's own overhead, so it trains in the same one
    apply_memory_format(model, inputs[:batch_size], None, device)
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


QUICK = "quick evaluator"
CLASSIC = "textbook (DataLoader + ToTensor)"
BARE = "bare preloaded loop"


def run_rounds(workspace: Path, data_root: Path, model: str, args: argparse.Namespace,
               device: torch.device) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Interleave the sides round by round, so load from other processes hits them alike.

    Each round trains every side for ``args.epochs`` epochs and keeps the epochs after the first;
    the order rotates from round to round. Also returns the last quick evaluation's ``timings``.
    """
    sizes = (args.samples, args.batch_size, args.epochs, device)
    breakdown: dict[str, float] = {}

    def quick() -> list[float]:
        times, timings = quick_evaluator_epochs(data_root, model, *sizes)
        breakdown.clear()
        breakdown.update(timings)
        return times

    sides: dict[str, Callable[[], list[float]]] = {
        CLASSIC: lambda: classic_epochs(workspace, data_root, model, *sizes),
        QUICK: quick,
        BARE: lambda: minimal_epochs(workspace, data_root, model, *sizes),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for round_number in range(args.rounds):
        for name in names[round_number % len(names):] + names[:round_number % len(names)]:
            times[name].extend(sides[name]()[1:])
    return times, breakdown


def confined_startup_s(data_root: Path) -> tuple[float, float]:
    """(sandbox start-up per job, the fork server's own start) for a tiny evaluation run confined."""
    from torchscout.tools.sandbox.runner import warm_up
    from torchscout.tools.training.evaluation import quick_evaluator_confined

    started = time.perf_counter()
    warm_up()
    server_s = time.perf_counter() - started
    config = {"dataset": "mnist", "data_root": str(data_root), "train_subset": 256, "batch_size": 64, "epochs": 1,
              "device": "cpu", "metrics": ["accuracy"]}
    overheads = []
    for _ in range(4):
        started = time.perf_counter()
        result = quick_evaluator_confined("net.py", "SmallNet", config)
        overheads.append(time.perf_counter() - started - result["duration_s"])
    return statistics.median(overheads[1:]), server_s


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text + f", load average {os.getloadavg()[0]:.1f}"


def print_breakdown(timings: dict[str, float], startup_s: float | None) -> None:
    print(f"  where one quick evaluation's {timings['total_s']:.2f} s went ({args_note(timings)}):")
    if startup_s is not None:
        print(f"    {'sandbox start-up (fork, confine, reply)':<40} {startup_s:8.3f} s   (per job, outside the tool)")
    for phase, label in PHASE_LABELS.items():
        print(f"    {label:<40} {timings.get(phase, 0.0):8.3f} s   {100 * timings.get(phase, 0.0) / timings['total_s']:5.1f}%")


PHASE_LABELS = {"startup_s": "start-up (config, imports)", "data_s": "data (decode, normalise, move)",
                "setup_s": "model, optimizer, scheduler", "sanity_s": "sanity check",
                "train_steps_s": "train steps", "validation_s": "validation forward passes",
                "metrics_s": "metrics and epoch statistics", "callbacks_s": "callbacks",
                "results_s": "writing results", "other_s": "unaccounted"}


def args_note(timings: dict[str, float]) -> str:
    return f"{100 * timings['work_fraction']:.1f}% in train steps and validation"


def paired_ratios(sides: dict[str, list[float]], numerator: str, denominator: str, rounds: int) -> list[float]:
    """One ratio per round: ``numerator``'s median epoch over ``denominator``'s in that round.

    The two sides of a round ran back to back, so a stretch of load from another process slows both;
    the ratio of a round cancels it where the ratio of two medians over all rounds would not."""
    per_round = len(sides[numerator]) // rounds
    return [statistics.median(sides[numerator][index * per_round:(index + 1) * per_round])
            / statistics.median(sides[denominator][index * per_round:(index + 1) * per_round])
            for index in range(rounds)]


def compare(sides: dict[str, list[float]], rounds: int) -> tuple[float, float]:
    """Print each side's epoch times and the per-round ratios; return (quick vs textbook speed-up,
    overhead vs the bare loop), each the median of the per-round ratios."""
    for side, times in sides.items():
        print(f"  {side:<34} {statistics.median(times):8.3f} s/epoch   ({', '.join(f'{t:.3f}' for t in times)})")
    speedups = [1 / ratio for ratio in paired_ratios(sides, QUICK, CLASSIC, rounds)]
    overheads = [ratio - 1 for ratio in paired_ratios(sides, QUICK, BARE, rounds)]
    print(f"  per round: speed-up {', '.join(f'{value:.2f}x' for value in speedups)}; "
          f"overhead {', '.join(f'{100 * value:+.1f}%' for value in overheads)}")
    return statistics.median(speedups), statistics.median(overheads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000, help="training images per epoch")
    parser.add_argument("--models", default="example,small",
                        help="comma-separated: example (the Net of PyTorch's MNIST example), small (data-bound)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per side and round (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of all sides, interleaved (a shared "
                        "machine's noise is +-15%% per epoch: the median of five holds still)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-root", type=Path, default=None, help="folder with MNIST/raw (else synthetic)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--option-steps", type=int, default=20, help="steps per timed block of an option (0: skip)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (minutes on a CPU)")
    parser.add_argument("--no-sandbox", action="store_true", help="skip the confined start-up measurement")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODEL_CLASS))
    if unknown:
        raise SystemExit(f"unknown --models {unknown}; choose from {sorted(MODEL_CLASS)}")
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        os.environ.update(TORCHSCOUT_WORKSPACE=str(workspace), TORCHSCOUT_PROGRESS="0")
        os.chdir(workspace)
        (workspace / "net.py").write_text(MODEL_SOURCE, encoding="utf-8")
        data_root, source = prepare_data(workspace, args)
        print(f"machine: {machine(device)}")
        print(f"data: {source}; {args.samples} training images, batch {args.batch_size}, Adadelta, device {device}; "
              f"median over {args.rounds} interleaved rounds of epochs 2..{args.epochs}")
        startup_s = None
        if not args.no_sandbox and device.type == "cpu":
            startup_s, server_s = confined_startup_s(data_root)
            print(f"sandbox: fork server start {server_s:.2f} s once per process; {startup_s * 1000:.0f} ms per job")
        for model in models:
            print(f"\n{MODEL_CLASS[model]} ({'compute-bound' if model == 'example' else 'data-bound'}):")
            sides, timings = run_rounds(workspace, data_root, model, args, device)
            speedup, overhead = compare(sides, args.rounds)
            target = 1.0 if model == "example" else 2.0
            print(f"  quick evaluator vs textbook loop: {speedup:.2f}x (target >= {target:.1f}x)")
            print(f"  quick evaluator overhead vs bare preloaded loop: {100 * overhead:+.1f}% (target <= 3%)")
            print_breakdown(timings, startup_s)
            if args.option_steps > 0:
                print_options(workspace, data_root, model, args, device)


def prepare_data(workspace: Path, args: argparse.Namespace) -> tuple[Path, str]:
    data_root = args.data_root
    if data_root is not None and (data_root / "MNIST" / "raw").is_dir():
        return data_root, f"MNIST from {data_root}"
    data_root = workspace / "data"
    synthetic_mnist(data_root, args.samples, 1000)
    return data_root, "synthetic digits written as MNIST idx files"


def print_options(workspace: Path, data_root: Path, model: str, args: argparse.Namespace,
                  device: torch.device) -> None:
    from torchvision import datasets

    from evals.bench_training_options import StepTimer, measure_options, thread_settings

    raw = datasets.MNIST(str(data_root), train=True, download=False)
    inputs = MNIST.normalise(raw.data[:args.samples].float().div(255).unsqueeze(1)).to(device)
    timer = StepTimer(load_net(workspace, model), inputs, raw.targets[:args.samples].to(device),
                      args.batch_size, device)
    print(f"  PyTorch options on the bare loop ({args.option_steps} steps per block, median of 3):")
    for option, bought in measure_options(timer, args.option_steps, 3, -(-args.samples // args.batch_size),
                                          args.compile):
        print(f"    {option:<40} {bought}")
    if device.type == "cpu":
        settings = thread_settings(str(workspace), MODEL_CLASS[model], args.batch_size, args.option_steps)
        fastest = min(seconds for _, seconds in settings)
        for label, seconds in settings:
            print(f"    {label:<40} {seconds * 1000:8.2f} ms/step ({seconds / fastest:.2f}x the fastest)")


if __name__ == "__main__":
    main()

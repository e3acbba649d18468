"""Train this project's model from a YAML config: python train.py --config configs/best.yaml

Standalone: plain PyTorch, no torchscout. (torchscout's `export` command writes this file into
an exported research project; it is never imported by torchscout itself.)

Data kinds (`data.kind` in the config):
- synthetic: class prototypes plus noise (src/data/synthetic.py), no download;
- digits: scikit-learn's bundled 8x8 digits, stratified seeded holdout, normalised with the
  training split's mean and std (exactly as the research run saw them);
- text_classification: a CSV/JSONL of text,label encoded with tokenizers/tokenizer.json,
  truncated/padded to `max_length`, seeded holdout;
- mnist / cifar10: torchvision's loaders from `data_root`, normalised with the usual statistics;
- dummy: seeded random inputs and labels.
"""

# ruff: noqa: I001 - `src` is this project's own package (first-party once exported)
import argparse
import csv
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from src.data.synthetic import make_synthetic_classification, train_val_split
from src.models import MODELS
from src.optimizers import build_optimizer

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/base.yaml", help="YAML experiment config")
    parser.add_argument("--epochs", type=int, help="override training.epochs")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke tests)")
    parser.add_argument("--run-name", help="folder name under output_dir (default: a timestamp)")
    parser.add_argument("--output-dir", help="override output_dir")
    return parser.parse_args(argv)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def holdout(inputs: torch.Tensor, targets: torch.Tensor, val_fraction: float, seed: int):
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    val_size = min(len(targets) - 1, max(1, round(len(targets) * val_fraction)))
    val, train = order[:val_size], order[val_size:]
    return TensorDataset(inputs[train], targets[train]), TensorDataset(inputs[val], targets[val])


def load_digits_split(cfg: dict, seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    inputs = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    targets = torch.tensor(digits.target, dtype=torch.long)
    train_index, val_index = train_test_split(torch.arange(len(targets)).numpy(),
                                              test_size=cfg.get("val_fraction", 0.1),
                                              random_state=seed, stratify=digits.target)
    train_index, val_index = torch.from_numpy(train_index), torch.from_numpy(val_index)
    mean, std = inputs[train_index].mean(), inputs[train_index].std()
    inputs = (inputs - mean) / std
    return (TensorDataset(inputs[train_index], targets[train_index]),
            TensorDataset(inputs[val_index], targets[val_index]))


def read_rows(path: Path) -> list:
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))


def load_text_split(cfg: dict, seed: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(cfg["tokenizer_file"])
    rows = read_rows(Path(cfg["data_path"]))
    texts = [str(row[cfg.get("text_column", "text")]) for row in rows]
    labels = [row[cfg.get("label_column", "label")] for row in rows]
    max_length = int(cfg["max_length"])
    pad_id = next((tokenizer.token_to_id(token) for token in ("[PAD]", "<pad>")
                   if tokenizer.token_to_id(token) is not None), 0)
    inputs = torch.full((len(texts), max_length), pad_id, dtype=torch.long)
    for row, encoding in enumerate(tokenizer.encode_batch(texts)):
        ids = encoding.ids[:max_length]
        inputs[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    try:
        targets = torch.tensor([int(label) for label in labels], dtype=torch.long)
    except (TypeError, ValueError):
        names = sorted({str(label) for label in labels})
        targets = torch.tensor([names.index(str(label)) for label in labels], dtype=torch.long)
    return holdout(inputs, targets, cfg.get("val_fraction", 0.1), seed)


def load_torchvision_split(cfg: dict):
    from torchvision import datasets

    root = cfg.get("data_root", "data")
    if cfg["kind"] == "mnist":
        splits = [datasets.MNIST(root, train=train, download=True) for train in (True, False)]
        return tuple(TensorDataset(split.data.float().div(255).sub(MNIST_MEAN).div(MNIST_STD).unsqueeze(1),
                                   split.targets.long()) for split in splits)
    splits = [datasets.CIFAR10(root, train=train, download=True) for train in (True, False)]
    mean, std = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return tuple(TensorDataset(torch.tensor(split.data).permute(0, 3, 1, 2).float().div(255).sub(mean).div(std),
                               torch.tensor(split.targets).long()) for split in splits)


def build_data(cfg: dict, seed: int):
    kind = cfg["kind"]
    if kind == "synthetic":
        dataset = make_synthetic_classification(cfg["num_samples"], cfg["input_shape"], cfg["num_classes"], seed)
        return train_val_split(dataset, cfg.get("val_fraction", 0.2), seed)
    if kind == "digits":
        return load_digits_split(cfg, seed)
    if kind == "text_classification":
        return load_text_split(cfg, seed)
    if kind in {"mnist", "cifar10"}:
        return load_torchvision_split(cfg)
    if kind == "dummy":
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(cfg.get("num_samples", 512), *cfg["input_shape"], generator=generator)
        targets = torch.randint(0, cfg["num_classes"], (len(inputs),), generator=generator)
        return holdout(inputs, targets, cfg.get("val_fraction", 0.1), seed)
    raise ValueError(f"data.kind {kind!r} is not supported: use synthetic, digits, text_classification, "
                     "mnist, cifar10 or dummy")


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict:
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        logits = model(inputs)
        loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += labels.numel()
    return {"val_loss": loss_sum / count, "val_accuracy": correct / count}


def save_atomically(obj, path: Path) -> None:
    """torch.save to a temp file, then rename: a crash never leaves half a checkpoint."""
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(obj, temp)
    os.replace(temp, path)


def main(argv=None) -> dict:
    args = parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    if args.epochs is not None:
        config["training"]["epochs"] = args.epochs
    seed = config.get("seed", 0)
    seed_everything(seed)
    train_cfg = config["training"]
    device = pick_device(train_cfg.get("device", "auto"))

    train_set, val_set = build_data(config["data"], seed)
    train_loader = DataLoader(train_set, batch_size=train_cfg["batch_size"], shuffle=True)
    val_loader = DataLoader(val_set, batch_size=train_cfg["batch_size"])
    model = MODELS[config["model"]["name"]](**config["model"].get("params", {})).to(device)
    optimizer = build_optimizer(model.parameters(), train_cfg["optimizer"])
    epochs = train_cfg["epochs"]
    # `scheduler: cosine` decays the lr over the whole run, as the research run's full training did
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
                 if train_cfg.get("scheduler") == "cosine" else None)

    run_dir = Path(args.output_dir or config.get("output_dir", "experiments")) / (
        args.run_name or time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    metrics, steps = {}, 0
    for epoch in range(1, epochs + 1):
        model.train()
        started, loss_sum, batches = time.time(), 0.0, 0
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            loss = nn.functional.cross_entropy(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_cfg.get("grad_clip"):
                nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
            optimizer.step()
            loss_sum, batches, steps = loss_sum + loss.item(), batches + 1, steps + 1
            if args.max_steps and steps >= args.max_steps:
                break
        if scheduler is not None:
            scheduler.step()
        metrics = {"epoch": epoch, "train_loss": loss_sum / batches, **evaluate(model, val_loader, device),
                   "epoch_time_s": round(time.time() - started, 3)}
        with (run_dir / "metrics.jsonl").open("a") as log:
            log.write(json.dumps(metrics) + "\n")
        print(json.dumps(metrics))
        if args.max_steps and steps >= args.max_steps:
            break
    save_atomically({"model": model.state_dict(), "config": config, "metrics": metrics}, run_dir / "model.pt")
    print(f"saved {run_dir / 'model.pt'}")
    return metrics


if __name__ == "__main__":
    main()

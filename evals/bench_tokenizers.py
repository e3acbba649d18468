"""Benchmark: pytorch_tokenizer_manager against the raw HuggingFace ``tokenizers`` API, side by side.

What it measures, in one process on one generated corpus:

1. **Training time.** ``pytorch_tokenizer_manager(action="train")`` (path checks, the trainer,
   saving tokenizer.json + the transformers folder, registering) against a raw
   ``Tokenizer.train(files, BpeTrainer(...))`` with the same pipeline and settings (byte-level
   BPE by default). Target: the tool within 10% of the raw trainer.
2. **Apply throughput** (tokens/s) on one large batch: ``action="apply"`` (padding to the
   longest row, Python lists out) against raw ``encode_batch`` -- alone, and followed by the
   same conversion to padded Python lists, which is what a caller of the raw API needs too.

The corpus is synthetic text with a Zipf-distributed vocabulary of invented words (so BPE
learns realistic merges), ~50 MB by default. Run::

    .venv/bin/python evals/bench_tokenizers.py            # 50 MB, vocab 16000, BPE
    .venv/bin/python evals/bench_tokenizers.py --size-mb 5 --type WordPiece
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SYLLABLES = ("ka ri to na mi se lo ve ra du pe an is ot um el ar in on es th qu st pr gr bl".split())


def generate_corpus(path: Path, size_bytes: int, seed: int = 0) -> None:
    """Sentences of Zipf-distributed invented words until the file holds ``size_bytes``."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(50_000)]
    weights = [1.0 / rank for rank in range(1, len(vocabulary) + 1)]
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < size_bytes:
            words = rng.choices(vocabulary, weights=weights, k=200_000)
            lines = [" ".join(words[i:i + 12]) + "." for i in range(0, len(words), 12)]
            chunk = "\n".join(lines) + "\n"
            handle.write(chunk)
            written += len(chunk.encode("utf-8"))


@contextlib.contextmanager
def timed(into: list[tuple[float, float]]) -> Iterator[None]:
    """Append (wall seconds, CPU seconds of this process, all threads) for the block to ``into``.

    CPU time is reported beside wall time because the machine may be shared: other processes
    stretch wall time, while the work a side does shows in its CPU time.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append((time.perf_counter() - wall, time.process_time() - cpu))


def raw_train(files: list[str], settings: dict, into: list[tuple[float, float]]) -> int:
    """The same pipeline through the raw tokenizers API; returns the vocab size."""
    from torchscout.tools.text.tokenizer_training import build_pipeline

    # build_pipeline only wires tokenizers' own components (normaliser, pre-tokeniser, trainer)
    tokenizer, trainer = build_pipeline(settings)
    with timed(into):
        tokenizer.train(files, trainer)
    return tokenizer.get_vocab_size()


def tool_train(name: str, files: list[str], settings: dict, into: list[tuple[float, float]]) -> dict:
    from torchscout.tools.text.tokenizer_manager import pytorch_tokenizer_manager

    config = {key: settings[key] for key in ("type", "vocab_size", "min_frequency", "special_tokens")}
    with timed(into):
        return pytorch_tokenizer_manager("train", name, config={**config, "data_files": files})


def apply_timings(name: str, texts: list[str], repeats: int) -> tuple[int, dict[str, tuple[float, float]]]:
    """Token count and the best (wall, CPU) of each way to encode ``texts``, interleaved."""
    from torchscout.tools.text.tokenizer_manager import load_tokenizer, pytorch_tokenizer_manager
    from torchscout.tools.text.tokenizer_store import pad_token_of

    raw = load_tokenizer(name)
    tokens = sum(len(encoding.ids) for encoding in raw.encode_batch(texts))
    pad_token, pad_id = pad_token_of(raw)

    def raw_to_lists() -> None:
        raw.enable_padding(pad_id=pad_id, pad_token=pad_token)
        encodings = raw.encode_batch(texts)
        _ = ([e.ids for e in encodings], [e.attention_mask for e in encodings])
        raw.no_padding()

    sides = {
        "raw encode_batch": lambda: raw.encode_batch(texts),
        "raw encode_batch + padded lists": raw_to_lists,
        "tool apply (padded lists)": lambda: pytorch_tokenizer_manager("apply", name, text_input=texts),
    }
    pytorch_tokenizer_manager("apply", name, text_input=texts[:10])  # load + cache once, as an agent's 2nd call
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
    for _ in range(repeats):
        for label, function in sides.items():
            with timed(runs[label]):
                function()
    return tokens, {label: min(times) for label, times in runs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--type", default="BPE", choices=["BPE", "WordPiece", "Unigram", "CharLevel"])
    parser.add_argument("--apply-lines", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3, help="apply timings: best of this many")
    parser.add_argument("--train-repeats", type=int, default=3, help="training runs per side")
    parser.add_argument("--workspace", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="bench_tokenizers_"))
    workspace.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHSCOUT_WORKSPACE"] = str(workspace)
    os.environ.setdefault("TORCHSCOUT_PROGRESS", "0")
    import tokenizers
    import torch

    from torchscout.tools.text.tokenizer_training import DEFAULT_SPECIAL_TOKENS

    corpus = workspace / "data" / "corpus.txt"
    corpus.parent.mkdir(exist_ok=True)
    started = time.perf_counter()
    generate_corpus(corpus, int(args.size_mb * 1e6))
    size = corpus.stat().st_size
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, tokenizers {tokenizers.__version__}, torch {torch.__version__}")
    print(f"corpus: {size / 1e6:.1f} MB of synthetic Zipf text ({time.perf_counter() - started:.1f} s to generate); "
          f"{args.type}, vocab_size {args.vocab_size}")

    settings = {"type": args.type, "vocab_size": args.vocab_size, "min_frequency": 2,
                "special_tokens": list(DEFAULT_SPECIAL_TOKENS), "lowercase": False, "max_token_length": None,
                "byte_level": args.type == "BPE"}
    files = [str(corpus)]
    corpus.read_bytes()  # warm the page cache so neither side pays the first read from disk
    raw_runs: list[tuple[float, float]] = []
    tool_runs: list[tuple[float, float]] = []
    for _ in range(args.train_repeats):  # interleaved, best of each: other load on the machine hits both
        raw_vocab = raw_train(files, settings, raw_runs)
        result = tool_train("bench", ["data/corpus.txt"], settings, tool_runs)
    raw_wall, raw_cpu = min(run[0] for run in raw_runs), min(run[1] for run in raw_runs)
    tool_wall, tool_cpu = min(run[0] for run in tool_runs), min(run[1] for run in tool_runs)
    print(f"load average (1 min) of the machine after training: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"\ntraining, best of {args.train_repeats} interleaved   wall s    CPU s    vocab")
    print(f"  raw tokenizers trainer              {raw_wall:8.2f} {raw_cpu:8.2f} {raw_vocab:8d}")
    print(f"  pytorch_tokenizer_manager           {tool_wall:8.2f} {tool_cpu:8.2f} {result['vocab_size']:8d}")
    for label, ratio in (("wall", tool_wall / raw_wall), ("CPU", tool_cpu / raw_cpu)):
        print(f"  tool / raw ({label}) = {ratio:.3f} ({ratio - 1:+.1%}; target within +10%: "
              f"{'met' if ratio <= 1.10 else 'NOT met'})")

    with corpus.open(encoding="utf-8") as handle:
        texts = [line.rstrip("\n") for _, line in zip(range(args.apply_lines), handle, strict=False)]
    tokens, best = apply_timings("bench", texts, args.repeats)
    print(f"\napply on one batch of {len(texts)} lines ({tokens} tokens), best of {args.repeats} interleaved")
    print(f"  {'':33s} {'M tokens/s (wall)':>18s} {'(CPU)':>8s}")
    for label, (wall, cpu) in best.items():
        print(f"  {label:33s} {tokens / wall / 1e6:18.2f} {tokens / cpu / 1e6:8.2f}")
    reference = best["raw encode_batch + padded lists"]
    tool = best["tool apply (padded lists)"]
    print(f"  tool / (raw + lists) throughput: wall {reference[0] / tool[0]:.3f}, CPU {reference[1] / tool[1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

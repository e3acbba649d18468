"""Small corpora in the shapes the tokenizer tests need, written into the workspace."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("the quick brown fox jumps over lazy dog while researchers train small models on tiny corpora "
         "tokenizer vocabulary merges subword units café naïve résumé déjà vu models learning rate").split()


def write_prose(path: Path, lines: int = 1500, seed: int = 0) -> Path:
    """Space-delimited English-like text with punctuation and a few accented words."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + rng.choice(".!?,")
                     for _ in range(lines))
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_dna(path: Path, lines: int = 400, seed: int = 1) -> Path:
    """Long ACGT reads: a four-letter alphabet and no word structure."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("".join(rng.choice("ACGT") for _ in range(120)) for _ in range(lines)) + "\n")
    return path


def write_cjk(path: Path, lines: int = 300, seed: int = 2) -> Path:
    """Text in a large script without spaces (random CJK ideographs from a 3,000-character range)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(60)) + "。"
                              for _ in range(lines)) + "\n", encoding="utf-8")
    return path

"""Generate the synthetic text-classification set of examples/text_synthetic.yaml (offline, seeded).

    python examples/make_text_synthetic.py [--out data/text_synthetic.csv] [--rows 1600] [--seed 0]

Each row is a short sentence about one of four topics: a few topic words (some shared with
another topic, so it is not a keyword lookup) mixed with common filler words, and the
topic's index as the label. Writes a CSV with the columns ``text`` and ``label``.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

TOPICS = {
    "sports": ["goal", "match", "striker", "coach", "league", "referee", "penalty", "stadium", "season",
               "keeper", "tournament", "sprint", "medal", "team", "score"],
    "cooking": ["oven", "recipe", "garlic", "simmer", "butter", "flour", "sauce", "knife", "roast",
                "pepper", "dough", "bake", "onion", "stew", "spice"],
    "space": ["orbit", "rocket", "planet", "comet", "galaxy", "launch", "astronaut", "telescope",
              "nebula", "moon", "gravity", "satellite", "crater", "asteroid", "star"],
    "finance": ["market", "stock", "bond", "interest", "dividend", "inflation", "bank", "loan", "equity",
                "budget", "investor", "currency", "profit", "tax", "fund"],
}
FILLER = ["the", "a", "new", "after", "with", "today", "about", "very", "report", "says", "this", "week",
          "people", "great", "again", "local", "small", "big", "first", "last", "and", "of", "in", "on"]
# A word that appears in two topics makes single words ambiguous: the model must combine them.
SHARED = {"sports": "star", "cooking": "market", "space": "launch", "finance": "season"}


def sentence(topic: str, rng: random.Random) -> str:
    words = rng.sample(TOPICS[topic], k=rng.randint(2, 4))
    if rng.random() < 0.3:
        words.append(SHARED[topic])
    words += rng.choices(FILLER, k=rng.randint(3, 7))
    rng.shuffle(words)
    return " ".join(words)


def generate(path: Path, rows: int = 1600, seed: int = 0) -> Path:
    rng = random.Random(seed)
    names = sorted(TOPICS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for index in range(rows):
            label = index % len(names)
            writer.writerow([sentence(names[label], rng), label])
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/text_synthetic.csv", help="CSV file to write")
    parser.add_argument("--rows", type=int, default=1600, help="number of sentences")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    written = generate(Path(args.out), args.rows, args.seed)
    print(f"wrote {args.rows} rows to {written}")


if __name__ == "__main__":
    main()

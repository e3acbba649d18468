"""Text tasks: the training texts as a tokenizer corpus, and one tokenizer per searched vocabulary size."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from torchscout.agent.records import TokenizerRecord
from torchscout.agent.task import Task
from torchscout.settings import get_settings
from torchscout.tools.errors import ToolError
from torchscout.tools.text.tokenizer_manager import pytorch_tokenizer_manager
from torchscout.tools.workspace import atomic_write_text, resolve

DEFAULT_VOCAB_SIZES = (500, 2000)


def dataset_file(task: Task) -> Path:
    """The CSV/JSONL file of a text_classification task (workspace first, then the data dir)."""
    raw = task.dataset_params.get("data_path")
    if not raw:
        raise ToolError("a text task needs dataset_params.data_path: the CSV or JSONL file of text and label")
    path = resolve(raw, kind="dataset_params.data_path")
    if not path.exists() and not Path(raw).is_absolute():
        for folder in (task.data_root, get_settings().data_dir):
            if folder and (resolve(folder) / raw).exists():
                return resolve(folder) / raw
    if not path.exists():
        raise ToolError(f"dataset_params.data_path {raw!r} does not exist (looked in the workspace, data_root "
                        "and the data dir)")
    return path


def read_texts(path: Path, text_column: str) -> list[str]:
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    if rows and text_column not in rows[0]:
        raise ToolError(f"{path.name} has no column {text_column!r}; columns: {sorted(rows[0])}")
    return [str(row[text_column]) for row in rows]


def train_tokenizers(task: Task, run_name: str, run_dir: str) -> dict[str, TokenizerRecord]:
    """Train the task's tokenizers; returns str(actual vocab size) -> {name, path, vocab_size, requested}."""
    settings = task.tokenizer
    text_column = task.dataset_params.get("text_column", settings.get("text_column", "text"))
    texts = read_texts(dataset_file(task), text_column)
    corpus = resolve(f"{run_dir}/tokenizers/corpus.txt")
    atomic_write_text(corpus, "\n".join(text.replace("\n", " ") for text in texts) + "\n")
    trained: dict[str, TokenizerRecord] = {}
    for requested in settings.get("vocab_sizes") or DEFAULT_VOCAB_SIZES:
        name = f"{run_name}-v{requested}"
        result = pytorch_tokenizer_manager(
            action="train", tokenizer_name=name, tokenizer_path=f"{run_dir}/tokenizers/v{requested}",
            config={"type": settings.get("type", "BPE"), "vocab_size": int(requested),
                    "data_files": [f"{run_dir}/tokenizers/corpus.txt"],
                    "special_tokens": ["[PAD]", "[UNK]"], "min_frequency": settings.get("min_frequency", 1)})
        actual = int(result["vocab_size"])
        trained[str(actual)] = TokenizerRecord(name=name, path=result["tokenizer_path"], vocab_size=actual,
                                               requested=int(requested))
    return trained

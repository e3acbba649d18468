"""Tool evals: how well the assembler, the summary tool and the tokenizer manager do their jobs.

- **assembler**: every blueprint of :mod:`evals.blueprint_corpus` is assembled with the builtin
  backend. *Pass*: the file is written, imports, instantiates and maps a batch of two inputs to
  the expected output shape (for the assembler's own corpus: to an output with the batch).
  *Exact*: additionally the model holds the ``torch.nn`` layers the blueprint names (as a
  multiset of class names: streams and helpers expand to their contents; a Residual may add one
  projection shortcut) and the parameter count the assembler reports equals the model's.
- **summary**: for every assembled model, ``pytorch_model_summary``'s total / trainable
  parameters against torchinfo's (must be equal), and its FLOPs against 2 x torchinfo's
  mult-adds (reported as a ratio: the two count some layers differently).
- **tokenizer**: BPE, WordPiece, Unigram and CharLevel tokenizers trained on a generated corpus
  with punctuation, digits and accents; held-out sentences are encoded and decoded. *Round trip*:
  the decoded text equals the original after case folding and whitespace normalisation.
"""

from __future__ import annotations

import collections
import random
import re
import time
import unicodedata
from typing import Any

import torch

from evals.blueprint_corpus import BATCH, TOKEN_VOCAB, corpus
from torchscout.tools.errors import ToolError, UserCodeError
from torchscout.tools.loading import load_class
from torchscout.tools.modeling.assembler import pytorch_model_assembler
from torchscout.tools.modeling.blueprint import HELPER_TYPES
from torchscout.tools.workspace import atomic_write_text, resolve

STREAM_TYPES = {"Sequential", "Residual", "Parallel"}
FAILURES_KEPT = 5


def _expected_layer_types(layers: list[dict[str, Any]]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for layer in layers:
        kind = layer["type"]
        if kind in STREAM_TYPES:
            for inner in [layer.get("layers") or [], *(layer.get("branches") or [])]:
                counts += _expected_layer_types(inner)
        elif kind not in HELPER_TYPES and hasattr(torch.nn, kind):
            counts[kind] += 1
    return counts


_TORCH_NN_CLASSES = {value for value in vars(torch.nn).values() if isinstance(value, type)}
_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


def _model_layer_types(model: torch.nn.Module) -> collections.Counter:
    """torch.nn layers in the model; containers and custom modules (streams) are looked into."""
    counts: collections.Counter = collections.Counter()

    def visit(module: torch.nn.Module) -> None:
        for child in module.children():
            if type(child) in _TORCH_NN_CLASSES and not isinstance(child, _CONTAINERS):
                counts[type(child).__name__] += 1  # its own submodules (e.g. in a TransformerEncoderLayer) are its own
            else:
                visit(child)

    visit(model)
    return counts


def _count_residuals(layers: list[dict[str, Any]]) -> int:
    count = 0
    for layer in layers:
        count += layer.get("type") == "Residual"
        for inner in [layer.get("layers") or [], *(layer.get("branches") or [])]:
            count += _count_residuals(inner)
    return count


def _layers_match(found: collections.Counter, layers: list[dict[str, Any]]) -> bool:
    """Every layer the blueprint names is there, and nothing else -- except one projection shortcut
    (a 1x1 conv or a linear map) per Residual whose inner layers change the shape."""
    expected = _expected_layer_types(layers)
    if expected - found:
        return False
    extra = found - expected
    return set(extra) <= {"Conv1d", "Conv2d", "Conv3d", "Linear"} and sum(extra.values()) <= _count_residuals(layers)


def _dummy_input(config: dict[str, Any]) -> torch.Tensor:
    shape = (BATCH, *config["input_shape"])
    if config.get("input_dtype") == "int64":
        embeddings = [layer.get("params", {}).get("num_embeddings") for layer in config["layers"]
                      if layer.get("type") == "Embedding"]
        return torch.randint(0, min([TOKEN_VOCAB, *[size for size in embeddings if size]]), shape)
    return torch.randn(shape)


def assembler_eval() -> dict[str, Any]:
    """Assemble the whole corpus; pass rate, exactness and the failures."""
    rows = []
    for entry in corpus():
        config, name = entry["model_config"], entry["name"]
        path = f"evals_models/{name}.py"
        started = time.perf_counter()
        row: dict[str, Any] = {"name": name, "task": entry["task"], "passed": False, "exact": False}
        try:
            result = pytorch_model_assembler(config, path)
            model_class = load_class(path, config["model_name"])
            model = model_class().eval()
            with torch.no_grad():
                output = model(_dummy_input(config))
            row["output_shape"] = list(output.shape)
            expected = entry["expected_output_shape"]
            row["passed"] = row["output_shape"] == expected if expected else row["output_shape"][0] == BATCH
            params = sum(parameter.numel() for parameter in model.parameters())
            same_layers = _layers_match(_model_layer_types(model), config["layers"])
            row["exact"] = row["passed"] and same_layers and params == result.get("total_params")
            row.update(params=params, script=path, class_name=config["model_name"])
            if row["passed"] and not row["exact"]:
                row["error"] = (f"layers {dict(_model_layer_types(model))} vs blueprint "
                                f"{dict(_expected_layer_types(config['layers']))}; params {params} vs reported "
                                f"{result.get('total_params')}")
        except (ToolError, UserCodeError, RuntimeError, ValueError, TypeError) as exc:
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        row["seconds"] = round(time.perf_counter() - started, 2)
        rows.append(row)
    passed = sum(row["passed"] for row in rows)
    exact = sum(row["exact"] for row in rows)
    return {"blueprints": len(rows), "passed": passed, "exact": exact,
            "pass_rate": passed / len(rows), "exact_rate": exact / len(rows),
            "failures": [row for row in rows if not row["exact"]][:FAILURES_KEPT], "rows": rows}


def summary_eval(assembled: list[dict[str, Any]]) -> dict[str, Any]:
    """pytorch_model_summary vs torchinfo on every model the assembler eval built."""
    try:
        import torchinfo
    except ImportError:
        return {"skipped": "torchinfo is not installed (pip install torchinfo)"}
    from torchscout.tools.modeling.summary import pytorch_model_summary

    rows = []
    for entry in assembled:
        if not entry.get("passed"):
            continue
        config = next(item["model_config"] for item in corpus() if item["name"] == entry["name"])
        input_size = (BATCH, *config["input_shape"])
        row: dict[str, Any] = {"name": entry["name"]}
        try:
            ours = pytorch_model_summary(entry["script"], entry["class_name"], input_size,
                                         input_dtype=config.get("input_dtype", "float32"))
        except ToolError as exc:
            if "not implemented" in str(exc):
                return {"skipped": f"pytorch_model_summary is not available yet: {exc}"}
            row["error"] = str(exc).splitlines()[0][:300]
            rows.append(row)
            continue
        model = load_class(entry["script"], entry["class_name"])().eval()
        dtypes = [torch.long] if config.get("input_dtype") == "int64" else None
        reference = torchinfo.summary(model, input_size=input_size, dtypes=dtypes, verbose=0)
        row.update(total_params=ours.get("total_params"), torchinfo_total_params=reference.total_params,
                   trainable_params=ours.get("trainable_params"),
                   torchinfo_trainable_params=reference.trainable_params,
                   flops=ours.get("flops"), torchinfo_flops=2 * reference.total_mult_adds)
        row["params_agree"] = (row["total_params"] == row["torchinfo_total_params"]
                               and row["trainable_params"] == row["torchinfo_trainable_params"])
        if row["flops"] and row["torchinfo_flops"]:
            row["flops_ratio"] = round(row["flops"] / row["torchinfo_flops"], 3)
        rows.append(row)
    measured = [row for row in rows if "params_agree" in row]
    ratios = sorted(row["flops_ratio"] for row in measured if "flops_ratio" in row)
    return {
        "models": len(rows),
        "params_agreement": sum(row["params_agree"] for row in measured) / len(measured) if measured else None,
        "flops_ratio_median": ratios[len(ratios) // 2] if ratios else None,
        "flops_within_10pct": (sum(0.9 <= ratio <= 1.1 for ratio in ratios) / len(ratios)) if ratios else None,
        "errors": [row for row in rows if "error" in row][:FAILURES_KEPT],
        "rows": rows,
    }


_WORDS = ["model", "layer", "gradient", "optimizer", "tensor", "batch", "epoch", "loss", "accuracy", "kernel",
          "convolution", "attention", "token", "embedding", "dropout", "residual", "training", "données",
          "naïve", "café", "Zürich", "résumé", "x2", "v1.3", "3.14", "100%", "(beta)", "e-mail", "state-of-the-art"]
_TOKENIZER_TYPES = [("BPE", 400), ("WordPiece", 400), ("Unigram", 400), ("CharLevel", 200)]


def _sentences(count: int, rng: random.Random) -> list[str]:
    sentences = []
    for _ in range(count):
        words = rng.choices(_WORDS, k=rng.randint(4, 12))
        text = " ".join(words)
        sentences.append(text[0].upper() + text[1:] + rng.choice([".", "!", "?", ";", ""]))
    return sentences


def _normalised(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold()
    text = re.sub(r"\s+([.,!?;%)])", r"\1", text)  # WordPiece decodes "word ." for "word."
    text = re.sub(r"([(])\s+", r"\1", text)
    text = re.sub(r"\s*([-.])\s*", r"\1", text)
    return " ".join(text.split())


def tokenizer_eval(seed: int = 0) -> dict[str, Any]:
    """Train each tokenizer type on a generated corpus and round-trip held-out sentences."""
    from torchscout.tools.text.tokenizer_manager import pytorch_tokenizer_manager
    from torchscout.tools.text.tokenizer_store import load_tokenizer

    rng = random.Random(seed)
    atomic_write_text(resolve("evals_data/tokenizer_corpus.txt"), "\n".join(_sentences(2000, rng)) + "\n")
    held_out = _sentences(200, rng)
    rows = []
    for kind, vocab_size in _TOKENIZER_TYPES:
        name = f"eval-{kind.lower()}"
        row: dict[str, Any] = {"type": kind, "requested_vocab": vocab_size}
        try:
            config = {"type": kind, "vocab_size": vocab_size, "data_files": ["evals_data/tokenizer_corpus.txt"],
                      "special_tokens": ["[PAD]", "[UNK]"]}
            if kind in ("BPE", "WordPiece"):
                config["min_frequency"] = 1  # only their trainers take it
            trained = pytorch_tokenizer_manager(action="train", tokenizer_name=name, config=config)
            encoded = pytorch_tokenizer_manager(action="apply", tokenizer_name=name, text_input=held_out,
                                                padding="do_not_pad")
        except ToolError as exc:
            row["error"] = str(exc).splitlines()[0][:300]
            rows.append(row)
            continue
        tokenizer = load_tokenizer(name)
        decoded = [tokenizer.decode(ids, skip_special_tokens=True) for ids in encoded["input_ids"]]
        exact = sum(text == original for text, original in zip(decoded, held_out, strict=True))
        normalised = sum(_normalised(text) == _normalised(original)
                         for text, original in zip(decoded, held_out, strict=True))
        unk_id = tokenizer.token_to_id("[UNK]")
        total_tokens = sum(len(ids) for ids in encoded["input_ids"])
        unknown = sum(ids.count(unk_id) for ids in encoded["input_ids"]) if unk_id is not None else 0
        mismatch = next(((original, text) for text, original in zip(decoded, held_out, strict=True)
                         if _normalised(text) != _normalised(original)), None)
        row.update(vocab_size=trained["vocab_size"], sentences=len(held_out), exact_rate=exact / len(held_out),
                   round_trip_rate=normalised / len(held_out), unk_rate=unknown / max(total_tokens, 1),
                   tokens_per_sentence=round(total_tokens / len(held_out), 2))
        if mismatch:
            row["example_mismatch"] = {"original": mismatch[0], "decoded": mismatch[1]}
        rows.append(row)
    return {"rows": rows}


def run_tool_evals(seed: int = 0) -> dict[str, Any]:
    assembler = assembler_eval()
    return {"assembler": assembler, "summary": summary_eval(assembler["rows"]), "tokenizer": tokenizer_eval(seed)}

"""The ``train`` action: build a HuggingFace ``tokenizers`` pipeline, train it, save it, register it.

Each type gets the normaliser, pre-tokeniser, decoder and post-processor that belong to it:

==========  =======================  ==========================  ===========  ======================
type        normaliser               pre-tokeniser               decoder      post-processor
==========  =======================  ==========================  ===========  ======================
BPE         (Lowercase)              ByteLevel                   ByteLevel    ByteLevel
BPE*        NFC (+Lowercase)         Metaspace                   Metaspace    --
WordPiece   BertNormalizer           BertPreTokenizer            WordPiece    [CLS] $A [SEP]
Unigram     NFKC (+Lowercase)        Metaspace                   Metaspace    --
CharLevel   NFC (+Lowercase)         one piece per character     Fuse         --
==========  =======================  ==========================  ===========  ======================

(*) BPE with ``byte_level: false``. Byte-level BPE (the default, GPT-2 style) never has an
unknown token and ``decode(encode(text)) == text`` for any text.

Training reads the files in Rust (``Tokenizer.train``), line by line and in parallel; nothing
is read into Python memory. The result is saved as ``<tokenizer_path>/tokenizer.json`` plus
the files of a ``PreTrainedTokenizerFast`` folder (``tokenizer_config.json``,
``special_tokens_map.json``), so ``transformers.AutoTokenizer.from_pretrained(tokenizer_path)``
loads it; the folder is written next to its destination and renamed into place, so it is never
half-written, and it replaces only a folder this tool wrote (:mod:`torchscout.tools.ownership`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from torchscout.settings import get_settings
from torchscout.tools import registry
from torchscout.tools.errors import ToolError
from torchscout.tools.ownership import check_folder_target, write_owned_folder
from torchscout.tools.text.corpus_stats import choose_tokenizer_settings
from torchscout.tools.text.data_files import check_has_text, expand_data_files
from torchscout.tools.text.tokenizer_store import TOKENIZER_FILE_NAME
from torchscout.tools.text.types import (
    AutoChoice,
    TokenizerRecord,
    TokenizerSettings,
    TokenizerTrainAnswer,
    TrainSettings,
)
from torchscout.tools.workspace import relative_to_workspace, resolve

logger = logging.getLogger(__name__)

TOKENIZER_TYPES = ("BPE", "WordPiece", "Unigram", "CharLevel")
TRAIN_CONFIG_KEYS = ("type", "vocab_size", "min_frequency", "special_tokens", "data_files", "lowercase",
                     "max_token_length", "byte_level", "auto", "sample_bytes")
DEFAULT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
DEFAULT_VOCAB_SIZE = 30000
DEFAULT_TOKENIZERS_FOLDER = "tokenizers"
TOKENIZER_FOLDER_KIND = "tokenizer"
# The trainers reserve memory per requested entry (measured: ~40 MB at 10**7, ~150 MB at 10**8; 10**12
# aborted the process), so the request is bounded far above any real vocabulary and far below trouble.
MAX_VOCAB_SIZE = 10_000_000
# Which special token plays which role for transformers, by convention.
TOKEN_ROLES = {
    "pad_token": ("[PAD]", "<pad>", "<|pad|>"),
    "unk_token": ("[UNK]", "<unk>"),
    "cls_token": ("[CLS]", "<cls>"),
    "sep_token": ("[SEP]", "<sep>"),
    "mask_token": ("[MASK]", "<mask>"),
    "bos_token": ("<s>", "<bos>", "<|startoftext|>"),
    "eos_token": ("</s>", "<eos>", "<|endoftext|>"),
}


def train_tokenizer(tokenizer_name: str, config: dict[str, Any] | None, tokenizer_path: str | None) -> TokenizerTrainAnswer:
    """Train, save and register a tokenizer (see the module doc); returns the tool's result dict.

    Everything the caller gave is checked before the disk is touched: the name, the settings, the
    corpus, and the target folder (new, empty, or a tokenizer folder this tool wrote).
    """
    registry.check_name("tokenizer", tokenizer_name)
    settings, files, auto_choice = _effective_settings(config)
    folder = resolve(tokenizer_path or f"{DEFAULT_TOKENIZERS_FOLDER}/{tokenizer_name}", kind="tokenizer_path")
    what = f"tokenizer_path {tokenizer_path!r}" if tokenizer_path else f"the tokenizer folder of {tokenizer_name!r}"
    check_folder_target(folder, TOKENIZER_FOLDER_KIND, what)

    started = time.perf_counter()
    tokenizer, trainer = build_pipeline(settings)
    tokenizer.train([str(path) for path in files], trainer)
    if tokenizer.get_vocab_size() <= len(settings["special_tokens"]):
        raise ToolError("the tokenizer learned no token from data_files (only the special tokens); "
                        "give files with more text")
    save_tokenizer_folder(tokenizer, folder, settings["special_tokens"], what)
    training_time_s = time.perf_counter() - started

    record: TokenizerRecord = {
        "tokenizer_file": relative_to_workspace(folder / TOKENIZER_FILE_NAME),
        "tokenizer_path": relative_to_workspace(folder),
        "source": "trained",
        "type": settings["type"],
        "vocab_size": tokenizer.get_vocab_size(),
    }
    registration = registry.register("tokenizer", tokenizer_name, record)
    result: TokenizerTrainAnswer = {
        "status": "success",
        "tokenizer_name": tokenizer_name,
        "tokenizer_path": relative_to_workspace(folder),
        "vocab_size": tokenizer.get_vocab_size(),
        "type": settings["type"],
        "training_time_s": round(training_time_s, 3),
        "corpus_bytes": sum(path.stat().st_size for path in files),
        "data_files": [relative_to_workspace(path) for path in files],
        "settings": _without_inputs(settings),
        "replaced": registration["replaced"],
        "message": registration["message"],
    }
    if auto_choice is not None:
        result["auto"] = auto_choice
    return result


def _effective_settings(config: dict[str, Any] | None) -> tuple[TrainSettings, list[Path], AutoChoice | None]:
    """Check the train config; with ``auto`` also pick type and vocab_size from the corpus."""
    if not isinstance(config, dict) or not config.get("data_files"):
        raise ToolError("train needs config with data_files, e.g. {'type': 'BPE', 'vocab_size': 8000, "
                        "'data_files': ['data/corpus.txt']} (or {'auto': true, 'data_files': [...]})")
    unknown = sorted(set(config) - set(TRAIN_CONFIG_KEYS))
    if unknown:
        raise ToolError(f"config has unknown key(s) {unknown}; allowed: {', '.join(TRAIN_CONFIG_KEYS)}")
    settings = dict(config)
    data_files = settings["data_files"]
    settings["data_files"] = [data_files] if isinstance(data_files, str) else data_files
    files = expand_data_files(settings["data_files"])
    check_has_text(files)
    auto_choice: AutoChoice | None = None
    if settings.get("auto"):
        auto_choice = choose_tokenizer_settings(files, sample_bytes=settings.get("sample_bytes"))
        settings.setdefault("type", auto_choice["type"])
        settings.setdefault("vocab_size", auto_choice["vocab_size"])
        # an explicit type/vocab_size wins over the corpus-based choice; say so in the result
        auto_choice = {**auto_choice, "type": settings["type"], "vocab_size": settings["vocab_size"]}
    settings.setdefault("type", "BPE")
    settings["type"] = _canonical_type(settings["type"])
    defaults = {
        "vocab_size": DEFAULT_VOCAB_SIZE,
        "min_frequency": 1 if settings["type"] == "CharLevel" else 2,
        "special_tokens": list(DEFAULT_SPECIAL_TOKENS),
        "lowercase": False,
        "max_token_length": None,
        "byte_level": settings["type"] == "BPE",
    }
    for key, value in defaults.items():
        settings.setdefault(key, value)
    _check_values(settings)
    _check_applicable(settings["type"], config)
    return cast(TrainSettings, settings), files, auto_choice  # every key and value checked above


def _without_inputs(settings: TrainSettings) -> TokenizerSettings:
    """The settings the answer reports: what shaped the tokenizer, not which files or the auto flag."""
    reported = {key: value for key, value in settings.items() if key not in ("data_files", "auto")}
    return cast(TokenizerSettings, reported)


def _canonical_type(type_name: Any) -> str:
    by_lower = {name.lower(): name for name in TOKENIZER_TYPES}
    by_lower.update({"char": "CharLevel", "character": "CharLevel", "sentencepiece": "Unigram"})
    if not isinstance(type_name, str) or type_name.lower() not in by_lower:
        raise ToolError(f"config.type {type_name!r} is not a tokenizer type; use one of {', '.join(TOKENIZER_TYPES)}")
    return by_lower[type_name.lower()]


# Settings a type's trainer has no use for: refused when given explicitly, so nothing is silently ignored.
INAPPLICABLE_SETTINGS = {
    "WordPiece": ("max_token_length",),
    "Unigram": ("min_frequency",),
    "CharLevel": ("max_token_length",),
}


def _check_applicable(kind: str, config: dict[str, Any]) -> None:
    for key in INAPPLICABLE_SETTINGS.get(kind, ()):
        if config.get(key) is not None:
            raise ToolError(f"config.{key} does not apply to {kind} tokenizers (its trainer has no such setting); "
                            "remove it")


def _check_values(settings: dict[str, Any]) -> None:
    for key in ("vocab_size", "min_frequency"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise ToolError(f"config.{key} must be a positive integer, got {settings[key]!r}")
    if settings["vocab_size"] > MAX_VOCAB_SIZE:
        raise ToolError(f"config.vocab_size {settings['vocab_size']} is over the limit of {MAX_VOCAB_SIZE:,} "
                        "(the largest real vocabularies are about 10**6); choose a smaller one")
    if settings["max_token_length"] is not None and (
            not isinstance(settings["max_token_length"], int) or settings["max_token_length"] < 1):
        raise ToolError(f"config.max_token_length must be a positive integer, got {settings['max_token_length']!r}")
    special = settings["special_tokens"]
    if not isinstance(special, list) or not all(isinstance(token, str) and token for token in special):
        raise ToolError("config.special_tokens must be a list of non-empty strings such as ['[PAD]', '[UNK]']")
    if settings["byte_level"] and settings["type"] != "BPE":
        raise ToolError(f"config.byte_level applies to BPE only, not {settings['type']}")
    if settings["vocab_size"] <= len(special):
        raise ToolError(f"config.vocab_size {settings['vocab_size']} leaves no room beside {len(special)} special tokens")


class _TrainerArguments(TypedDict):
    """The arguments every type's trainer takes."""

    vocab_size: int
    special_tokens: list[str]
    show_progress: bool


def build_pipeline(settings: TrainSettings) -> tuple[Tokenizer, trainers.Trainer]:
    """An untrained Tokenizer with the type's normaliser/pre-tokeniser/decoder/post-processor, and its trainer."""
    kind = settings["type"]
    special = settings["special_tokens"]
    unk = _first_present(special, TOKEN_ROLES["unk_token"])
    progress = get_settings().progress
    common: _TrainerArguments = {"vocab_size": settings["vocab_size"], "special_tokens": special,
                                 "show_progress": progress}
    lowercase = [normalizers.Lowercase()] if settings["lowercase"] else []

    if kind == "BPE" and settings["byte_level"]:
        tokenizer = Tokenizer(models.BPE())
        if lowercase:
            tokenizer.normalizer = normalizers.Sequence(lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(min_frequency=settings["min_frequency"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      max_token_length=settings["max_token_length"], **common)
    elif kind == "BPE":
        tokenizer = Tokenizer(models.BPE(unk_token=unk))
        _metaspace(tokenizer, [normalizers.NFC(), *lowercase])
        trainer = trainers.BpeTrainer(min_frequency=settings["min_frequency"],
                                      max_token_length=settings["max_token_length"], **common)
    elif kind == "WordPiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=unk or "[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=settings["lowercase"])
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(min_frequency=settings["min_frequency"],
                                            continuing_subword_prefix="##", **common)
    elif kind == "Unigram":
        tokenizer = Tokenizer(models.Unigram())
        _metaspace(tokenizer, [normalizers.NFKC(), *lowercase])
        trainer = trainers.UnigramTrainer(unk_token=unk, max_piece_length=settings["max_token_length"] or 16,
                                          **common)
    else:  # CharLevel: a word-level model over single characters
        tokenizer = Tokenizer(models.WordLevel(unk_token=unk or "[UNK]"))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), *lowercase])
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tokenizer.decoder = decoders.Fuse()
        trainer = trainers.WordLevelTrainer(min_frequency=settings["min_frequency"], **common)
    _add_cls_sep_template(tokenizer, kind, special)
    return tokenizer, trainer


def _metaspace(tokenizer: Tokenizer, normalizer_steps: list[normalizers.Normalizer]) -> None:
    tokenizer.normalizer = normalizers.Sequence(normalizer_steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()


def _add_cls_sep_template(tokenizer: Tokenizer, kind: str, special: list[str]) -> None:
    """BERT's ``[CLS] text [SEP]`` for WordPiece; the other types add nothing around the text."""
    cls_token = _first_present(special, TOKEN_ROLES["cls_token"])
    sep_token = _first_present(special, TOKEN_ROLES["sep_token"])
    if kind != "WordPiece" or not (cls_token and sep_token):
        return
    cls_id, sep_id = special.index(cls_token), special.index(sep_token)  # trainers put specials first
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls_token} $A {sep_token}",
        pair=f"{cls_token} $A {sep_token} $B:1 {sep_token}:1",
        special_tokens=[(cls_token, cls_id), (sep_token, sep_id)],
    )


def _first_present(tokens: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((token for token in candidates if token in tokens), None)


def transformers_files(special_tokens: list[str]) -> dict[str, Mapping[str, str | int | bool]]:
    """The JSON files that make a folder with tokenizer.json a ``PreTrainedTokenizerFast`` folder.

    Written directly rather than through ``transformers`` (whose import takes seconds): what
    ``save_pretrained`` writes for a tokenizers-backed tokenizer, which transformers 4.x and 5.x
    both load with ``AutoTokenizer.from_pretrained``.
    """
    roles = {role: token for role, candidates in TOKEN_ROLES.items()
             if (token := _first_present(special_tokens, candidates))}
    config: dict[str, str | int | bool] = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1_000_000_000_000_000_019_884_624_838_656,
        "clean_up_tokenization_spaces": False, **roles}
    return {"tokenizer_config.json": config, "special_tokens_map.json": roles}


def save_tokenizer_folder(tokenizer: Tokenizer, folder: Path, special_tokens: list[str], what: str) -> None:
    """Write tokenizer.json + a PreTrainedTokenizerFast folder at ``folder``, atomically as a whole.

    Only a new or empty folder, or a tokenizer folder this tool wrote, is replaced (see
    :mod:`torchscout.tools.ownership`).
    """
    def write_files(staging: Path) -> None:
        tokenizer.save(str(staging / TOKENIZER_FILE_NAME))
        for name, content in transformers_files(special_tokens).items():
            (staging / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")

    write_owned_folder(folder, TOKENIZER_FOLDER_KIND, what, write_files)

"""Corpus statistics and the ``auto`` choice of tokenizer type and vocabulary size.

:func:`sample_corpus` reads evenly spaced slices of the files (a few MB at most, whatever the
corpus size); :func:`corpus_statistics` measures the sample; :func:`builtin_choice` applies
the documented rule below; :func:`choose_tokenizer_settings` asks the configured LLM to read
the same statistics when there is one (prompt ``prompts/tokenizer_advice.yaml``) and falls
back to the rule when its answer is unusable.

The builtin rule, in order:

1. **CharLevel** when the text has no word structure and a small alphabet -- at most 256
   distinct characters and whitespace-separated "words" longer than 20 characters on
   average (DNA, protein sequences, base64, long digit strings): every character is already
   a meaningful unit, so the vocabulary is the alphabet plus the special tokens.
2. **Unigram** when the alphabet is large (over 1,000 distinct characters: Chinese, Japanese,
   mixed scripts) or spaces are rare (under 5% of characters): words are not space-delimited,
   and a SentencePiece-style unigram model segments such text better than merges over
   whitespace-split words. vocab_size = clamp(4 x alphabet, 8,000, 64,000).
3. **BPE** (byte-level, the GPT-2 convention) otherwise. vocab_size comes from an estimate of
   the useful vocabulary: the distinct words seen at least twice, extrapolated from the sample
   to the whole corpus with Heaps' law (distinct words grow as n^beta; beta is measured on the
   sample), plus the 256 byte symbols; clamped to [1,000, 50,000] and rounded up to a
   multiple of 64 (GPU-friendly embedding sizes).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from pathlib import Path

from torchscout.tools.errors import ToolError
from torchscout.tools.text.types import AutoChoice, CorpusStatistics, TokenizerChoice

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_BYTES = 2_000_000
SLICES_PER_FILE = 16
SPECIAL_TOKEN_ALLOWANCE = 5
_WORD = re.compile(r"\S+")


def sample_corpus(files: list[Path], sample_bytes: int | None = None) -> tuple[str, int]:
    """Up to ``sample_bytes`` of text from evenly spaced slices of ``files``, and the corpus size."""
    budget = int(sample_bytes or DEFAULT_SAMPLE_BYTES)
    if budget < 1000:
        raise ToolError(f"config.sample_bytes must be at least 1000, got {sample_bytes!r}")
    total = sum(path.stat().st_size for path in files)
    if total == 0:
        raise ToolError("the data_files are empty; there is nothing to train a tokenizer on")
    pieces = []
    for path in files:
        size = path.stat().st_size
        share = max(1, budget * size // total)
        pieces.append(_read_slices(path, size, share))
    return "\n".join(pieces), total


def _read_slices(path: Path, size: int, share: int) -> str:
    with path.open("rb") as handle:
        if size <= share:
            return handle.read().decode("utf-8", errors="replace")
        slice_bytes = max(1, share // SLICES_PER_FILE)
        stride = size // SLICES_PER_FILE
        chunks = []
        for index in range(SLICES_PER_FILE):
            handle.seek(index * stride)
            chunk = handle.read(slice_bytes)
            # drop the partial first and last lines so no word (or UTF-8 character) is cut
            lines = chunk.split(b"\n")
            whole = lines[1:-1] if index else lines[:-1]
            chunks.append(b"\n".join(whole).decode("utf-8", errors="replace"))
        return "\n".join(chunks)


def corpus_statistics(sample: str, corpus_bytes: int) -> CorpusStatistics:
    """Characters, alphabet, word lengths and frequencies, and a useful-vocabulary estimate."""
    characters = len(sample)
    if characters == 0:
        raise ToolError("the corpus sample is empty; check the data_files")
    alphabet = Counter(sample)
    words = _WORD.findall(sample)
    frequencies = Counter(words)
    lengths = sorted(len(word) for word in words) or [0]
    repeated = sum(1 for count in frequencies.values() if count >= 2)
    beta = _heaps_beta(words)
    sample_bytes = len(sample.encode("utf-8"))
    scale = max(1.0, corpus_bytes / max(1, sample_bytes))
    estimated_repeated = int(repeated * scale ** beta)
    return {
        "sample_characters": characters,
        "corpus_bytes": corpus_bytes,
        "distinct_characters": len(alphabet),
        "whitespace_fraction": round(sum(alphabet[c] for c in alphabet if c.isspace()) / characters, 4),
        "non_ascii_fraction": round(sum(alphabet[c] for c in alphabet if ord(c) > 127) / characters, 4),
        "words": len(words),
        "distinct_words": len(frequencies),
        "words_seen_twice_or_more": repeated,
        "hapax_fraction": round(1 - repeated / len(frequencies), 4) if frequencies else 0.0,
        "mean_word_length": round(sum(lengths) / max(1, len(words)), 2),
        "word_length_p50": lengths[len(lengths) // 2],
        "word_length_p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        "top_words": [word for word, _ in frequencies.most_common(20)],
        "words_covering_90_percent": _coverage(frequencies, 0.9),
        "heaps_beta": round(beta, 3),
        "estimated_useful_vocabulary": estimated_repeated,
    }


def _heaps_beta(words: list[str]) -> float:
    """Heaps' exponent from the distinct-word counts at half and all of the sample (0.3..0.8)."""
    if len(words) < 200:
        return 0.5
    half = len(set(words[: len(words) // 2]))
    full = len(set(words))
    if half <= 0 or full <= half:
        return 0.3
    return min(0.8, max(0.3, math.log(full / half) / math.log(2)))


def _coverage(frequencies: Counter, fraction: float) -> int:
    total = sum(frequencies.values())
    covered = 0
    for rank, (_, count) in enumerate(frequencies.most_common(), start=1):
        covered += count
        if covered >= fraction * total:
            return rank
    return len(frequencies)


def builtin_choice(statistics: CorpusStatistics) -> TokenizerChoice:
    """Type and vocab_size by the rule in the module docstring, with the reasons."""
    alphabet = statistics["distinct_characters"]
    mean_word = statistics["mean_word_length"]
    if alphabet <= 256 and mean_word > 20:
        return {"type": "CharLevel", "vocab_size": alphabet + SPECIAL_TOKEN_ALLOWANCE, "reasons": [
            f"no word structure: whitespace-separated units average {mean_word} characters",
            f"small alphabet ({alphabet} distinct characters): each character is a natural token",
            "vocab_size = alphabet + special tokens",
        ]}
    if alphabet > 1000 or statistics["whitespace_fraction"] < 0.05:
        vocab = _round64(min(64000, max(8000, 4 * alphabet)))
        return {"type": "Unigram", "vocab_size": vocab, "reasons": [
            f"{alphabet} distinct characters and {statistics['whitespace_fraction']:.1%} whitespace: "
            "words are not space-delimited, so a unigram (SentencePiece-style) model segments better",
            f"vocab_size = clamp(4 x alphabet, 8000, 64000) rounded to 64 = {vocab}",
        ]}
    useful = statistics["estimated_useful_vocabulary"]
    vocab = _round64(min(50000, max(1000, 256 + useful)))
    return {"type": "BPE", "vocab_size": vocab, "reasons": [
        f"space-delimited text with a {alphabet}-character alphabet: byte-level BPE covers every input",
        f"about {useful} distinct words recur (seen twice or more, extrapolated with Heaps' law, "
        f"beta={statistics['heaps_beta']}) -> vocab_size = clamp(256 + {useful}, 1000, 50000) rounded to 64 = {vocab}",
    ]}


def _round64(value: int) -> int:
    return int(math.ceil(value / 64) * 64)


def choose_tokenizer_settings(files: list[Path], sample_bytes: int | None = None) -> AutoChoice:
    """Measure the corpus and pick type + vocab_size: the LLM when configured, else the builtin rule."""
    from torchscout.tools.codegen.llm import get_chat_model

    sample, total = sample_corpus(files, sample_bytes)
    statistics = corpus_statistics(sample, total)
    rule = builtin_choice(statistics)
    chat_model = get_chat_model()
    if chat_model is None:
        return {**rule, "chooser": "builtin", "statistics": statistics}
    try:
        advice = _llm_choice(statistics)
    except ToolError as exc:
        from torchscout.tools.codegen.llm_usage import notify

        notify(f"tokenizer advice: LLM answer unusable ({exc}); builtin rule used")
        return {**rule, "chooser": f"builtin (the LLM's answer was unusable): {exc}", "statistics": statistics}
    return {**advice, "chooser": "llm", "builtin_rule": rule, "statistics": statistics}


def _llm_choice(statistics: CorpusStatistics) -> TokenizerChoice:
    from torchscout.prompts.loader import load_prompt
    from torchscout.tools.codegen.llm import accept, ask
    from torchscout.tools.codegen.llm_json import NoUsableJSON

    prompt = load_prompt("tokenizer_advice")
    messages = prompt.render(statistics=json.dumps(statistics, indent=2, ensure_ascii=False))
    reply = ask(messages, purpose="tokenizer_advice", prompt_version=prompt.version)
    example_reasons = {reason for example in prompt.examples for reason in _reasons_in(example["assistant"])}
    try:
        advice = read_advice(reply.text, statistics, copied=example_reasons)
    except NoUsableJSON as exc:
        raise ToolError(str(exc)) from exc
    accept(reply)
    return advice


def _reasons_in(text: str) -> list[str]:
    from torchscout.tools.codegen.llm_json import json_objects

    return [str(reason).strip().lower() for value in json_objects(text) for reason in value.get("reasons") or []]


_TYPES = {"bpe": "BPE", "wordpiece": "WordPiece", "unigram": "Unigram", "charlevel": "CharLevel"}


def vocabulary_bounds(kind: str, statistics: CorpusStatistics) -> tuple[int, int]:
    """The vocab_size range this corpus supports for tokenizer ``kind``: at least its alphabet, and at
    most what its recurring words can fill (a small corpus cannot train a large vocabulary)."""
    alphabet = statistics["distinct_characters"]
    if kind == "CharLevel":
        return alphabet, alphabet + 64
    words = max(statistics["estimated_useful_vocabulary"], statistics["distinct_words"])
    return alphabet + SPECIAL_TOKEN_ALLOWANCE, max(1000, 4 * (alphabet + words))


def _checked_advice(advice: dict, statistics: CorpusStatistics | None, copied: set[str]) -> TokenizerChoice:
    kind = advice.get("type")
    vocab = advice.get("vocab_size")
    reasons = advice.get("reasons") or []
    if not isinstance(kind, str) or kind.lower() not in _TYPES:
        raise ValueError(f"type {kind!r} is not one of {', '.join(_TYPES.values())}")
    if not isinstance(vocab, int) or isinstance(vocab, bool) or not 16 <= vocab <= 1_000_000:
        raise ValueError(f"vocab_size {vocab!r} is not an integer between 16 and 1,000,000")
    kind = _TYPES[kind.lower()]
    if statistics is not None:
        low, high = vocabulary_bounds(kind, statistics)
        if not low <= vocab <= high:
            raise ValueError(f"vocab_size {vocab:,} does not fit this corpus ({statistics['distinct_characters']} "
                             f"distinct characters, {statistics['distinct_words']:,} distinct words): a {kind} "
                             f"vocabulary here is between {low:,} and {high:,}")
    reasons = [reasons] if isinstance(reasons, str) else [str(reason) for reason in reasons]
    if copied and any(reason.strip().lower() in copied for reason in reasons):
        raise ValueError("its reasons are copied from the prompt's example; give reasons about this corpus")
    return {"type": kind, "vocab_size": vocab, "reasons": reasons}


def read_advice(reply: str, statistics: CorpusStatistics | None = None,
                copied: set[str] | frozenset[str] = frozenset()) -> TokenizerChoice:
    """The first JSON object of ``reply`` that is usable advice (``{"type", "vocab_size", "reasons"}``,
    a vocabulary the corpus supports when ``statistics`` are given, reasons not ``copied`` from the
    prompt's example). Raises NoUsableJSON saying what was wrong with each object."""
    from torchscout.tools.codegen.llm_json import first_valid

    return first_valid(reply, lambda advice: _checked_advice(advice, statistics, set(copied)))


def parse_advice(reply: str, statistics: CorpusStatistics | None = None) -> TokenizerChoice | None:
    """:func:`read_advice`, or None (logged) when no object in the reply is usable."""
    from torchscout.tools.codegen.llm_json import NoUsableJSON

    try:
        return read_advice(reply, statistics)
    except NoUsableJSON as exc:
        logger.warning("tokenizer advice unusable: %s", exc)
        return None

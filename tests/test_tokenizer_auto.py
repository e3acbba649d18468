"""The `auto` tokenizer configuration: corpus statistics, the builtin rule, and the LLM's advice."""

from __future__ import annotations

from pathlib import Path

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

import torchscout
from tests.tokenizer_helpers import write_dna, write_prose
from torchscout.tools.text.corpus_stats import (
    builtin_choice,
    corpus_statistics,
    parse_advice,
    sample_corpus,
)
from torchscout.tools.text.tokenizer_manager import pytorch_tokenizer_manager


def test_statistics_of_a_known_sample() -> None:
    sample = "the cat sat on the mat\nthe dog sat\n"
    stats = corpus_statistics(sample, corpus_bytes=len(sample))
    assert stats["sample_characters"] == len(sample)
    assert stats["distinct_characters"] == len(set(sample))
    assert stats["words"] == 9 and stats["distinct_words"] == 6
    assert stats["words_seen_twice_or_more"] == 2  # "the" and "sat"
    assert stats["top_words"][:2] == ["the", "sat"]
    assert stats["mean_word_length"] == round(sum(map(len, sample.split())) / 9, 2)
    assert stats["estimated_useful_vocabulary"] == 2  # the sample is the whole corpus: nothing to extrapolate


def test_sampling_reads_a_bounded_slice_of_a_large_corpus(workspace: Path) -> None:
    corpus = write_prose(workspace / "big.txt", lines=40_000)
    sample, total = sample_corpus([corpus], sample_bytes=50_000)
    assert total == corpus.stat().st_size > 1_000_000
    assert 20_000 < len(sample.encode()) <= 50_000
    assert all(line.endswith((".", "!", "?", ",")) for line in sample.splitlines() if line)  # whole lines only


def test_extrapolation_grows_the_vocabulary_estimate_with_corpus_size() -> None:
    sample = " ".join(f"w{i % 700} w{i % 1300}" for i in range(4000))
    small = corpus_statistics(sample, corpus_bytes=len(sample))
    large = corpus_statistics(sample, corpus_bytes=100 * len(sample))
    assert large["estimated_useful_vocabulary"] > small["estimated_useful_vocabulary"]
    assert builtin_choice(large)["vocab_size"] >= builtin_choice(small)["vocab_size"]


def test_the_llm_reads_the_statistics_and_its_choice_is_used(workspace: Path) -> None:
    write_dna(workspace / "genome.txt")
    advice = ('Looking at the statistics: a 4-letter alphabet.\n'
              '{"type": "BPE", "vocab_size": 64, "reasons": ["k-mers of DNA make useful tokens", '
              '"4 letters need few merges"]}')
    torchscout.configure(llm=GenericFakeChatModel(messages=iter([AIMessage(content=advice)])))
    result = pytorch_tokenizer_manager("train", "dna", config={"auto": True, "data_files": ["genome.txt"]})
    assert result["auto"]["chooser"] == "llm"
    assert result["type"] == "BPE" and result["settings"]["vocab_size"] == 64
    assert result["auto"]["reasons"] == ["k-mers of DNA make useful tokens", "4 letters need few merges"]
    assert result["auto"]["builtin_rule"]["type"] == "CharLevel"  # what the rule would have said
    assert result["vocab_size"] > 5


def test_an_unusable_llm_answer_falls_back_to_the_builtin_rule(workspace: Path) -> None:
    write_dna(workspace / "genome.txt")
    torchscout.configure(llm=GenericFakeChatModel(messages=iter([AIMessage(content="I'd go with a big vocab!")])))
    result = pytorch_tokenizer_manager("train", "dna", config={"auto": True, "data_files": ["genome.txt"]})
    assert result["auto"]["chooser"].startswith("builtin (the LLM's answer was unusable)")
    assert result["type"] == "CharLevel"


def test_parse_advice_rejects_bad_fields() -> None:
    assert parse_advice('{"type": "Morfessor", "vocab_size": 100}') is None
    assert parse_advice('{"type": "BPE", "vocab_size": "lots"}') is None
    assert parse_advice('{"type": "unigram", "vocab_size": 8000, "reasons": "short words"}') == {
        "type": "Unigram", "vocab_size": 8000, "reasons": ["short words"]}

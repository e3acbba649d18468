"""pytorch_tokenizer_manager: train / load / apply with real tokenizers, transformers and files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tokenizer_helpers import write_cjk, write_dna, write_prose
from torchscout.tools import registry
from torchscout.tools.errors import ToolError, WorkspaceError
from torchscout.tools.text.tokenizer_manager import (
    load_tokenizer,
    pytorch_tokenizer_manager,
    pytorch_tokenizer_manager_tool,
)

SAMPLE = "the quick brown fox, naïve café!\ndéjà vu. models learning rate?"  # characters seen in training


@pytest.fixture
def prose(workspace: Path) -> Path:
    write_prose(workspace / "data" / "prose_a.txt", seed=0)
    return write_prose(workspace / "data" / "prose_b.txt", seed=3)


def train(name: str, tokenizer_path: str | None = None, **config) -> dict:
    return pytorch_tokenizer_manager("train", name, config={"data_files": ["data/prose_*.txt"], **config},
                                     tokenizer_path=tokenizer_path)


@pytest.mark.parametrize("kind", ["BPE", "WordPiece", "Unigram", "CharLevel"])
def test_train_load_apply_round_trip(prose: Path, workspace: Path, kind: str) -> None:
    result = train(f"tok_{kind}", type=kind, vocab_size=300)

    assert result["status"] == "success" and result["tokenizer_name"] == f"tok_{kind}"
    assert result["tokenizer_path"] == f"tokenizers/tok_{kind}"
    assert result["corpus_bytes"] == sum(p.stat().st_size for p in (workspace / "data").iterdir())
    assert result["training_time_s"] > 0 and 30 < result["vocab_size"] <= 300 + (256 if kind == "BPE" else 0)
    assert result["data_files"] == ["data/prose_a.txt", "data/prose_b.txt"]
    assert registry.get("tokenizer", f"tok_{kind}")["data"]["type"] == kind

    tokenizer = load_tokenizer(f"tok_{kind}")
    assert tokenizer.get_vocab_size() == result["vocab_size"]
    encoding = tokenizer.encode(SAMPLE)
    decoded = tokenizer.decode(encoding.ids)
    if kind == "WordPiece":  # BERT decoding re-spaces punctuation; the words survive
        assert decoded.split()[:3] == ["the", "quick", "brown"] and "[UNK]" not in encoding.tokens
        assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    else:
        assert decoded == SAMPLE
    applied = pytorch_tokenizer_manager("apply", f"tok_{kind}", text_input=SAMPLE)
    assert applied["input_ids"] == [encoding.ids]
    assert applied["attention_mask"] == [[1] * len(encoding.ids)]


def test_byte_level_bpe_round_trips_any_text(prose: Path) -> None:
    train("bpe", type="BPE", vocab_size=400)
    tokenizer = load_tokenizer("bpe")
    for text in ["unseen: 東京 😀 \t tabs  and  double  spaces\n", "ÆØÅ ß ğ", "   leading spaces", ""]:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text
    assert tokenizer.token_to_id("[UNK]") is not None  # special tokens are in the vocabulary
    assert len(tokenizer.encode("the quick brown fox").ids) < len("the quick brown fox")  # merges were learnt


def test_auto_tokenizer_loads_the_saved_folder(prose: Path, workspace: Path) -> None:
    from transformers import AutoTokenizer

    train("wp", type="WordPiece", vocab_size=300)
    hf_tokenizer = AutoTokenizer.from_pretrained(str(workspace / "tokenizers" / "wp"))
    ours = load_tokenizer("wp").encode(SAMPLE)
    assert hf_tokenizer(SAMPLE)["input_ids"] == ours.ids
    assert hf_tokenizer.pad_token == "[PAD]" and hf_tokenizer.unk_token == "[UNK]"
    assert hf_tokenizer.cls_token == "[CLS]" and hf_tokenizer.mask_token == "[MASK]"
    assert not [p.name for p in (workspace / "tokenizers").iterdir() if p.name.startswith(".")]


def test_batch_padding_truncation_and_masks(prose: Path) -> None:
    train("bpe", type="BPE", vocab_size=400)
    texts = ["the fox", "the quick brown fox jumps over the lazy dog"]
    longest = pytorch_tokenizer_manager("apply", "bpe", text_input=texts, return_tokens=True)
    short, long = longest["input_ids"]
    assert len(short) == len(long) > 4
    pad_id = load_tokenizer("bpe").token_to_id("[PAD]")
    real = sum(longest["attention_mask"][0])
    assert short[real:] == [pad_id] * (len(short) - real) and 0 not in longest["attention_mask"][1]
    assert longest["tokens"][0][-1] == "[PAD]"

    fixed = pytorch_tokenizer_manager("apply", "bpe", text_input=texts, padding="max_length",
                                      truncation=True, max_length=6)
    assert [len(row) for row in fixed["input_ids"]] == [6, 6]
    assert fixed["attention_mask"][1] == [1] * 6
    unpadded = pytorch_tokenizer_manager("apply", "bpe", text_input=texts, padding="do_not_pad")
    assert len(unpadded["input_ids"][0]) == real and "tokens" not in unpadded

    with pytest.raises(ToolError, match="need max_length"):
        pytorch_tokenizer_manager("apply", "bpe", text_input=texts, truncation=True)
    with pytest.raises(ToolError, match="text_input must be a string or a list of strings"):
        pytorch_tokenizer_manager("apply", "bpe", text_input=["ok", 3])


def test_concurrent_applies_with_different_padding_do_not_mix(prose: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    train("bpe", type="BPE", vocab_size=400)
    texts = ["the fox", "the quick brown fox jumps over the lazy dog"] * 50

    def apply(padding: str) -> dict:
        return pytorch_tokenizer_manager("apply", "bpe", text_input=texts, padding=padding, max_length=40)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(apply, ["max_length", "do_not_pad"] * 10))
    for padding, result in zip(["max_length", "do_not_pad"] * 10, results, strict=True):
        lengths = {len(row) for row in result["input_ids"]}
        if padding == "max_length":
            assert lengths == {40}
        else:  # the short and the long text keep their own lengths
            assert len(lengths) == 2 and 40 not in lengths


def test_auto_picks_different_settings_for_contrasting_corpora(workspace: Path) -> None:
    write_prose(workspace / "prose.txt", lines=3000)
    write_dna(workspace / "genome.txt")
    write_cjk(workspace / "cjk.txt")
    prose = pytorch_tokenizer_manager("train", "auto_prose", config={"auto": True, "data_files": ["prose.txt"]})
    dna = pytorch_tokenizer_manager("train", "auto_dna", config={"auto": True, "data_files": ["genome.txt"]})
    cjk = pytorch_tokenizer_manager("train", "auto_cjk", config={"auto": True, "data_files": ["cjk.txt"]})

    assert (prose["type"], dna["type"], cjk["type"]) == ("BPE", "CharLevel", "Unigram")
    assert prose["auto"]["chooser"] == "builtin" and prose["auto"]["reasons"]
    prose_statistics = prose["auto"]["statistics"]
    assert prose_statistics["distinct_words"] > 20 and len(set(prose_statistics["top_words"])) == 20
    assert dna["auto"]["statistics"]["distinct_characters"] == 5  # ACGT and the newline
    assert dna["vocab_size"] == 5 + 5 and "small alphabet" in " ".join(dna["auto"]["reasons"])
    assert prose["auto"]["vocab_size"] % 64 == 0 and prose["auto"]["vocab_size"] >= 1000
    genome = load_tokenizer("auto_dna")
    assert genome.encode("ACGTTGCA").tokens == list("ACGTTGCA")


def test_explicit_settings_win_over_auto(workspace: Path) -> None:
    write_dna(workspace / "genome.txt")
    result = pytorch_tokenizer_manager("train", "dna_bpe", config={"auto": True, "type": "BPE", "vocab_size": 300,
                                                                   "data_files": ["genome.txt"]})
    assert result["type"] == "BPE" and result["auto"]["type"] == "BPE"
    assert result["auto"]["reasons"]  # the rule's reasons are still reported


def test_load_from_a_folder_a_file_and_by_name(prose: Path, workspace: Path) -> None:
    train("original", type="Unigram", vocab_size=200)
    shutil.copytree(workspace / "tokenizers" / "original", workspace / "copied")

    from_folder = pytorch_tokenizer_manager("load", "from_folder", tokenizer_path="copied")
    assert from_folder["tokenizer_info"]["model"] == "Unigram"
    assert from_folder["tokenizer_info"]["tokenizer_file"] == "copied/tokenizer.json"
    from_file = pytorch_tokenizer_manager("load", "from_file", tokenizer_path="copied/tokenizer.json")
    assert from_file["tokenizer_info"]["vocab_size"] == from_folder["tokenizer_info"]["vocab_size"]
    by_name = pytorch_tokenizer_manager("load", "original")
    assert by_name["tokenizer_info"]["source"] == "trained" and by_name["tokenizer_info"]["pad_token"] == "[PAD]"
    assert load_tokenizer("copied").encode(SAMPLE).ids == load_tokenizer("original").encode(SAMPLE).ids


def test_load_of_an_unregistered_name_without_a_source_says_what_to_give() -> None:
    with pytest.raises(ToolError, match="load needs tokenizer_path .* or hf_pretrained_id"):
        pytorch_tokenizer_manager("load", "nothing_here")


def test_load_of_a_folder_that_holds_no_tokenizer_is_refused_clearly(workspace: Path) -> None:
    (workspace / "notes").mkdir()
    (workspace / "notes" / "readme.txt").write_text("not a tokenizer")
    with pytest.raises(ToolError, match="folder without a tokenizer.json, and transformers could not load it"):
        pytorch_tokenizer_manager("load", "notes", tokenizer_path="notes")
    assert registry.names() == []


def test_load_from_the_local_huggingface_cache(prose: Path, workspace: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    train("source", type="WordPiece", vocab_size=300)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-wordpiece"
    shutil.copytree(workspace / "tokenizers" / "source", repo / "snapshots" / commit)
    (repo / "snapshots" / commit / "config.json").write_text('{"model_type": "bert"}')  # as a hub repo has
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    result = pytorch_tokenizer_manager("load", "acme", hf_pretrained_id="acme/tiny-wordpiece")
    assert result["tokenizer_info"]["source"] == "huggingface"
    assert result["tokenizer_info"]["hf_pretrained_id"] == "acme/tiny-wordpiece"
    assert (workspace / "tokenizers" / "acme" / "tokenizer.json").is_file()  # a copy in the workspace
    applied = pytorch_tokenizer_manager("apply", "acme", text_input="the quick fox")
    assert applied["input_ids"] == [load_tokenizer("source").encode("the quick fox").ids]

    with pytest.raises(ToolError, match="not in the local HuggingFace cache.*tokenizer_path"):
        pytorch_tokenizer_manager("load", "missing", hf_pretrained_id="acme/not-cached")
    assert registry.find("tokenizer", "missing") is None


def test_unknown_tokenizer_name_lists_the_registered_ones(prose: Path) -> None:
    train("bpe_small", type="BPE", vocab_size=300)
    with pytest.raises(ToolError, match="no tokenizer named 'bpe_smal'.*did you mean 'bpe_small'.*Registered: bpe_small"):
        pytorch_tokenizer_manager("apply", "bpe_smal", text_input="hello")


@pytest.mark.parametrize(("config", "error"), [
    ({"type": "BPE"}, "train needs config with data_files"),
    ({"type": "SentencePieceBPE", "data_files": ["data/prose_a.txt"]}, "is not a tokenizer type"),
    ({"data_files": ["data/none_*.txt"]}, "matched no file"),
    ({"data_files": ["data/prose_a.txt"], "vocab_size": 0}, "vocab_size must be a positive integer"),
    ({"data_files": ["data/prose_a.txt"], "vocab_sise": 100}, r"unknown key\(s\) \['vocab_sise'\]"),
    ({"data_files": ["data/prose_a.txt"], "type": "WordPiece", "byte_level": True}, "byte_level applies to BPE only"),
    ({"data_files": "data/prose_a.txt", "special_tokens": "[PAD]"}, "special_tokens must be a list"),
    ({"data_files": ["data/prose_a.txt"], "type": "Unigram", "min_frequency": 3}, "min_frequency does not apply to Unigram"),
])
def test_bad_train_configs_are_refused(prose: Path, config: dict, error: str) -> None:
    with pytest.raises(ToolError, match=error):
        pytorch_tokenizer_manager("train", "bad", config=config)
    assert registry.names() == []


def test_paths_outside_the_workspace_are_refused(prose: Path) -> None:
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        pytorch_tokenizer_manager("train", "t", config={"data_files": ["/etc/hostname"]})
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        train("t", tokenizer_path="../elsewhere")


def test_retraining_replaces_the_folder_and_the_registration(prose: Path, workspace: Path) -> None:
    first = train("tok", type="CharLevel")
    second = train("tok", type="BPE", vocab_size=300)
    assert first["replaced"] is False and second["replaced"] is True
    assert load_tokenizer("tok").get_vocab_size() == second["vocab_size"]
    assert sorted(p.name for p in (workspace / "tokenizers").iterdir()) == ["tok"]


def test_the_tool_object_reports_errors_as_text(prose: Path) -> None:
    text = pytorch_tokenizer_manager_tool.invoke({"action": "apply", "tokenizer_name": "nope", "text_input": "x"})
    assert text.startswith("Error: no tokenizer named 'nope'")
    result = pytorch_tokenizer_manager_tool.invoke({
        "action": "train", "tokenizer_name": "t",
        "config": {"type": "CharLevel", "data_files": ["data/prose_a.txt"]}})
    assert result["status"] == "success"


def test_the_config_argument_survives_langchains_reserved_config_keyword(prose: Path) -> None:
    """LangChain passes its RunnableConfig as `config`; the tool's own `config` must still arrive."""
    assert "config" in pytorch_tokenizer_manager_tool.args
    message = pytorch_tokenizer_manager_tool.invoke({
        "type": "tool_call", "id": "call_1", "name": "pytorch_tokenizer_manager",
        "args": {"action": "train", "tokenizer_name": "chars",
                 "config": {"type": "CharLevel", "data_files": ["data/prose_a.txt"]}},
    }, config={"tags": ["research"]})
    assert message.tool_call_id == "call_1" and '"status": "success"' in message.content
    assert registry.get("tokenizer", "chars")["data"]["type"] == "CharLevel"


def test_a_trained_tokenizer_feeds_the_text_classification_dataset_by_name(workspace: Path) -> None:
    import json

    from tests.training_helpers import write_models
    from torchscout.tools.training.evaluation import pytorch_quick_evaluator

    rows = [{"text": f"{'good great fine' if i % 2 else 'bad awful poor'} item {i}", "label": "pos" if i % 2 else "neg"}
            for i in range(40)]
    (workspace / "reviews.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (workspace / "reviews.txt").write_text("\n".join(row["text"] for row in rows) + "\n", encoding="utf-8")
    trained = pytorch_tokenizer_manager("train", "reviews_wp", config={
        "type": "WordPiece", "vocab_size": 60, "min_frequency": 1, "data_files": ["reviews.txt"]})
    assert trained["vocab_size"] <= 60

    result = pytorch_quick_evaluator(write_models(workspace), "TokenClassifier", {
        "dataset": "text_classification", "epochs": 1, "batch_size": 4, "max_steps": 3, "device": "cpu",
        "metrics": ["accuracy"], "model_params": {"vocab_size": 64},
        "dataset_params": {"data_path": "reviews.jsonl", "tokenizer_config": {"name": "reviews_wp"},
                           "max_length": 8},
    })
    assert result["status"] == "completed", result.get("error")
    assert result["dataset"]["name"] == "text_classification"

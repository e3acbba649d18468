"""The shapes of ``pytorch_tokenizer_manager``'s answers, its train settings and its registry records."""

from typing import Literal, NotRequired, TypedDict


class TokenizerSource(TypedDict, total=False):
    """Where a registered tokenizer came from."""

    source: str  # "trained", "local" or "huggingface"
    hf_pretrained_id: str  # huggingface
    tokenizer_path: str  # workspace-relative folder
    type: str  # trained: BPE, WordPiece, Unigram or CharLevel


class TokenizerRecord(TokenizerSource):
    """A tokenizer's registry entry data (kind ``tokenizer``)."""

    tokenizer_file: str  # workspace-relative tokenizer.json
    vocab_size: int


class TokenizerInfo(TypedDict):
    """What an agent needs to know about a tokenizer."""

    vocab_size: int  # added tokens included
    model: str  # the tokenizers model class: BPE, WordPiece, Unigram, WordLevel
    special_tokens: list[str]
    pad_token: str
    pad_token_id: int
    tokenizer_file: str  # workspace-relative


class LoadedTokenizerInfo(TokenizerInfo, TokenizerSource):
    """``tokenizer_info`` of the load answer: the tokenizer, and where it came from."""


class EncodedTexts(TypedDict):
    """The apply answer: one row per text."""

    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    tokens: NotRequired[list[list[str]]]  # with return_tokens


class CorpusStatistics(TypedDict):
    """What the ``auto`` choice measures on a sample of the corpus."""

    sample_characters: int
    corpus_bytes: int
    distinct_characters: int
    whitespace_fraction: float
    non_ascii_fraction: float
    words: int  # whitespace-separated
    distinct_words: int
    words_seen_twice_or_more: int
    hapax_fraction: float
    mean_word_length: float
    word_length_p50: int
    word_length_p95: int
    top_words: list[str]  # the 20 most frequent
    words_covering_90_percent: int
    heaps_beta: float
    estimated_useful_vocabulary: int  # repeated words, extrapolated to the whole corpus


class TokenizerChoice(TypedDict):
    type: str  # BPE, WordPiece, Unigram or CharLevel
    vocab_size: int
    reasons: list[str]


class AutoChoice(TokenizerChoice):
    """The ``auto`` answer: the choice (type and vocab_size as trained), who chose, and on what."""

    chooser: str  # "llm", "builtin" or "builtin (the LLM's answer was unusable)"
    statistics: CorpusStatistics
    builtin_rule: NotRequired[TokenizerChoice]  # what the rule would have chosen, when the LLM chose


class TokenizerSettings(TypedDict):
    """The settings a tokenizer was trained with, every default filled in."""

    type: str  # BPE, WordPiece, Unigram or CharLevel
    vocab_size: int
    min_frequency: int
    special_tokens: list[str]
    lowercase: bool
    max_token_length: int | None
    byte_level: bool  # BPE only
    sample_bytes: NotRequired[int | None]  # auto: how much of the corpus was measured


class TrainSettings(TokenizerSettings):
    """The checked ``config`` of the train action."""

    data_files: list[str]  # workspace paths and globs, as given
    auto: NotRequired[bool]


class TokenizerTrainAnswer(TypedDict):
    status: Literal["success"]
    tokenizer_name: str
    tokenizer_path: str  # workspace-relative folder: tokenizer.json and the transformers files
    vocab_size: int
    type: str
    training_time_s: float
    corpus_bytes: int
    data_files: list[str]  # workspace-relative, globs expanded
    settings: TokenizerSettings
    replaced: bool
    message: str
    auto: NotRequired[AutoChoice]


class TokenizerLoadAnswer(TypedDict):
    status: Literal["success"]
    tokenizer_name: str
    tokenizer_info: LoadedTokenizerInfo
    replaced: NotRequired[bool]  # not when an already registered name was checked
    message: NotRequired[str]

"""Find, load and encode with tokenizers: registered names, workspace files, the HF cache.

``load_tokenizer(name_or_path)`` is what other parts call (the text datasets of the training
engine); ``encode_texts`` is the batch encoding behind the ``apply`` action, and
``borrowed_tokenizer`` the per-process cache that spares ``apply`` re-reading tokenizer.json.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer

from torchscout.tools import registry
from torchscout.tools.errors import ToolError
from torchscout.tools.text.types import EncodedTexts, TokenizerInfo
from torchscout.tools.workspace import relative_to_workspace, resolve

TOKENIZER_FILE_NAME = "tokenizer.json"
# Tried in order when a tokenizer does not say which token pads.
PAD_TOKEN_CANDIDATES = ("[PAD]", "<pad>", "<|pad|>", "<PAD>", "</s>", "<|endoftext|>", "[SEP]", "<eos>")
Padding = Literal["longest", "max_length", "do_not_pad"]
# The Rust encoder allocates the padded rows up front: 10**12 aborted the whole process.
MAX_LENGTH = 1 << 20
MAX_PADDED_TOKENS = 10_000_000


def load_tokenizer(name_or_path: str) -> Tokenizer:
    """A fresh ``tokenizers.Tokenizer`` for a registered name or a workspace path.

    The path may be a ``tokenizer.json`` file or a folder holding one (such as the folder the
    ``train`` action saves). Raises a ToolError listing the registered tokenizers when the name
    is neither registered nor an existing path.
    """
    return Tokenizer.from_file(str(tokenizer_file_for(name_or_path)))


def tokenizer_file_for(name_or_path: str) -> Path:
    """The absolute ``tokenizer.json`` behind a registered name or a workspace path."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ToolError("give a registered tokenizer name or a workspace path to a tokenizer.json / its folder")
    entry = registry.find("tokenizer", name_or_path)
    if entry is not None:
        path = resolve(entry["data"]["tokenizer_file"], kind="registered tokenizer file")
        if not path.is_file():
            raise ToolError(f"tokenizer {name_or_path!r} is registered with {entry['data']['tokenizer_file']}, "
                            "which no longer exists; train or load it again")
        return path
    candidate = resolve(name_or_path, kind="tokenizer path")
    if candidate.is_dir() and (candidate / TOKENIZER_FILE_NAME).is_file():
        return candidate / TOKENIZER_FILE_NAME
    if candidate.is_file() and candidate.suffix == ".json":
        return candidate
    if candidate.is_dir():
        raise ToolError(f"{name_or_path!r} is a folder without a {TOKENIZER_FILE_NAME}; load it with "
                        "pytorch_tokenizer_manager(action='load', tokenizer_path=...) to convert it first")
    raise ToolError(registry.unknown_name_message("tokenizer", name_or_path)
                    + f" {name_or_path!r} is not a tokenizer.json or a folder with one in the workspace either.")


@dataclass
class _Shared:
    tokenizer: Tokenizer
    lock: threading.Lock = field(default_factory=threading.Lock)


@lru_cache(maxsize=16)
def _shared(path: str, mtime_ns: int, size: int) -> _Shared:
    # keyed on mtime and size so a retrained tokenizer is read again
    return _Shared(Tokenizer.from_file(path))


@contextlib.contextmanager
def borrowed_tokenizer(name_or_path: str) -> Iterator[Tokenizer]:
    """A tokenizer shared between calls (no re-read of tokenizer.json), held exclusively meanwhile.

    Padding and truncation are settings of the Tokenizer object, so two threads encoding with
    different settings must not use it at once; callers set both explicitly, as
    :func:`encode_texts` does.
    """
    path = tokenizer_file_for(name_or_path)
    status = path.stat()
    shared = _shared(str(path), status.st_mtime_ns, status.st_size)
    with shared.lock:
        yield shared.tokenizer


def pad_token_of(tokenizer: Tokenizer, preferred: str | None = None) -> tuple[str, int]:
    """The pad token and id: ``preferred`` if in the vocabulary, else a conventional one, else id 0."""
    for token in (preferred, *PAD_TOKEN_CANDIDATES):
        if token is None:
            continue
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token, token_id
    # No pad token at all: id 0 is as good as any, the attention mask marks the padding.
    return tokenizer.id_to_token(0) or "", 0


def encode_texts(
    tokenizer: Tokenizer,
    texts: str | list[str],
    *,
    padding: Padding | bool = "longest",
    truncation: bool = False,
    max_length: int | None = None,
    return_tokens: bool = False,
    pad_token: str | None = None,
) -> EncodedTexts:
    """Encode a string or a batch: ``{"input_ids", "attention_mask"}`` (+ ``"tokens"``), one row per text.

    ``padding``: ``"longest"`` (default; pad to the longest row), ``"max_length"`` (pad to
    ``max_length``), ``"do_not_pad"`` (rows keep their lengths); ``True``/``False`` mean
    longest / do_not_pad. ``truncation`` cuts rows to ``max_length``.
    """
    batch = [texts] if isinstance(texts, str) else texts
    if not isinstance(batch, list) or not all(isinstance(text, str) for text in batch):
        raise ToolError("text_input must be a string or a list of strings")
    padding = {True: "longest", False: "do_not_pad"}.get(padding, padding)  # type: ignore[arg-type]
    if padding not in ("longest", "max_length", "do_not_pad"):
        raise ToolError(f"padding must be 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise ToolError(f"max_length must be a positive integer, got {max_length!r}")
    if max_length is not None and max_length > MAX_LENGTH:
        raise ToolError(f"max_length {max_length} is over the limit of {MAX_LENGTH:,} tokens")
    if padding == "max_length" and max_length is not None and max_length * len(batch) > MAX_PADDED_TOKENS:
        raise ToolError(f"padding {len(batch)} texts to max_length {max_length} makes {max_length * len(batch):,} "
                        f"tokens, over the limit of {MAX_PADDED_TOKENS:,}; pad to 'longest' or encode fewer texts")
    if (truncation or padding == "max_length") and max_length is None:
        raise ToolError("truncation=True and padding='max_length' need max_length (e.g. max_length=128)")

    if truncation:
        tokenizer.enable_truncation(max_length)
    else:
        tokenizer.no_truncation()
    if padding == "do_not_pad":
        tokenizer.no_padding()
    else:
        token, token_id = pad_token_of(tokenizer, pad_token)
        tokenizer.enable_padding(pad_id=token_id, pad_token=token,
                                 length=max_length if padding == "max_length" else None)
    encodings = tokenizer.encode_batch(batch)
    result: EncodedTexts = {
        "input_ids": [encoding.ids for encoding in encodings],
        "attention_mask": [encoding.attention_mask for encoding in encodings],
    }
    if return_tokens:
        result["tokens"] = [encoding.tokens for encoding in encodings]
    return result


def tokenizer_info(tokenizer: Tokenizer, tokenizer_file: Path) -> TokenizerInfo:
    """What an agent needs to know about a tokenizer (JSON-able)."""
    special = sorted(token.content for token in tokenizer.get_added_tokens_decoder().values() if token.special)
    pad_token, pad_id = pad_token_of(tokenizer)
    return {
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "model": type(tokenizer.model).__name__,
        "special_tokens": special,
        "pad_token": pad_token,
        "pad_token_id": pad_id,
        "tokenizer_file": relative_to_workspace(tokenizer_file),
    }

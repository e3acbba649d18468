"""pytorch_tokenizer_manager: train, load and apply tokenizers, registered by name.

``load_tokenizer(name_or_path)`` (re-exported here from :mod:`torchscout.tools.text.tokenizer_store`)
is the Python API other parts use. Training lives in :mod:`torchscout.tools.text.tokenizer_training`,
the ``auto`` configuration in :mod:`torchscout.tools.text.corpus_stats`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from torchscout.tools import registry
from torchscout.tools.answers import to_json, write_details
from torchscout.tools.errors import ToolError
from torchscout.tools.ownership import check_folder_target, write_owned_folder
from torchscout.tools.registry import RegistryEntry
from torchscout.tools.text.tokenizer_store import (
    TOKENIZER_FILE_NAME,
    borrowed_tokenizer,
    encode_texts,
    load_tokenizer,
    tokenizer_file_for,
    tokenizer_info,
)
from torchscout.tools.text.tokenizer_training import (
    DEFAULT_TOKENIZERS_FOLDER,
    TOKENIZER_FOLDER_KIND,
    train_tokenizer,
)
from torchscout.tools.text.types import (
    EncodedTexts,
    TokenizerLoadAnswer,
    TokenizerRecord,
    TokenizerSource,
    TokenizerTrainAnswer,
)
from torchscout.tools.toolkit import make_tool
from torchscout.tools.workspace import relative_to_workspace, resolve

__all__ = ["load_tokenizer", "pytorch_tokenizer_manager", "pytorch_tokenizer_manager_tool"]


def load_action(tokenizer_name: str, tokenizer_path: str | None, hf_pretrained_id: str | None) -> TokenizerLoadAnswer:
    """Register a tokenizer from a workspace folder/file, the HuggingFace cache/hub, or re-check a name."""
    registry.check_name("tokenizer", tokenizer_name)
    if hf_pretrained_id:
        _check_hub_id(hf_pretrained_id)
        folder = resolve(tokenizer_path or f"{DEFAULT_TOKENIZERS_FOLDER}/{tokenizer_name}", kind="tokenizer_path")
        what = f"tokenizer_path {tokenizer_path!r}" if tokenizer_path else f"the tokenizer folder of {tokenizer_name!r}"
        check_folder_target(folder, TOKENIZER_FOLDER_KIND, what)
        tokenizer_file = _save_pretrained_copy(hf_pretrained_id, folder, what)
        source: TokenizerSource = {"source": "huggingface", "hf_pretrained_id": hf_pretrained_id}
    elif tokenizer_path:
        tokenizer_file = _local_tokenizer_file(tokenizer_name, tokenizer_path)
        source = {"source": "local"}
    else:
        entry = registry.find("tokenizer", tokenizer_name)
        if entry is None:
            raise ToolError("load needs tokenizer_path (a workspace folder or tokenizer.json) or hf_pretrained_id; "
                            "without them tokenizer_name must be registered. "
                            + registry.unknown_name_message("tokenizer", tokenizer_name))
        tokenizer_file = tokenizer_file_for(tokenizer_name)  # a registered name: check it still loads
        info = tokenizer_info(load_tokenizer(tokenizer_name), tokenizer_file)
        return {"status": "success", "tokenizer_name": tokenizer_name,
                "tokenizer_info": {**info, **_source_of(entry)}}

    info = tokenizer_info(load_tokenizer(str(tokenizer_file)), tokenizer_file)
    record: TokenizerRecord = {
        "tokenizer_file": info["tokenizer_file"],
        "tokenizer_path": relative_to_workspace(tokenizer_file.parent),
        "vocab_size": info["vocab_size"],
        **source,
    }
    registration = registry.register("tokenizer", tokenizer_name, record)
    return {"status": "success", "tokenizer_name": tokenizer_name,
            "tokenizer_info": {**info, "tokenizer_path": relative_to_workspace(tokenizer_file.parent), **source},
            "replaced": registration["replaced"], "message": registration["message"]}


def _source_of(entry: RegistryEntry) -> TokenizerSource:
    data = entry["data"]  # a TokenizerRecord
    return cast(TokenizerSource, {key: data[key] for key in ("source", "hf_pretrained_id", "tokenizer_path", "type")
                                  if key in data})


def _local_tokenizer_file(tokenizer_name: str, tokenizer_path: str) -> Path:
    """tokenizer.json for a workspace file/folder; a HF folder without one is converted once."""
    path = resolve(tokenizer_path, must_exist=True, kind="tokenizer_path")
    if path.is_file():
        if path.suffix != ".json":
            raise ToolError(f"tokenizer_path {tokenizer_path!r} is a file but not a tokenizer.json")
        return path
    if (path / TOKENIZER_FILE_NAME).is_file():
        return path / TOKENIZER_FILE_NAME
    # e.g. a BERT folder with only vocab.txt: let transformers build the fast tokenizer, keep its json
    try:
        tokenizer = _auto_tokenizer(str(path), local_only=True)
    except ToolError as exc:
        raise ToolError(f"tokenizer_path {tokenizer_path!r} is a folder without a {TOKENIZER_FILE_NAME}, and "
                        f"transformers could not load it either ({exc.__cause__ or exc}); point tokenizer_path "
                        "at a tokenizer.json or a folder saved by the train action / save_pretrained") from exc
    folder = resolve(f"{DEFAULT_TOKENIZERS_FOLDER}/{tokenizer_name}", kind="tokenizer copy")
    write_owned_folder(folder, TOKENIZER_FOLDER_KIND, f"the converted copy of {tokenizer_path!r}",
                       lambda staging: (staging / TOKENIZER_FILE_NAME).write_text(
                           tokenizer.backend_tokenizer.to_str(), encoding="utf-8"))
    return folder / TOKENIZER_FILE_NAME


# A hub id is 'name' or 'owner/name'; anything else (an absolute or relative path) would make
# transformers read a folder on disk, possibly outside the workspace.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def _check_hub_id(hf_pretrained_id: str) -> None:
    if not _HUB_ID.match(hf_pretrained_id) or ".." in hf_pretrained_id or Path(hf_pretrained_id).exists():
        raise ToolError(f"hf_pretrained_id {hf_pretrained_id!r} is not a HuggingFace model id such as "
                        "'bert-base-uncased' or 'owner/name'; to load a tokenizer folder of the workspace "
                        "give it as tokenizer_path instead")


def _save_pretrained_copy(hf_pretrained_id: str, folder: Path, what: str) -> Path:
    """Load ``hf_pretrained_id`` (local cache first) and save it into the workspace folder."""
    tokenizer = _auto_tokenizer(hf_pretrained_id, local_only=_offline())

    def write_files(staging: Path) -> None:
        tokenizer.save_pretrained(str(staging))
        if not (staging / TOKENIZER_FILE_NAME).is_file():
            (staging / TOKENIZER_FILE_NAME).write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")

    write_owned_folder(folder, TOKENIZER_FOLDER_KIND, what, write_files)
    return folder / TOKENIZER_FILE_NAME


def _offline() -> bool:
    return any(os.environ.get(variable, "").lower() in {"1", "true", "yes", "on"}
               for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _auto_tokenizer(source: str, local_only: bool) -> Any:
    from transformers import AutoTokenizer  # slow import: only when loading from HuggingFace

    attempts = [True] if local_only else [True, False]
    last_error: Exception | None = None
    for local_files_only in attempts:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        except (OSError, ValueError) as exc:
            last_error = exc
            continue
        if not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "backend_tokenizer", None) is None:
            raise ToolError(f"{source!r} has no fast (tokenizers-backed) tokenizer; torchscout needs one")
        return tokenizer
    where = ("it is not in the local HuggingFace cache and the hub is unreachable or offline "
             "(HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set)" if local_only or _offline()
             else "it is neither in the local HuggingFace cache nor downloadable")
    raise ToolError(f"cannot load tokenizer {source!r}: {where}. Connect to the network once to cache it, "
                    f"or copy its files (tokenizer.json) into the workspace and load with tokenizer_path. "
                    f"Detail: {last_error}") from last_error


def apply_action(tokenizer_name: str, text_input: str | list[str] | None, padding: Any, truncation: bool,
                 max_length: int | None, return_tokens: bool) -> EncodedTexts:
    if text_input is None:
        raise ToolError("apply needs text_input: a string or a list of strings")
    with borrowed_tokenizer(tokenizer_name) as tokenizer:
        return encode_texts(tokenizer, text_input, padding=padding, truncation=truncation,
                            max_length=max_length, return_tokens=return_tokens)


class TokenizerManagerArgs(BaseModel):
    action: Literal["train", "load", "apply"] = Field(
        description="'train' a new tokenizer on workspace text files, 'load' one (workspace folder/file or "
        "HuggingFace id) and register it, or 'apply' a registered one to text."
    )
    tokenizer_name: str = Field(description="The name the tokenizer is registered under (and looked up by).")
    config: dict[str, Any] | None = Field(
        default=None,
        description="train: {'type': 'BPE' | 'WordPiece' | 'Unigram' | 'CharLevel', 'vocab_size': 8000, "
        "'data_files': ['data/*.txt'], 'special_tokens': ['[PAD]', '[UNK]', ...], 'min_frequency': 2, "
        "'lowercase': false, 'max_token_length': null, 'byte_level': true (BPE)}; or {'auto': true, "
        "'data_files': [...]} to pick type and vocab_size from corpus statistics.",
    )
    tokenizer_path: str | None = Field(
        default=None,
        description="train: folder to save in (default tokenizers/<tokenizer_name>); load: a workspace "
        "folder or tokenizer.json to load.",
    )
    text_input: str | list[str] | None = Field(default=None, description="apply: a string or a list of strings.")
    hf_pretrained_id: str | None = Field(
        default=None, description="load: a HuggingFace model id such as 'bert-base-uncased' (local cache offline)."
    )
    padding: Literal["longest", "max_length", "do_not_pad"] | bool = Field(
        default="longest", description="apply: 'longest' (pad to the longest text), 'max_length' or 'do_not_pad'."
    )
    truncation: bool = Field(default=False, description="apply: cut texts to max_length tokens.")
    max_length: int | None = Field(default=None, description="apply: length for truncation / max_length padding.")
    return_tokens: bool = Field(default=False, description="apply: also return the token strings.")


def pytorch_tokenizer_manager(
    action: str,
    tokenizer_name: str,
    config: dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
    text_input: str | list[str] | None = None,
    hf_pretrained_id: str | None = None,
    padding: Literal["longest", "max_length", "do_not_pad"] | bool = "longest",
    truncation: bool = False,
    max_length: int | None = None,
    return_tokens: bool = False,
) -> TokenizerTrainAnswer | TokenizerLoadAnswer | EncodedTexts:
    """Train, load and apply tokenizers; every tokenizer is registered by tokenizer_name.

    action='train': config = {"type": "BPE" (byte-level, default) | "WordPiece" | "Unigram" |
    "CharLevel", "vocab_size", "data_files" (workspace paths, globs allowed), "special_tokens",
    "min_frequency", "lowercase", "max_token_length"}. Saves tokenizer.json and a
    transformers folder (AutoTokenizer.from_pretrained works on it) at tokenizer_path
    (default tokenizers/<tokenizer_name>). config={"auto": true, "data_files": [...]} measures
    the corpus and picks type and vocab_size, with reasons. Returns {"status", "tokenizer_name",
    "tokenizer_path", "vocab_size", "training_time_s", "corpus_bytes", ...}.
    action='load': tokenizer_path (a workspace folder or tokenizer.json) or hf_pretrained_id
    (HuggingFace id; uses the local cache when offline); returns {"status", "tokenizer_name",
    "tokenizer_info"}.
    action='apply': text_input (string or list) with padding ('longest' default, 'max_length',
    'do_not_pad'), truncation + max_length, return_tokens; returns {"input_ids": [[...]],
    "attention_mask": [[...]]} (+ "tokens"), one row per text.
    """
    if action == "train":
        return train_tokenizer(tokenizer_name, config, tokenizer_path)
    if action == "load":
        return load_action(tokenizer_name, tokenizer_path, hf_pretrained_id)
    if action == "apply":
        return apply_action(tokenizer_name, text_input, padding, truncation, max_length, return_tokens)
    raise ToolError(f"unknown action {action!r}; use 'train', 'load' or 'apply'")


ENCODED_ANSWER_CHARS = 3000  # of encoded rows in one answer; all of them go to a file past that


def tokenizer_answer(result: dict, arguments: dict) -> dict:
    """The agent's answer: train and load answers as they are; apply's rows with a status, fitted to the size."""
    name = arguments.get("tokenizer_name", "")
    if "status" in result:
        if "message" in result:
            return result
        size = (result.get("tokenizer_info") or {}).get("vocab_size")
        return {**result, "message": f"Tokenizer {name!r} is registered" + (f" (vocab size {size:,})" if size else "")
                + "; use it by name with action='apply' or in a training config."}
    rows = len(result["input_ids"])
    lengths = sorted({len(row) for row in result["input_ids"]})
    answer = {"status": "success", "tokenizer_name": name, "num_texts": rows,
              "tokens_per_text": lengths[0] if len(lengths) == 1 else {"min": lengths[0], "max": lengths[-1]}}
    if len(to_json(result)) <= ENCODED_ANSWER_CHARS:
        return {**answer, **result, "message": f"Encoded {rows} text(s) with {name!r}."}
    details = write_details("pytorch_tokenizer_manager", to_json(result))
    kept = 0
    while kept < rows and len(to_json({key: values[: kept + 1] for key, values in result.items()})) <= ENCODED_ANSWER_CHARS:
        kept += 1
    shown = {key: values[:kept] for key, values in result.items()}
    what = f"the first {kept} row(s) are shown"
    if kept == 0:  # one text alone is too long: its first tokens
        shown = {key: [values[0][:ENCODED_ANSWER_CHARS // 24]] for key, values in result.items()}
        what = f"the first {len(shown['input_ids'][0])} tokens of the first text are shown"
    return {**answer, **shown, "details_path": details,
            "message": f"Encoded {rows} text(s) with {name!r}; {what} and all of them are in {details}."}


pytorch_tokenizer_manager_tool = make_tool(pytorch_tokenizer_manager, TokenizerManagerArgs, answer=tokenizer_answer)

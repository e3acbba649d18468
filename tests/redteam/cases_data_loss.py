"""Red-team cases: a careless or hostile call must not destroy data inside the workspace."""

from __future__ import annotations

import sqlite3

import torch

from tests.redteam.harness import Arena, case

CORPUS = "the quick brown fox jumps over the lazy dog\n" * 200
BPE = {"type": "BPE", "vocab_size": 300, "data_files": ["data/corpus.txt"]}
USER_MODEL = "import torch\n\n\nclass Mine(torch.nn.Module):\n    pass\n"


def _user_workspace(arena: Arena) -> None:
    """What a user has: a model, a corpus, a run database, a trained tokenizer of their own."""
    arena.write("src/model.py", USER_MODEL)
    arena.write("data/corpus.txt", CORPUS)
    arena.path(".torchscout").mkdir()
    sqlite3.connect(arena.path(".torchscout/graph.sqlite")).execute("CREATE TABLE runs (name TEXT)").connection.commit()


def _train(arena: Arena, name: str, path: str | None = None, config: dict | None = None):
    arguments = {"action": "train", "tokenizer_name": name, "config": config or BPE}
    if path is not None:
        arguments["tokenizer_path"] = path
    return arena.tool("pytorch_tokenizer_manager", **arguments)


@case("data_loss", "tokenizer train with tokenizer_path '.' (the workspace root)", refusal=True)
def tokenizer_into_the_workspace_root(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        _train(arena, "t", ".")
    return None


@case("data_loss", "tokenizer train with tokenizer_path 'src' (the user's code)", refusal=True)
def tokenizer_over_the_users_code(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        _train(arena, "t", "src")
    return None


@case("data_loss", "tokenizer train into the state folder .torchscout", refusal=True)
def tokenizer_into_the_state_folder(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        _train(arena, "t", ".torchscout")
        _train(arena, "t", ".torchscout/tokenizer")
    return None


@case("data_loss", "tokenizer_name '' after a tokenizer was trained (wiped tokenizers/ before failing)", refusal=True)
def empty_tokenizer_name(arena: Arena) -> str | None:
    _user_workspace(arena)
    arena.must(_train(arena, "mine"))
    with arena.attack():
        _train(arena, "")
        _train(arena, " ")
    return None


@case("data_loss", "tokenizer_path 'tokenizers' (the folder holding every tokenizer)", refusal=True)
def tokenizer_over_the_tokenizers_folder(arena: Arena) -> str | None:
    _user_workspace(arena)
    arena.must(_train(arena, "mine"))
    with arena.attack():
        _train(arena, "t", "tokenizers")
    return None


@case("data_loss", "retraining a tokenizer folder the user has put a file into", refusal=True)
def retrain_over_added_files(arena: Arena) -> str | None:
    _user_workspace(arena)
    arena.must(_train(arena, "mine"))
    arena.write("tokenizers/mine/NOTES.md", "my notes about this tokenizer\n")
    with arena.attack():
        _train(arena, "mine")
    return None


@case("data_loss", "tokenizer_path naming an existing file", refusal=True)
def tokenizer_over_a_file(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        _train(arena, "t", "data/corpus.txt")
    return None


@case("data_loss", "retraining a tokenizer it wrote replaces it (legitimate), files beside it survive")
def retrain_replaces_only_its_own_folder(arena: Arena) -> str | None:
    _user_workspace(arena)
    arena.must(_train(arena, "mine"))
    arena.write("tokenizers/other/keep.txt", "not a tokenizer\n")
    with arena.attack(may_change=("tokenizers/mine", ".torchscout/registry.json")):
        answer = _train(arena, "mine", config={**BPE, "vocab_size": 280})
    if not answer.text.startswith("{"):
        return f"the legitimate retraining was refused: {answer.text[:200]}"
    leftovers = [path.name for path in arena.path("tokenizers").iterdir() if path.name.startswith(".")]
    return f"staging folders left behind: {leftovers}" if leftovers else None


@case("data_loss", "tokenizer load from the hub into the user's folder", refusal=True)
def hub_copy_over_the_users_folder(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        arena.tool("pytorch_tokenizer_manager", action="load", tokenizer_name="t", tokenizer_path="src",
                   hf_pretrained_id="bert-base-uncased")
    return None


@case("data_loss", "assembler output_script_path over the user's own model file", refusal=True)
def assembler_over_a_user_file(arena: Arena) -> str | None:
    _user_workspace(arena)
    blueprint = {"model_name": "Net", "input_shape": [8], "layers": [{"type": "Linear", "params": {"out_features": 2}}]}
    with arena.attack():
        arena.tool("pytorch_model_assembler", model_config=blueprint, output_script_path="src/model.py")
    return None


@case("data_loss", "a failed re-assembly keeps the block file an earlier assembly's model imports", refusal=True)
def failed_reassembly_keeps_blocks(arena: Arena) -> str | None:
    from tests.llm_helpers import python_block, scripted
    from torchscout.settings import configure
    from torchscout.tools.modeling.assembler import pytorch_model_assembler

    block = ("import torch\nfrom torch import nn\n\n\nclass Gate(nn.Module):\n    def __init__(self, dim: int) -> None:\n"
             "        super().__init__()\n        self.proj = nn.Linear(dim, dim)\n\n"
             "    def forward(self, x):\n        return x * torch.sigmoid(self.proj(x))\n")
    configure(llm=scripted(python_block(block), python_block(block.replace("sigmoid", "tanh"))))
    good = {"model_name": "Gated", "input_shape": [16],
            "layers": [{"type": "Gate", "params": {"dim": 16}}, {"type": "Linear", "params": {"out_features": 4}}]}
    arena.must(arena.call(pytorch_model_assembler, good, "src/gated.py"))
    bad = {**good, "layers": [good["layers"][0], {"type": "Linear", "params": {"out_features": 4}, "output_index": 1}]}
    with arena.attack(may_change=(".torchscout/llm_cache.sqlite",)):
        arena.call(pytorch_model_assembler, bad, "src/gated.py")
    return None


@case("data_loss", "custom optimizer written into another registered optimizer's file", refusal=True)
def optimizer_over_another_optimizers_file(arena: Arena) -> str | None:
    from tests.redteam.sources import optimizer_source

    arena.write("optimizers/signsgd.py", optimizer_source("SignSGD"))
    arena.write("optimizers/other.py", optimizer_source("OtherSGD"))
    arena.must(arena.tool("pytorch_optimizer_configurator", action="register_custom_optimizer",
                          config_name="SignSGD", optimizer_details={}, source_path="optimizers/signsgd.py"))
    with arena.attack(may_change=(".torchscout/registry.json",)):
        arena.tool("pytorch_optimizer_configurator", action="register_custom_optimizer", config_name="OtherSGD",
                   optimizer_details={}, source_path="optimizers/other.py", output_script_path="optimizers/signsgd.py")
    return None


@case("data_loss", "custom optimizer written over a file of the user's", refusal=True)
def optimizer_over_a_user_file(arena: Arena) -> str | None:
    from tests.redteam.sources import optimizer_source

    _user_workspace(arena)
    arena.write("optimizers/mine.py", optimizer_source("Mine"))
    with arena.attack(may_change=(".torchscout/registry.json",)):
        arena.tool("pytorch_optimizer_configurator", action="register_custom_optimizer", config_name="Mine",
                   optimizer_details={}, source_path="optimizers/mine.py", output_script_path="src/model.py")
    return None


@case("data_loss", "write_file and append_to_file into the run database's folder", refusal=True)
def file_tools_into_the_state_folder(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        arena.tool("write_file", file_path=".torchscout/graph.sqlite", content="")
        arena.tool("append_to_file", file_path=".torchscout/registry.json", content="garbage")
        arena.tool("write_file", file_path="./.torchscout/../.torchscout/new.txt", content="x")
    return None


@case("data_loss", "scaffold a project over a non-empty folder", refusal=True)
def scaffold_over_a_folder(arena: Arena) -> str | None:
    _user_workspace(arena)
    with arena.attack():
        arena.tool("create_pytorch_project_scaffold", project_name="src", base_dir=".")
    return None


@case("data_loss", "checkpoints are independent files: damaging best.pt leaves last.pt intact", slow=True,
      time_limit_s=240)
def checkpoints_are_independent(arena: Arena) -> str | None:
    from tests.redteam.sources import TINY_MODEL

    arena.write("model.py", TINY_MODEL)
    config = {"dataset": "digits", "epochs": 2, "batch_size": 128, "checkpoint_interval": 1, "device": "cpu"}
    arena.must(arena.tool("pytorch_full_trainer", model_script_path="model.py", model_class_name="Tiny",
                          trainer_config=config, experiment_name="exp"))
    folder = arena.path("full_experiments/exp/checkpoints")
    files = sorted(path.name for path in folder.glob("*.pt"))
    if len(files) < 3:
        return f"expected last.pt, best.pt and epoch_N.pt, found {files}"
    inodes = {path.stat().st_ino for path in folder.glob("*.pt")}
    if len(inodes) != len(files) or any(path.stat().st_nlink != 1 for path in folder.glob("*.pt")):
        return "checkpoint files share an inode (hard links): damage to one is damage to all"
    with open(folder / "best.pt", "r+b") as handle:  # the damage, in place
        handle.write(b"\0" * 64)
    with arena.attack():
        arena.call(torch.load, folder / "last.pt", weights_only=True)
    return None


@case("data_loss", "full trainer logging into the user's folder", refusal=True, time_limit_s=120)
def trainer_into_a_user_folder(arena: Arena) -> str | None:
    from tests.redteam.sources import TINY_MODEL

    _user_workspace(arena)
    arena.write("models/tiny.py", TINY_MODEL)
    arena.write("src/train.log", "my own log\n")
    with arena.attack():
        arena.tool("pytorch_full_trainer", model_script_path="models/tiny.py", model_class_name="Tiny",
                   trainer_config={"dataset": "digits", "epochs": 1, "device": "cpu"},
                   experiment_name="src", log_base_dir=".")
    return None

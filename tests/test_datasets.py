"""The dataset registry: every dataset trains through the quick evaluator; loaders read real formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training_helpers import (
    BLOB_MODEL,
    CUSTOM_DATASET_SCRIPT,
    one_thread,  # noqa: F401 - fixture
    write_cifar10,
    write_image_folder,
    write_mnist,
    write_models,
)
from torchscout.tools.errors import ToolError
from torchscout.tools.training.datasets import DatasetRequest, TensorSplit, build_datasets, dataset_names
from torchscout.tools.training.evaluation import pytorch_quick_evaluator
from torchscout.tools.training.vision_sources import DATASET_STATISTICS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cifar_without_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated batches cannot match the real files' md5 sums: check only that they exist."""
    import os

    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda path, md5=None: os.path.isfile(path))


def request(name: str, root: Path, **overrides) -> DatasetRequest:
    values = {"name": name, "params": {}, "data_root": root, "input_shape": None, "num_classes": None,
              "seed": 0, "val_fraction": 0.1}
    values.update(overrides)
    return DatasetRequest(**values)


def write_tokenizer(workspace: Path, texts: list[str]) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    (workspace / "tok").mkdir()
    tokenizer.save(str(workspace / "tok" / "tokenizer.json"))
    return "tok/tokenizer.json"


def write_text_dataset(workspace: Path) -> dict:
    rows = [{"text": f"{'good great fine' if i % 2 else 'bad awful poor'} item {i}", "label": "pos" if i % 2 else "neg"}
            for i in range(40)]
    (workspace / "reviews.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    tokenizer = write_tokenizer(workspace, [row["text"] for row in rows])
    return {"data_path": "reviews.jsonl", "tokenizer_config": {"path": tokenizer}, "max_length": 6}


def case_config(name: str, workspace: Path) -> tuple[str, str, dict]:
    """(script, class, eval_config) that trains on ``name`` with files written here."""
    models = write_models(workspace)
    base = {"dataset": name, "epochs": 1, "batch_size": 4, "max_steps": 3, "device": "cpu",
            "metrics": ["accuracy", "f1"]}
    if name == "mnist":
        write_mnist(workspace / "data")
        return models, "SmallCNN", base
    if name == "cifar10":
        write_cifar10(workspace / "data")
        return models, "SmallCNN", {**base, "model_params": {"channels": 3}}
    if name == "digits":
        return models, "SmallCNN", base
    if name == "dummy":
        return models, "SmallCNN", {**base, "input_shape": [1, 3, 16, 16], "num_classes": 4,
                                    "model_params": {"num_classes": 4, "channels": 3}}
    if name in ("imagefolder", "imagenet_subset"):
        write_image_folder(workspace / "images")
        return models, "SmallCNN", {**base, "dataset_params": {"data_path": "images"}, "num_classes": 2,
                                    "model_params": {"num_classes": 2, "channels": 3}}
    if name == "custom_dataset_script":
        (workspace / "blobs.py").write_text(CUSTOM_DATASET_SCRIPT, encoding="utf-8")
        (workspace / "blob_model.py").write_text(BLOB_MODEL, encoding="utf-8")
        return "blob_model.py", "BlobNet", {**base, "dataset_params": {"script_path": "blobs.py", "size": 64}}
    if name == "text_classification":
        return models, "TokenClassifier", {**base, "dataset_params": write_text_dataset(workspace),
                                           "model_params": {"vocab_size": 64}}
    if name == "diabetes":  # regression: float targets, errors and R^2 instead of accuracy
        return models, "TabularMLP", {**base, "metrics": ["r2", "rmse"], "loss_function": "MSELoss"}
    if name == "breast_cancer":
        return models, "TabularMLP", {**base, "model_params": {"in_features": 30, "outputs": 2}}
    if name == "signals_synthetic":
        return models, "SignalCNN", {**base, "dataset_params": {"num_samples": 200}}
    raise AssertionError(f"no test case for the registered dataset {name!r}: add one to case_config")


@pytest.mark.parametrize("name", dataset_names())
def test_every_registered_dataset_trains_through_the_quick_evaluator(name, workspace, cifar_without_checksums):
    script, class_name, config = case_config(name, workspace)
    result = pytorch_quick_evaluator(script, class_name, config)
    assert result["status"] == "completed", result.get("error")
    assert result["dataset"]["name"] == name
    assert len(result["history"]) == 1 and result["history"][0]["steps"] == 3
    if name == "diabetes":
        assert result["metrics"]["r2"] <= 1.0 and result["metrics"]["rmse"] > 0.0
    else:
        assert 0.0 <= result["metrics"]["accuracy"] <= 1.0 and 0.0 <= result["metrics"]["f1"] <= 1.0
    expected_path = "dataloader" if name == "custom_dataset_script" else "preloaded"
    assert result["data_path"] == expected_path


def test_mnist_reads_idx_files_through_torchvision_and_normalises(workspace):
    raw = write_mnist(workspace / "data", train_size=64, test_size=32)
    splits = build_datasets(request("mnist", workspace / "data"))
    assert isinstance(splits.train, TensorSplit)
    assert splits.train.inputs.shape == (64, 1, 28, 28) and splits.val.inputs.shape == (32, 1, 28, 28)
    header = 16  # magic + 3 sizes
    pixels = np.frombuffer((raw / "train-images-idx3-ubyte").read_bytes()[header:], dtype=np.uint8)
    labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8)
    mnist = DATASET_STATISTICS["mnist"]
    expected = (torch.from_numpy(pixels.reshape(64, 28, 28).astype(np.float32)) / 255 - mnist.mean[0]) / mnist.std[0]
    torch.testing.assert_close(splits.train.inputs[:, 0], expected)
    assert splits.train.targets.tolist() == labels.tolist()
    assert splits.num_classes == 10 and splits.info["val_split"] == "test"


def test_cifar10_parses_real_pickle_batches_into_normalised_chw_tensors(workspace, cifar_without_checksums):
    import pickle

    folder = write_cifar10(workspace / "data", per_batch=20)
    splits = build_datasets(request("cifar10", workspace / "data"))
    assert splits.train.inputs.shape == (100, 3, 32, 32) and splits.val.inputs.shape == (20, 3, 32, 32)
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    image = torch.from_numpy(first["data"][0].reshape(3, 32, 32).astype(np.float32)) / 255  # rows are CHW
    cifar10 = DATASET_STATISTICS["cifar10"]
    expected = (image - torch.tensor(cifar10.mean).view(3, 1, 1)) / torch.tensor(cifar10.std).view(3, 1, 1)
    torch.testing.assert_close(splits.train.inputs[0], expected)
    assert splits.train.targets[:20].tolist() == first["labels"]


def test_missing_mnist_offline_names_the_folder_and_the_files(workspace):
    with pytest.raises(ToolError) as caught:
        build_datasets(request("mnist", workspace / "nowhere"))
    message = str(caught.value)
    assert str(workspace / "nowhere" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "could not be downloaded" in message


def test_dummy_data_is_seeded_and_drops_the_batch_dimension(workspace):
    shaped = {"input_shape": [3, 8, 8], "num_classes": 5, "params": {"num_samples": 40}}
    first = build_datasets(request("dummy", workspace, **shaped))
    again = build_datasets(request("dummy", workspace, **shaped))
    other = build_datasets(request("dummy", workspace, **{**shaped, "seed": 1}))
    assert first.train.inputs.shape == (40, 3, 8, 8) and len(first.val) == 4
    assert torch.equal(first.train.inputs, again.train.inputs)
    assert not torch.equal(first.train.inputs, other.train.inputs)
    assert int(first.train.targets.max()) < 5
    with pytest.raises(ToolError, match="input_shape"):
        build_datasets(request("dummy", workspace, num_classes=5))


def test_digits_holdout_is_stratified_and_seeded(workspace):
    splits = build_datasets(request("digits", workspace, val_fraction=0.2))
    assert len(splits.train) + len(splits.val) == 1797
    assert sorted(set(splits.val.targets.tolist())) == list(range(10))
    again = build_datasets(request("digits", workspace, val_fraction=0.2))
    assert torch.equal(splits.val.targets, again.val.targets)


def test_imagefolder_uses_val_folder_or_a_holdout(workspace):
    write_image_folder(workspace / "with_val")
    with_val = build_datasets(request("imagefolder", workspace, params={"data_path": "with_val", "image_size": 8}))
    assert with_val.info["classes"] == ["bright", "dark"] and with_val.info["val_split"] == "folder"
    assert len(with_val.train) == 12 and len(with_val.val) == 12 and with_val.test is None
    image, label = with_val.train[0]
    assert image.shape == (3, 8, 8) and label == 0
    write_image_folder(workspace / "flat" / "train", splits=("all",))
    flat = build_datasets(request("imagefolder", workspace, params={"data_path": "flat/train/all"}))
    assert flat.info["val_split"] == "holdout" and len(flat.train) + len(flat.val) == 12


def test_imagefolder_can_stream_instead_of_preloading(workspace):
    write_models(workspace)
    write_image_folder(workspace / "images")
    config = {"dataset": "imagefolder", "dataset_params": {"data_path": "images"}, "num_classes": 2, "epochs": 2,
              "batch_size": 4, "device": "cpu", "preload": False, "model_params": {"num_classes": 2, "channels": 3}}
    result = pytorch_quick_evaluator("models.py", "SmallCNN", config)
    assert result["status"] == "completed" and result["data_path"] == "dataloader"
    assert result["metrics"]["accuracy"] >= 0.5


def test_custom_dataset_script_errors(workspace):
    (workspace / "blob_model.py").write_text(BLOB_MODEL, encoding="utf-8")
    (workspace / "broken.py").write_text("def get_datasets(params):\n    raise KeyError('size')\n", encoding="utf-8")
    config = {"dataset": "custom_dataset_script", "dataset_params": {"script_path": "broken.py"}, "device": "cpu"}
    result = pytorch_quick_evaluator("blob_model.py", "BlobNet", config)
    assert result["status"] == "failed" and "get_datasets" in result["error"]
    assert "KeyError" in result["traceback"]
    (workspace / "empty.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(ToolError, match="must define get_datasets"):
        pytorch_quick_evaluator("blob_model.py", "BlobNet", {**config, "dataset_params": {"script_path": "empty.py"}})


def test_text_classification_encodes_pads_and_maps_labels(workspace):
    params = write_text_dataset(workspace)
    splits = build_datasets(request("text_classification", workspace, params=params))
    inputs = torch.cat([splits.train.inputs, splits.val.inputs])
    assert inputs.dtype == torch.long and inputs.shape == (40, 6)
    assert splits.info["label_names"] == ["neg", "pos"] and splits.num_classes == 2
    short = build_datasets(request("text_classification", workspace, params={**params, "max_length": 12}))
    assert (short.train.inputs == 0).any(), "rows shorter than max_length are padded with [PAD] (id 0)"


def test_text_classification_with_a_tokenizer_registered_by_the_tokenizer_manager(workspace):
    from torchscout.tools.text.tokenizer_manager import pytorch_tokenizer_manager

    params = write_text_dataset(workspace)
    (workspace / "corpus.txt").write_text("good great fine bad awful poor item\n" * 50, encoding="utf-8")
    pytorch_tokenizer_manager("train", "reviews_wp", config={"type": "WordPiece", "vocab_size": 60,
                                                             "data_files": ["corpus.txt"]})
    params["tokenizer_config"] = {"name": "reviews_wp", "type": "registered"}  # the PRD's form
    write_models(workspace)
    result = pytorch_quick_evaluator("models.py", "TokenClassifier", {
        "dataset": "text_classification", "dataset_params": params, "epochs": 3, "batch_size": 8,
        "learning_rate": 0.05, "device": "cpu", "model_params": {"vocab_size": 60}})
    assert result["status"] == "completed", result.get("error")
    assert result["dataset"]["vocab_size"] <= 60 and result["metrics"]["accuracy"] >= 0.75


def test_unknown_dataset_lists_the_known_ones(workspace):
    with pytest.raises(ToolError) as caught:
        build_datasets(request("mnsit", workspace))
    assert "did you mean mnist" in str(caught.value) and "cifar10" in str(caught.value)

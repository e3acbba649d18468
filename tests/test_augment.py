"""Augmentation in the training engine: seeded random crops (shifts) and flips on device tensors."""

from __future__ import annotations

import pytest
import torch

from tests.training_helpers import one_thread, write_models  # noqa: F401 - fixture
from torchscout.tools.errors import ToolError
from torchscout.tools.training.augment import BatchAugmenter
from torchscout.tools.training.config import AugmentConfig
from torchscout.tools.training.evaluation import pytorch_quick_evaluator


def _shifted_copy(image: torch.Tensor, original: torch.Tensor, pad: int) -> bool:
    """Whether ``image`` is ``original`` translated by at most ``pad`` along each spatial axis (zeros enter)."""
    padded = torch.nn.functional.pad(original, [pad, pad] * (original.dim() - 1))
    size = original.shape[1:]
    offsets = [range(2 * pad + 1)] * len(size)
    if len(size) == 1:
        return any(torch.equal(padded[:, dx:dx + size[0]], image) for dx in offsets[0])
    return any(torch.equal(padded[:, dy:dy + size[0], dx:dx + size[1]], image)
               for dy in offsets[0] for dx in offsets[1])


def test_a_random_crop_translates_each_sample_by_its_own_offset_and_is_seeded_by_epoch():
    images = torch.randn(16, 3, 8, 8)
    augmenter = BatchAugmenter(AugmentConfig(random_crop=2), seed=5)
    augmenter.check(images)
    shifted = augmenter.for_epoch(1)(images)
    assert all(_shifted_copy(shifted[i], images[i], 2) for i in range(16))
    assert not torch.equal(shifted, images)
    assert torch.equal(shifted, BatchAugmenter(AugmentConfig(random_crop=2), seed=5).for_epoch(1)(images))
    assert not torch.equal(shifted, augmenter.for_epoch(2)(images))  # another epoch, other offsets
    signals = torch.randn(16, 2, 30)
    moved = BatchAugmenter(AugmentConfig(random_crop=3), seed=0).for_epoch(1)(signals)
    assert all(_shifted_copy(moved[i], signals[i], 3) for i in range(16))


def test_flips_mirror_a_random_part_of_the_batch():
    images = torch.randn(64, 1, 4, 4)
    flipped = BatchAugmenter(AugmentConfig(horizontal_flip=True), seed=0).for_epoch(1)(images)
    mirrored = [torch.equal(flipped[i], images[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(flipped[i], images[i]) for i in range(64)]
    assert all(a or b for a, b in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54


@pytest.mark.parametrize(("config", "inputs", "message"), [
    (AugmentConfig(random_crop=1), torch.randn(4, 10), "images \\[C, H, W\\] or signals \\[C, L\\]"),
    (AugmentConfig(random_crop=1), torch.zeros(4, 10, dtype=torch.long), "remove augment"),
    (AugmentConfig(horizontal_flip=True), torch.randn(4, 1, 20), "images \\[C, H, W\\] only"),
    (AugmentConfig(random_crop=8), torch.randn(4, 1, 8, 8), "must be smaller"),
])
def test_augmentation_that_does_not_fit_the_inputs_is_refused(config, inputs, message):
    with pytest.raises(ToolError, match=message):
        BatchAugmenter(config, seed=0).check(inputs)


def test_the_quick_evaluator_trains_with_augmentation_and_leaves_validation_alone(workspace, one_thread):  # noqa: F811
    models = write_models(workspace)
    config = {"dataset": "digits", "epochs": 1, "batch_size": 32, "max_steps": 4, "device": "cpu", "seed": 3}
    plain = pytorch_quick_evaluator(models, "SmallCNN", config)
    augmented = pytorch_quick_evaluator(models, "SmallCNN", {**config, "augment": {"random_crop": 1,
                                                                                   "horizontal_flip": True}})
    again = pytorch_quick_evaluator(models, "SmallCNN", {**config, "augment": {"random_crop": 1,
                                                                               "horizontal_flip": True}})
    assert plain["status"] == augmented["status"] == "completed"
    assert augmented["train_loss"] != plain["train_loss"]  # the model saw other pixels
    assert augmented["train_loss"] == again["train_loss"] and augmented["val_loss"] == again["val_loss"]
    with pytest.raises(ToolError, match="remove augment"):  # a configuration error: refused before training
        pytorch_quick_evaluator(models, "SmallCNN", {**config, "dataset": "dummy", "input_shape": [20],
                                                     "num_classes": 3, "augment": {"random_crop": 1}})

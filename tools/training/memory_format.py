"""The memory format a run trains in: ``channels_last`` for image convolutions, where it pays.

With channels as the innermost dimension (NHWC), oneDNN on CPU and cuDNN on CUDA run 2D
convolutions with faster kernels. Converting the model is enough: a convolution whose weight is
channels_last computes in that format and its 4D output keeps it, so the following layers follow.
Measured on the project's 2-core CPU (``evals/bench_training.py`` prints it for your machine): a
training step 2-50% faster for the digits search's conv candidates with one thread, 18-23% for a
small MNIST CNN, neutral on PyTorch's MNIST example ``Net``.

It changes no result beyond float rounding (the same sums in another order), and a run is as
reproducible in it as in the default format. One thing breaks: ``.view`` on a conv output ("view
size is not compatible with input tensor's size and stride"), which some hand-written models use
where ``flatten``/``reshape`` would do. So by default (``channels_last: null``) a model is
probed with one forward pass first and keeps the default format when it cannot run in
channels_last; ``channels_last: true`` insists and reports that failure as something to fix.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from torchscout.tools.errors import ToolError
from torchscout.tools.training.checks import untouched

logger = logging.getLogger(__name__)

CHANNELS_LAST = "channels_last"
CONTIGUOUS = "contiguous"
# MPS runs channels_last through conversions more often than not: only where it was measured or documented
_DEVICES = {"cpu", "cuda"}


def _pays(model: nn.Module, sample: torch.Tensor, device: torch.device) -> bool:
    """Image batches into a model with 2D convolutions, on a device whose kernels use the format."""
    return (device.type in _DEVICES and sample.dim() == 4 and sample.is_floating_point()
            and any(isinstance(module, nn.Conv2d) for module in model.modules()))


def _forward_fails(model: nn.Module, sample: torch.Tensor, device: torch.device) -> str | None:
    """The error of one forward pass on two samples in eval mode, or None; the model is left as it was."""
    was_training = model.training
    try:
        with untouched(model, device), torch.no_grad():
            model.eval()
            model(sample[:2])
    except Exception as exc:  # noqa: BLE001 - any failure: the run goes on in the default format
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    finally:
        model.train(was_training)
    return None


def apply_memory_format(model: nn.Module, sample: torch.Tensor, setting: bool | None, device: torch.device) -> str:
    """Put ``model`` (already on ``device``) in the format ``setting`` asks for; returns which it got.

    ``setting``: True converts (and raises ToolError if the model cannot run that way), False keeps
    the default, None converts when it pays and the model runs in it. ``sample``: a training batch.
    """
    if setting is False or (setting is None and not _pays(model, sample, device)):
        return CONTIGUOUS
    if sample.dim() != 4:
        raise ToolError(f"channels_last: true needs image batches [N, C, H, W]; this data gives {list(sample.shape)}:"
                        " set channels_last: false (or leave it unset)")
    model.to(memory_format=torch.channels_last)
    problem = _forward_fails(model, sample, device)
    if problem is None:
        return CHANNELS_LAST
    model.to(memory_format=torch.contiguous_format)
    if _forward_fails(model, sample, device) is not None:
        # broken in either format: not the format's fault; the sanity check or training says what is wrong
        if setting:
            model.to(memory_format=torch.channels_last)
            return CHANNELS_LAST
        return CONTIGUOUS
    if setting:
        raise ToolError(f"channels_last: true, but the model's forward fails in that memory format ({problem}); "
                        "use .reshape or torch.flatten instead of .view on conv outputs, or set channels_last: false")
    logger.info("training in the default memory format: the model cannot run in channels_last (%s)", problem)
    return CONTIGUOUS

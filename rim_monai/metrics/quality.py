r"""Image quality of reconstructions in one call: PSNR, SSIM and NMSE of magnitude images under one protocol.

Every place in rim_monai that scores a reconstruction — the adaptation report, the bundles' validation metric and
evaluation handler, the experiments — goes through :func:`image_quality`, so the same images give the same numbers
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rim_monai.metrics.nmse import nmse
from rim_monai.metrics.psnr import psnr
from rim_monai.metrics.ssim import ssim

__all__ = ["QUALITY_METRICS", "magnitude", "image_quality"]

#: The metrics :func:`image_quality` computes, by name.
QUALITY_METRICS = ("psnr", "ssim", "nmse")


def magnitude(image: torch.Tensor) -> torch.Tensor:
    """``|image|`` for complex images (MRI), the image itself otherwise; detached, MONAI metadata dropped.

    Example:
        >>> magnitude(torch.tensor([3 + 4j]))
        tensor([5.])
    """
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image: expected a torch.Tensor, got {type(image).__name__}.")
    image = image.as_tensor() if hasattr(image, "as_tensor") else image
    image = image.detach()
    return image.abs() if image.is_complex() else image


def image_quality(
    pred: torch.Tensor,
    target: torch.Tensor,
    protocol: str = "per_image",
    metrics: Sequence[str] = QUALITY_METRICS,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    r"""PSNR, SSIM and/or NMSE of the magnitudes of ``pred`` against those of ``target``.

    Complex images are compared by magnitude, :math:`|\hat x|` against :math:`|x|` (the fastMRI protocol); then
    :func:`~rim_monai.metrics.psnr` and :func:`~rim_monai.metrics.ssim` with the data range of ``protocol`` and
    :func:`~rim_monai.metrics.nmse` (which has no data range) are computed in float64 on the tensors' device.

    Args:
        pred: reconstructions ``(B, ..., H, W)`` (real or complex; a MONAI ``MetaTensor`` is fine).
        target: references, same shape.
        protocol: ``"per_image"`` (max − min of each reference, CT), ``"volume"`` (max of each reference volume,
            fastMRI) or ``"8bit"`` (255).
        metrics: which of :data:`QUALITY_METRICS` to compute, in this order.
        reduction: ``"mean"`` over samples (0-dim tensors) or ``"none"`` (``(B,)`` tensors).

    Returns:
        ``{name: float64 tensor}`` for each of ``metrics``.

    Raises:
        ValueError: naming ``metrics`` for an unknown name, or the argument the metric functions name (shapes,
            ``protocol``, a reference without a data range, images smaller than the SSIM window).

    Example:
        >>> ref = torch.rand(2, 1, 16, 16)
        >>> values = image_quality(ref + 0.01, ref, metrics=("psnr", "nmse"))
        >>> sorted(values), bool(values["psnr"] > 30)
        (['nmse', 'psnr'], True)
    """
    unknown = [name for name in metrics if name not in QUALITY_METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics: expected names from {QUALITY_METRICS}, got {list(metrics)!r}.")
    pred, target = magnitude(pred), magnitude(target)
    values = {}
    for name in metrics:
        if name == "nmse":
            values[name] = nmse(pred, target, reduction=reduction)
        else:
            values[name] = (psnr if name == "psnr" else ssim)(pred, target, protocol=protocol, reduction=reduction)
    return values

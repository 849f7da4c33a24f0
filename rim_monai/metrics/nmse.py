"""Normalised mean squared error (fastMRI protocol)."""

from __future__ import annotations

import torch

from rim_monai.metrics.utils import check_pair, reduce

__all__ = ["nmse"]


def nmse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Normalised mean squared error per sample, :math:`\mathrm{NMSE} = \|x - \hat x\|_2^2 / \|x\|_2^2`.

    The norms run over everything but dimension 0, so a ``(B, H, W)`` or ``(B, C, H, W)`` batch gives one value per
    image and a ``(V, S, H, W)`` stack of volumes one value per volume (the fastMRI protocol). Complex inputs use the
    complex modulus, :math:`\sum |x - \hat x|^2 / \sum |x|^2`, which also penalises phase errors; the fastMRI
    figures are for magnitude images, ``nmse(pred.abs(), target.abs())``.

    Args:
        pred: the estimate :math:`\hat x`, ``(B, ...)`` (or one ``(H, W)`` image), real or complex.
        target: the reference :math:`x`, same shape.
        reduction: ``"mean"`` over samples (0-dim tensor) or ``"none"`` (shape ``(B,)``).

    Returns:
        float64 tensor.

    Raises:
        ValueError: naming ``pred``/``target`` (shape mismatch, NaN, ...), ``target`` (a zero reference sample) or
            ``reduction``.

    Example:
        >>> x = torch.ones(2, 4, 4)
        >>> nmse(0.9 * x, x)  # ||0.1 x||^2 / ||x||^2
        tensor(0.0100, dtype=torch.float64)
    """
    pred, target = check_pair(pred, target, allow_complex=True)
    batch = target.shape[0]
    err = (pred - target).abs().reshape(batch, -1).pow(2).sum(dim=1)
    ref = target.abs().reshape(batch, -1).pow(2).sum(dim=1)
    if bool((ref == 0).any()):
        raise ValueError("target: a reference sample is all zeros, so NMSE is undefined.")
    return reduce(err / ref, reduction)

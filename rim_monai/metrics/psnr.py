"""Peak signal-to-noise ratio with stated data-range protocols (CT, fastMRI, 8-bit)."""

from __future__ import annotations

import torch

from rim_monai.metrics.utils import check_pair, data_range_for, reduce, shave_border

__all__ = ["psnr"]


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float | torch.Tensor | None = None,
         protocol: str = "per_image", shave: int = 0, reduction: str = "mean") -> torch.Tensor:
    r"""Peak signal-to-noise ratio per sample, :math:`\mathrm{PSNR} = 10 \log_{10}\big(R^2 / \mathrm{MSE}\big)` dB.

    :math:`\mathrm{MSE}` is the mean of :math:`(x - \hat x)^2` over everything but dimension 0 (after cropping
    ``shave`` border pixels from the last two axes), and the data range :math:`R` follows ``protocol``:

    - ``"per_image"``: :math:`R = \max x - \min x` of each reference sample (the CT protocol of the GUIDE);
    - ``"volume"``: :math:`R = \max x` of each reference volume, the MSE over the whole volume — fastMRI's
      ``psnr(gt, pred, maxval=gt.max())`` with samples ``(V, S, H, W)`` (one volume per index of dimension 0);
    - ``"8bit"``: :math:`R = 255` for images on [0, 255] (natural images; for SR pass ``rgb_to_y`` images and
      ``shave=scale``). The images are not rounded: quantise them yourself if the protocol you follow does.

    ``data_range`` (a number or a ``(B,)`` tensor) overrides the protocol's :math:`R`. A perfect estimate gives
    ``inf``.

    Args:
        pred: the estimate, real ``(B, ...)`` with the image in the last two axes (or one ``(H, W)`` image).
        target: the reference, same shape.
        data_range: explicit :math:`R`.
        protocol: ``"per_image"``, ``"volume"`` or ``"8bit"``.
        shave: border pixels cropped from each side of the last two axes before scoring.
        reduction: ``"mean"`` over samples (0-dim tensor) or ``"none"`` (shape ``(B,)``).

    Returns:
        float64 tensor of PSNR values in dB.

    Raises:
        ValueError: naming ``pred``/``target`` (shape mismatch, complex, NaN), ``protocol``, ``data_range``,
            ``shave`` or ``reduction``.

    Example:
        >>> target = torch.zeros(1, 8, 8); target[0, 0, 0] = 1.0  # data range 1
        >>> round(float(psnr(target + 0.1, target)), 4)  # MSE 0.01 -> 20 dB
        20.0
    """
    pred, target = check_pair(pred, target)
    pred, target = shave_border(pred, shave), shave_border(target, shave)
    r = data_range_for(target, protocol, data_range)
    mse = (pred - target).pow(2).reshape(target.shape[0], -1).mean(dim=1)
    return reduce(10 * torch.log10(r**2 / mse), reduction)

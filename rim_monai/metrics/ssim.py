"""Structural similarity with scikit-image / fastMRI semantics (uniform window, sample covariance), batched in torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rim_monai.metrics.utils import check_pair, data_range_for, reduce, shave_border

__all__ = ["ssim", "ssim_map"]


def ssim_map(
    pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor, win_size: int = 7, k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    r"""The SSIM map of 2D images on the "valid" region, where the window lies inside the image.

    With local means :math:`\mu` and sample (co)variances :math:`\sigma` over a uniform ``win_size`` x ``win_size``
    window of :math:`N = w^2` pixels (covariances scaled by :math:`N/(N-1)`),

    .. math::
        S = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}{(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},
        \qquad C_1 = (k_1 R)^2,\ C_2 = (k_2 R)^2.

    Args:
        pred, target: real ``(N, H, W)``.
        data_range: :math:`R` per image, shape ``(N,)``.
        win_size: odd window width.
        k1, k2: stability constants.

    Returns:
        ``(N, H - w + 1, W - w + 1)``.
    """
    x, y = pred[:, None], target[:, None]
    mean = lambda t: F.avg_pool2d(t, win_size, stride=1)  # noqa: E731  (uniform window, valid region)
    ux, uy = mean(x), mean(y)
    n = win_size * win_size
    cov_norm = n / (n - 1)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    r = data_range.reshape(-1, 1, 1, 1)
    c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s[:, 0]


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float | torch.Tensor | None = None,
    protocol: str = "per_image",
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
    shave: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Mean structural similarity per sample, as fastMRI computes it with scikit-image's ``structural_similarity``.

    Every 2D image in the last two axes is scored with :func:`ssim_map` (uniform 7 x 7 window, sample covariance,
    :math:`k_1 = 0.01`, :math:`k_2 = 0.03`), averaged over the region where the window fits, then averaged over the
    other non-batch axes — channels of a ``(B, C, H, W)`` batch (skimage's ``channel_axis``) or the slices of a
    ``(V, S, H, W)`` volume (fastMRI: mean over slices, :math:`R` = the volume maximum). :math:`R` follows
    ``protocol`` exactly as in :func:`~rim_monai.metrics.psnr` (``"per_image"``: max − min of each reference
    sample; ``"volume"``: max of each reference volume; ``"8bit"``: 255), unless ``data_range`` is given.
    Computed in float64; matches ``skimage.metrics.structural_similarity(gt, pred, data_range=R)`` to
    ~1e-12.

    Args:
        pred: the estimate, real ``(B, ..., H, W)`` (or one ``(H, W)`` image).
        target: the reference, same shape.
        data_range: explicit :math:`R` (a number or a ``(B,)`` tensor).
        protocol: ``"per_image"``, ``"volume"`` or ``"8bit"``.
        win_size: odd window width (>= 3), at most the image size.
        k1, k2: stability constants (> 0).
        shave: border pixels cropped from each side of the last two axes before scoring.
        reduction: ``"mean"`` over samples (0-dim tensor) or ``"none"`` (shape ``(B,)``).

    Returns:
        float64 tensor.

    Raises:
        ValueError: naming ``pred``/``target``, ``protocol``, ``data_range``, ``win_size``, ``k1``/``k2``, ``shave``
            or ``reduction`` when invalid.

    Example:
        >>> x = torch.rand(2, 1, 32, 32)
        >>> float(ssim(x, x))
        1.0
    """
    pred, target = check_pair(pred, target)
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size: expected an odd integer >= 3, got {win_size!r}.")
    for name, k in (("k1", k1), ("k2", k2)):
        if not isinstance(k, (int, float)) or isinstance(k, bool) or not k > 0:
            raise ValueError(f"{name}: expected a positive number, got {k!r}.")
    pred, target = shave_border(pred, shave), shave_border(target, shave)
    if win_size > min(target.shape[-2:]):
        raise ValueError(
            f"win_size: {win_size} exceeds the image size {tuple(target.shape[-2:])} of pred and target."
        )
    r = data_range_for(target, protocol, data_range)
    batch, (h, w) = target.shape[0], target.shape[-2:]
    slices = target[0].numel() // (h * w)
    maps = ssim_map(
        pred.reshape(-1, h, w), target.reshape(-1, h, w), r.repeat_interleave(slices), win_size, float(k1), float(k2)
    )
    per_slice = maps.reshape(batch * slices, -1).mean(dim=1)
    return reduce(per_slice.reshape(batch, slices).mean(dim=1), reduction)

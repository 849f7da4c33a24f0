"""The multi-step loss of the RIM paper (Putzky & Welling 2017, Eq. 13), usable as a MONAI ``loss_function``, and the
per-item log-MSE base loss that matches the per-file mean PSNR of the evaluations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.losses import SSIMLoss

__all__ = ["LogMSELoss", "MultiStepLoss"]

_BASES = ("mse", "l1", "ssim", "log_mse")


class LogMSELoss(nn.Module):
    r"""Per-item log mean squared error, reduced over the batch:

    .. math::
        \mathcal{L}(\hat x, x) = \frac{1}{B} \sum_{b=1}^{B} 10 \log_{10}\Big(\frac{1}{N} \sum_{i=1}^{N}
        (\hat x_{b,i} - x_{b,i})^2 + \epsilon\Big),

    over the :math:`N` values of item :math:`b` (all dimensions but the first). For a unit peak this is minus the mean
    PSNR of the items, the figure the evaluations report (fastMRI protocol: PSNR per file, then the mean). Against
    the MSE of the whole batch, its gradient weighs item :math:`b` by :math:`1/\mathrm{MSE}_b`: an item the network
    already reconstructs well (a smooth, noise-free or well-sampled one) counts as much per decibel as a hard one.

    Args:
        eps: floor under each item's MSE, so a perfect estimate gives a finite loss.
        reduction: ``"mean"`` or ``"sum"`` over the items.

    Raises:
        ValueError: ``eps`` not positive or an unknown ``reduction``; (when called) estimate and target shapes differ.

    Example:
        >>> x = torch.zeros(2, 1, 4, 4)
        >>> round(float(LogMSELoss()(x + 0.1, x)), 3)  # MSE 0.01 for both items
        -20.0
    """

    def __init__(self, eps: float = 1e-10, reduction: str = "mean") -> None:
        super().__init__()
        if not float(eps) > 0:
            raise ValueError(f"eps: expected a positive floor, got {eps}.")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}.")
        self.eps, self.reduction = float(eps), reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        """The loss of estimates ``input`` against ``target``, both ``(B, ...)`` and real."""
        if input.shape != target.shape:
            raise ValueError(f"input: shape {tuple(input.shape)}, the target {tuple(target.shape)}.")
        per_item = (input - target).pow(2).flatten(1).mean(dim=1)
        log_mse = 10.0 * torch.log10(per_item + self.eps)
        return log_mse.mean() if self.reduction == "mean" else log_mse.sum()


class MultiStepLoss(nn.Module):
    r"""Weighted sum of a base loss over the estimates of an iterative network (Eq. 13):

    .. math::
        \mathcal{L}^{\mathrm{total}} = \sum_{t=1}^{T} w_t \, \mathcal{L}(x_t, x), \qquad w_t = 1 \text{ by default.}

    ``input`` is the list returned by ``net(y, A, return_all=True)`` or a single tensor (then :math:`T = 1`), so
    the loss serves as the ``loss_function`` of a MONAI ``SupervisedTrainer`` whose network returns the list.
    Complex estimates (MRI) are compared as real/imaginary channels for ``"mse"``, ``"l1"`` and ``"log_mse"``
    (:class:`LogMSELoss`: minus the items' mean PSNR for a unit peak), and as magnitudes
    for ``"ssim"`` (MONAI :class:`~monai.losses.SSIMLoss`, 2D, so images are ``(B, C, H, W)``).

    Args:
        base: ``"mse"``, ``"l1"``, ``"ssim"``, ``"log_mse"`` or a loss module called as ``base(x_t, x)``.
        weights: :math:`w_t`, one per step; ``None`` gives 1 for every step.
        data_range: the data range of the SSIM base loss.
        reduction: ``"mean"`` or ``"sum"`` reduction of the built-in ``mse``/``l1``/``log_mse`` losses.

    Raises:
        ValueError: unknown ``base``, negative ``weights``, or (when called) a number of estimates other than the
            number of weights, or estimates whose shape differs from the target.

    Example:
        >>> loss = MultiStepLoss("mse")
        >>> x = torch.zeros(1, 1, 4, 4)
        >>> float(loss([x + 1, x + 2], x))
        5.0
    """

    def __init__(
        self,
        base: str | nn.Module = "mse",
        weights: Sequence[float] | None = None,
        data_range: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}.")
        self.reduction = reduction
        if isinstance(base, str):
            if base not in _BASES:
                raise ValueError(f"base: expected one of {_BASES} or a loss module, got {base!r}.")
            if base == "mse":
                self.base: nn.Module = nn.MSELoss(reduction=reduction)
            elif base == "l1":
                self.base = nn.L1Loss(reduction=reduction)
            elif base == "log_mse":
                self.base = LogMSELoss(reduction=reduction)
            else:
                self.base = SSIMLoss(spatial_dims=2, data_range=data_range)
            self.base_name = base
        elif isinstance(base, nn.Module) or callable(base):
            self.base, self.base_name = base, type(base).__name__
        else:
            raise ValueError(f"base: expected one of {_BASES} or a loss module, got {type(base).__name__}.")
        if weights is not None:
            weights = [float(w) for w in weights]
            if not weights or any(w < 0 for w in weights):
                raise ValueError(f"weights: expected a non-empty list of non-negative weights, got {weights}.")
        self.weights = weights

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_complex():
            return x
        if self.base_name == "ssim":
            return x.abs()
        return torch.view_as_real(x)

    def forward(self, input: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        """Sum of the weighted per-step losses of ``input`` (list of ``(B, C, H, W)`` or one tensor) against ``target``."""
        estimates = [input] if isinstance(input, torch.Tensor) else list(input)
        if not estimates:
            raise ValueError("input: expected at least one estimate, got an empty list.")
        weights = self.weights if self.weights is not None else [1.0] * len(estimates)
        if len(weights) != len(estimates):
            raise ValueError(f"weights: {len(weights)} weights given for {len(estimates)} estimates.")
        target_ = self._prepare(target)
        total = None
        for t, (w, x) in enumerate(zip(weights, estimates)):
            if x.shape != target.shape:
                raise ValueError(f"input: estimate {t} has shape {tuple(x.shape)}, the target {tuple(target.shape)}.")
            term = w * self.base(self._prepare(x), target_)
            total = term if total is None else total + term
        return total

"""Scale equivariance for any reconstruction network: normalise the measurements, undo it on the output."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn as nn

from rim_monai.networks.utils import step_scale
from rim_monai.operators.base import LinearOperator, check_tensor

__all__ = ["ScaleEquivariant", "STATISTICS", "scale_statistic"]

STATISTICS = ("rms", "p99", "max")


def scale_statistic(image: torch.Tensor, statistic: str | Callable[[torch.Tensor], torch.Tensor] = "p99") -> torch.Tensor:
    """Per-sample scale of ``|image|``: ``(B, ...) -> (B,)``, positively homogeneous (``s(c x) = c s(x)``, ``c > 0``).

    Args:
        image: a batch of images (real or complex).
        statistic: ``"rms"`` (root mean square), ``"p99"`` (99th percentile), ``"max"``, or a callable mapping
            ``(B, N)`` magnitudes to ``(B,)`` (it must be positively homogeneous for equivariance to hold).

    Raises:
        ValueError: unknown ``statistic``.
    """
    mag = image.abs().reshape(image.shape[0], -1)
    if callable(statistic):
        return statistic(mag)
    if statistic == "rms":
        return mag.square().mean(dim=1).sqrt()
    if statistic == "p99":
        return torch.quantile(mag, 0.99, dim=1)
    if statistic == "max":
        return mag.amax(dim=1)
    raise ValueError(f"statistic: expected one of {STATISTICS} or a callable, got {statistic!r}.")


class ScaleEquivariant(nn.Module):
    r"""Make a network scale-equivariant: :math:`\mathrm{net}(c\,y, A) = c\,\mathrm{net}(y, A)` for every :math:`c > 0`.

    .. math::
        s = \mathrm{stat}\big(|A^H y| / \|A\|^2\big), \qquad \hat x = s \cdot \mathrm{net}(y / s, A, \sigma / s)

    per sample (:math:`s = 1` where the statistic is zero or not finite, so all-zero measurements pass). Since the
    statistic is positively homogeneous, :math:`s(c y) = c\,s(y)` and the inner network always sees data of the
    same scale, so users need not know the intensity range used in training. Dividing by :math:`\|A\|^2` puts
    :math:`s` on the image scale for CT too (1 for denoising and MRI).

    Args:
        net: any network called as ``net(y, A, **kwargs)`` returning a tensor or a list of tensors.
        statistic: see :func:`scale_statistic` (default the 99th percentile).
        eps: scales at or below this are replaced by 1.

    Example:
        >>> from rim_monai.networks import RIM
        >>> from rim_monai.operators import Identity
        >>> net = ScaleEquivariant(RIM(features=(4, 4), iterations=2)).eval()
        >>> y, A = torch.rand(1, 1, 8, 8), Identity((8, 8))
        >>> torch.allclose(net(1e3 * y, A), 1e3 * net(y, A), rtol=1e-4, atol=1e-5)
        True
    """

    def __init__(
        self, net: nn.Module, statistic: str | Callable[[torch.Tensor], torch.Tensor] = "p99", eps: float = 1e-12
    ) -> None:
        super().__init__()
        if not callable(statistic) and statistic not in STATISTICS:
            raise ValueError(f"statistic: expected one of {STATISTICS} or a callable, got {statistic!r}.")
        self.net, self.statistic, self.eps = net, statistic, float(eps)
        self._takes_sigma = "sigma" in inspect.signature(net.forward).parameters

    def scale(self, y: torch.Tensor, A: LinearOperator) -> torch.Tensor:
        """The per-sample scale :math:`s` of ``y``, shape ``(B,)`` (real, no gradient)."""
        check_tensor(y, "y", A.range_shape, A.range_is_complex, A.device)
        if y.ndim == len(A.range_shape):
            raise ValueError(f"y: expected a batch of measurements, got {tuple(y.shape)} without a batch dimension.")
        with torch.no_grad():
            s = scale_statistic(A.adjoint(y, check=False) * step_scale(A), self.statistic)
            return torch.where(torch.isfinite(s) & (s > self.eps), s, torch.ones_like(s))

    def forward(self, y: torch.Tensor, A: LinearOperator, *args, sigma: float | torch.Tensor | None = None, **kwargs):
        """``s * net(y / s, A, ...)``; ``sigma`` (float or ``(B,)``) is divided by ``s`` and passed on when given."""
        s = self.scale(y, A)
        y_scaled = y / s.reshape(-1, *([1] * (y.ndim - 1))).to(y.dtype)
        if sigma is not None:
            if not self._takes_sigma:
                raise ValueError(f"sigma: the wrapped {type(self.net).__name__} takes no noise level.")
            kwargs["sigma"] = torch.as_tensor(sigma, dtype=s.dtype, device=s.device).reshape(-1) / s
        out = self.net(y_scaled, A, *args, **kwargs)

        def unscale(x: torch.Tensor) -> torch.Tensor:
            return x * s.reshape(-1, *([1] * (x.ndim - 1))).to(x.real.dtype if x.is_complex() else x.dtype)

        if isinstance(out, (list, tuple)):
            return type(out)(unscale(o) for o in out)
        return unscale(out)

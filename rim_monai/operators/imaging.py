"""Image-domain forward models of the RIM paper: denoising, deblurring, super-resolution, random projections."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rim_monai.operators.base import LinearOperator

__all__ = ["Identity"]


class Identity(LinearOperator):
    r"""The identity :math:`A x = x` (denoising: :math:`y = x + n`).

    Args:
        shape: the image shape ``(H, W)`` (trailing dimensions; leading batch/channel dimensions are free).
        complex_: whether the images are complex.

    Example:
        >>> A = Identity((32, 32))
        >>> A(torch.ones(4, 3, 32, 32)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(self, shape: Sequence[int], complex_: bool = False) -> None:
        super().__init__()
        self.domain_shape = self.range_shape = tuple(int(s) for s in shape)
        self.domain_is_complex = self.range_is_complex = bool(complex_)

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return y.clone()

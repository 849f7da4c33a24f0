r"""A complex operator seen from real images: real measurements :math:`(\mathrm{Re}\,Ax, \mathrm{Im}\,Ax)`."""

from __future__ import annotations

import torch

from rim_monai.operators.base import LinearOperator

__all__ = ["RealImageView"]


class RealImageView(LinearOperator):
    r"""A complex operator restricted to real images, with real measurements :math:`(\mathrm{Re}\,Ax, \mathrm{Im}\,Ax)`.

    For :math:`A: \mathbb{C}^d \to \mathbb{C}^m` this is the real-linear map :math:`B: \mathbb{R}^d \to \mathbb{R}^{m \times 2}`,
    :math:`B x = (\mathrm{Re}\,A x, \mathrm{Im}\,A x)`, whose adjoint is :math:`B^T (u, v) = \mathrm{Re}\,A^H(u + i v)`
    (since :math:`\langle Bx, (u, v)\rangle = \mathrm{Re}\,\langle A x, u + iv\rangle_{\mathbb C} = \langle x,
    \mathrm{Re}\,A^H(u + iv)\rangle` for real :math:`x`). It lets a network built for real images (the RIM paper's
    sigmoid link) reconstruct from complex measurements such as the Fourier random-projection ensemble.

    Shapes:
        ``domain_shape = A.domain_shape`` (real), ``range_shape = (*A.range_shape, 2)`` (real); any leading dims.

    Args:
        op: a :class:`LinearOperator` with a complex domain and a complex range.

    Raises:
        ValueError: ``op`` is not a complex-to-complex :class:`LinearOperator`.

    Example:
        >>> from rim_monai.operators import RandomProjection
        >>> B = RealImageView(RandomProjection((8, 8), 0.5, ensemble="fourier", seed=0))
        >>> B(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 1, 32, 2])
    """

    def __init__(self, op: LinearOperator) -> None:
        super().__init__()
        if not isinstance(op, LinearOperator) or not (op.domain_is_complex and op.range_is_complex):
            raise ValueError(
                f"op: expected a LinearOperator with complex domain and range, got {type(op).__name__}"
                + (f" (domain complex={op.domain_is_complex}, range complex={op.range_is_complex})" if isinstance(op, LinearOperator) else "")
                + "."
            )
        self.op = op
        self.domain_shape = tuple(op.domain_shape)
        self.range_shape = (*op.range_shape, 2)
        self.domain_is_complex = self.range_is_complex = False

    @property
    def device(self) -> torch.device:
        return self.op.device

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(self.op.forward(torch.complex(x, torch.zeros_like(x)), check=False)).contiguous()

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(torch.view_as_complex(y.contiguous()), check=False).real.contiguous()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, op={type(self.op).__name__}"

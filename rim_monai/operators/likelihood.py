"""Gradient of the Gaussian data log-likelihood, the extrinsic input of every iterative network."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rim_monai.operators.base import LinearOperator

__all__ = ["GaussianLikelihood"]


class GaussianLikelihood(torch.nn.Module):
    r"""Gradient of :math:`\log p(y | A, x)` for additive Gaussian noise (Putzky & Welling 2017, Eq. 15):

    .. math::
        \nabla_{y|x} = \frac{1}{\sigma^2 + \epsilon} A^H (y - A x), \qquad \epsilon = \mathrm{softplus}(\phi_\epsilon)

    with a learnable :math:`\phi_\epsilon` that keeps the gradient finite for small :math:`\sigma`.

    Args:
        init_epsilon: initial value of :math:`\epsilon` (> 0).
        learnable: whether :math:`\phi_\epsilon` is trained.

    Shapes:
        ``x``: ``(*batch, *A.domain_shape)``, ``y``: ``(*batch, *A.range_shape)``; ``sigma`` a float or a tensor
        broadcastable to ``x`` (for example ``(B, 1, 1, 1)``); returns a tensor shaped like ``x``.

    Example:
        >>> from rim_monai.operators import Identity
        >>> lik = GaussianLikelihood()
        >>> g = lik(torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8), Identity((8, 8)), sigma=1.0)
    """

    def __init__(self, init_epsilon: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        if init_epsilon <= 0:
            raise ValueError(f"init_epsilon: expected a positive value, got {init_epsilon}.")
        raw = torch.tensor(float(init_epsilon)).expm1().log()  # inverse softplus
        self.raw_epsilon = torch.nn.Parameter(raw, requires_grad=learnable)

    @property
    def epsilon(self) -> torch.Tensor:
        """:math:`\\epsilon = \\mathrm{softplus}(\\phi_\\epsilon)`."""
        return F.softplus(self.raw_epsilon)

    def residual(self, x: torch.Tensor, y: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
        """The measurement residual :math:`y - A x` (shape of ``y``)."""
        return y - operator(x, check=False)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, operator: LinearOperator, sigma: float | torch.Tensor = 0.0
    ) -> torch.Tensor:
        scale = 1.0 / (torch.as_tensor(sigma, dtype=self.epsilon.dtype, device=x.device) ** 2 + self.epsilon)
        return operator.adjoint(self.residual(x, y, operator), check=False) * scale

"""Learned gradient descent (Adler & Öktem 2017): unrolled gradient steps with a learned update per iteration."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from rim_monai.networks.base import IterativeNetwork
from rim_monai.networks.blocks import ConvStack
from rim_monai.networks.utils import from_channels, initial_estimate, step_scale, to_channels
from rim_monai.operators.base import LinearOperator

__all__ = ["LearnedGradientDescent"]


class LearnedGradientDescent(IterativeNetwork):
    r"""Learned gradient descent (Adler & Öktem, *Inverse Problems* 2017).

    .. math::
        x_{k+1} = x_k + \Lambda_{\theta_k}\big(x_k,\; A^H(A x_k - y)/\|A\|^2\big), \qquad k = 0, \dots, K-1,

    where each :math:`\Lambda_{\theta_k}` is a small CNN (3x3 convolutions with PReLU) of its own (or one shared CNN
    with ``share_weights=True``), fed the current estimate and the normalised data-fidelity gradient as channels.

    Args:
        in_channels: image channels ``C``.
        complex_: complex images (processed as ``2C`` real channels).
        iterations: the number of unrolled iterations :math:`K` (10 by default).
        features: hidden widths of each :math:`\Lambda_{\theta_k}`.
        init: start ``"adjoint"`` (:math:`A^H y/\|A\|^2`), ``"fbp"`` (``A.fbp`` if available) or ``"zeros"``.
        share_weights: one CNN for all iterations; the network can then run any number of iterations.

    Shapes:
        ``y``: ``(B, ..., *A.range_shape)``; returns images shaped like ``A.adjoint(y)`` (``(B, C, H, W)``), or the list
        of the ``iterations`` estimates with ``return_all=True``.

    Example:
        >>> from rim_monai.operators import Identity
        >>> lgd = LearnedGradientDescent(iterations=3, features=(8,), share_weights=True)
        >>> len(lgd(torch.rand(2, 1, 8, 8), Identity((8, 8)), iterations=5, return_all=True))
        5
    """

    def __init__(
        self,
        in_channels: int = 1,
        complex_: bool = False,
        iterations: int = 10,
        features: Sequence[int] = (32, 32),
        init: str = "adjoint",
        share_weights: bool = False,
    ) -> None:
        super().__init__(in_channels, complex_, iterations, init, share_weights)
        c = self.real_channels
        self.blocks = nn.ModuleList(ConvStack(2 * c, c, features) for _ in range(self.num_weight_sets))

    def iterate(self, y: torch.Tensor, A: LinearOperator, adjoint: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        """The iterates :math:`x_1, \\dots, x_K` (``K = iterations``) from the start ``init``."""
        scale = step_scale(A)
        x = to_channels(initial_estimate(y, A, self.init, adjoint))
        estimates = []
        for k in range(iterations):
            image = from_channels(x, self.complex_)
            grad = to_channels(A.adjoint(A(image, check=False) - y, check=False)) * scale
            block = self.blocks[self.weight_index(k)]
            x = x + block(torch.cat([x, grad], dim=1))
            estimates.append(from_channels(x, self.complex_))
        return estimates

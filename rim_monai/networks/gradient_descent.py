"""Learned gradient descent (Adler & Öktem 2017): unrolled gradient steps with a learned update per iteration."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from rim_monai.networks.blocks import ConvStack
from rim_monai.networks.utils import INIT_MODES, check_inputs, from_channels, initial_estimate, step_scale, to_channels
from rim_monai.operators.base import LinearOperator

__all__ = ["LearnedGradientDescent"]


class LearnedGradientDescent(nn.Module):
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
        share_weights: one CNN for all iterations; the network can then run any number of steps.

    Shapes:
        ``y``: ``(B, ..., *A.range_shape)``; returns images shaped like ``A.adjoint(y)`` (``(B, C, H, W)``), or the list
        of the ``iterations`` estimates with ``return_all=True``.

    Example:
        >>> from rim_monai.operators import Identity
        >>> net = LearnedGradientDescent(iterations=3, features=(8,))
        >>> net(torch.rand(2, 1, 8, 8), Identity((8, 8))).shape
        torch.Size([2, 1, 8, 8])
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
        super().__init__()
        if int(iterations) < 1:
            raise ValueError(f"iterations: expected a positive number, got {iterations}.")
        if init not in INIT_MODES:
            raise ValueError(f"init: expected one of {INIT_MODES}, got {init!r}.")
        self.in_channels, self.complex_, self.init = int(in_channels), bool(complex_), init
        self.iterations, self.share_weights = int(iterations), bool(share_weights)
        c = self.in_channels * (2 if self.complex_ else 1)
        blocks = 1 if self.share_weights else self.iterations
        self.blocks = nn.ModuleList(ConvStack(2 * c, c, features) for _ in range(blocks))

    def forward(
        self, y: torch.Tensor, A: LinearOperator, steps: int | None = None, return_all: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Run the unrolled iterations.

        Args:
            y: measurements.
            A: the forward operator.
            steps: number of iterations; only with ``share_weights=True`` may it differ from ``iterations``.
            return_all: return the list of all iterates :math:`x_1, \\dots, x_K`.

        Raises:
            ValueError: bad ``y``/``A``, or ``steps`` other than ``iterations`` without shared weights.
        """
        adjoint = check_inputs(y, A, self.in_channels, self.complex_)
        steps = self.iterations if steps is None else int(steps)
        if steps < 1 or (not self.share_weights and steps != self.iterations):
            raise ValueError(
                f"steps: this network has {self.iterations} iterations with their own weights, got steps={steps} "
                "(build it with share_weights=True to run any number of steps)."
            )
        scale = step_scale(A)
        x = to_channels(initial_estimate(y, A, self.init, adjoint))
        estimates = []
        for k in range(steps):
            image = from_channels(x, self.complex_)
            grad = to_channels(A.adjoint(A(image, check=False) - y, check=False)) * scale
            block = self.blocks[0 if self.share_weights else k]
            x = x + block(torch.cat([x, grad], dim=1))
            estimates.append(from_channels(x, self.complex_))
        return estimates if return_all else estimates[-1]

"""Landweber iteration: gradient descent on the least-squares data term, optionally projected onto x >= 0."""

from __future__ import annotations

import torch

from rim_monai.classical.batching import Callback, check_initial, check_solver_inputs, expand, operator_norm, per_sample
from rim_monai.operators.base import LinearOperator

__all__ = ["landweber"]


def landweber(
    y: torch.Tensor,
    operator: LinearOperator,
    step: float | torch.Tensor | None = None,
    iterations: int = 50,
    x0: torch.Tensor | None = None,
    nonneg: bool = False,
    callback: Callback | None = None,
) -> torch.Tensor:
    r"""Projected Landweber iteration for :math:`\min_x \tfrac12\|A x - y\|_2^2` (subject to :math:`x \ge 0`).

    .. math::
        x_{k+1} = P\big(x_k + \omega\, A^H (y - A x_k)\big),

    with :math:`P` the identity, or the projection :math:`\max(\cdot, 0)` when ``nonneg``. For
    :math:`0 < \omega < 2 / \|A\|_2^2` the data term :math:`\tfrac12\|A x_k - y\|^2` does not increase (also with the
    projection, which is onto a convex set), and without projection the iterates from :math:`x_0 = 0` converge to the
    minimum-norm least-squares solution; early stopping (small ``iterations``) acts as regularisation. The default
    step :math:`\omega = 1/\|A\|_2^2` uses :meth:`LinearOperator.opnorm` (a batched power iteration, one step per
    sample, for operators with per-sample masks or coil maps).

    Args:
        y: measurements ``(*batch, *operator.range_shape)``.
        operator: the forward model :math:`A`.
        step: step size :math:`\omega > 0`: a number or a per-sample tensor (leading dimensions of :math:`x`, or
            ``(B,)``); default :math:`1/\|A\|_2^2`.
        iterations: number of iterations (> 0).
        x0: initial estimate shaped like :math:`A^H y` (default zeros).
        nonneg: project onto :math:`x \ge 0` after each step (real images only).
        callback: ``callback(k, x_k)`` after iteration ``k = 1, 2, ...``; it must not modify ``x_k`` in place.

    Returns:
        ``x`` of shape ``(*batch, *operator.domain_shape)`` (computed without autograd history).

    Raises:
        ValueError: naming ``y``, ``operator``, ``step``, ``iterations``, ``x0`` or ``nonneg`` when invalid.

    Example:
        >>> from rim_monai.operators import Identity
        >>> y = torch.randn(2, 1, 8, 8)
        >>> torch.allclose(landweber(y, Identity((8, 8)), iterations=1), y)  # omega = 1 reaches y in one step
        True
    """
    iterations, _ = check_solver_inputs(y, operator, iterations)
    if nonneg and operator.domain_is_complex:
        raise ValueError("nonneg: the projection onto x >= 0 needs real images; this operator's domain is complex.")
    nd = len(operator.domain_shape)
    with torch.no_grad():
        b = operator.adjoint(y)
        batch = tuple(b.shape[: b.ndim - nd])
        if step is None:
            norm = operator_norm(operator, b)
            if bool((norm <= 0).any()):
                raise ValueError("operator: its norm is zero, so the default step 1/||A||^2 is undefined; pass step.")
            omega = 1.0 / norm**2
        else:
            omega = per_sample(step, "step", batch, b, positive=True)
        omega = expand(omega, nd)
        x = torch.zeros_like(b) if x0 is None else check_initial(x0, b).clone()
        for k in range(1, iterations + 1):
            x = x + omega * (b - operator.normal(x))
            if nonneg:
                x = x.clamp_min(0)
            if callback is not None:
                callback(k, x)
    return x

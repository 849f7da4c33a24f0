"""Landweber iteration: gradient descent on the least-squares data term, optionally projected onto x >= 0."""

from __future__ import annotations

import logging

import torch

from rim_monai.classical.batching import Callback, check_initial, check_solver_inputs, expand, operator_norm, per_sample
from rim_monai.classical.noise import reduce_to
from rim_monai.classical.parameter_choice import TAU_EARLY_STOPPING, discrepancy_target
from rim_monai.operators.base import LinearOperator

__all__ = ["landweber", "MAX_LANDWEBER_ITERATIONS"]

logger = logging.getLogger(__name__)

#: iteration cap of the discrepancy-stopped default (``iterations=None``)
MAX_LANDWEBER_ITERATIONS: int = 500


def landweber(
    y: torch.Tensor,
    operator: LinearOperator,
    step: float | torch.Tensor | None = None,
    iterations: int | None = None,
    x0: torch.Tensor | None = None,
    nonneg: bool = False,
    callback: Callback | None = None,
    sigma: float | torch.Tensor | None = None,
    photons: float | torch.Tensor | None = None,
    tau: float = TAU_EARLY_STOPPING,
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

    **Default (``iterations=None``): discrepancy-principle stopping.** A sample stops (and is left unchanged) at the
    first iterate whose data residual :math:`\|A x_k - y\|_w^2` is at most :math:`\tau E\|n\|^2`, the noise energy
    from ``sigma`` / ``photons`` or estimated from ``y``
    (:func:`~rim_monai.classical.parameter_choice.discrepancy_target`), after at most
    :data:`MAX_LANDWEBER_ITERATIONS` iterations; the counts are logged at INFO level. An integer ``iterations`` runs
    exactly that many (no rule).

    Args:
        y: measurements ``(*batch, *operator.range_shape)``.
        operator: the forward model :math:`A`.
        step: step size :math:`\omega > 0`: a number or a per-sample tensor (leading dimensions of :math:`x`, or
            ``(B,)``); default :math:`1/\|A\|_2^2`.
        iterations: number of iterations (> 0); ``None``: discrepancy stopping (above).
        x0: initial estimate shaped like :math:`A^H y` (default zeros).
        nonneg: project onto :math:`x \ge 0` after each step (real images only).
        callback: ``callback(k, x_k)`` after iteration ``k = 1, 2, ...``; it must not modify ``x_k`` in place.
        sigma: with ``iterations=None``: Gaussian noise standard deviation per measured entry, when known.
        photons: with ``iterations=None``: :math:`I_0` of post-log transmission data, when known.
        tau: with ``iterations=None``: the discrepancy factor.

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
    rule = iterations is None
    iterations, _ = check_solver_inputs(y, operator, MAX_LANDWEBER_ITERATIONS if rule else iterations)
    if nonneg and operator.domain_is_complex:
        raise ValueError("nonneg: the projection onto x >= 0 needs real images; this operator's domain is complex.")
    nd, ndim = len(operator.domain_shape), len(operator.range_shape)
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
        noise, target = discrepancy_target(y, operator, sigma, photons, tau, batch) if rule else (None, None)
        active = torch.ones(batch, dtype=torch.bool, device=b.device)
        count = torch.zeros(batch, dtype=torch.int64, device=b.device)
        for k in range(1, iterations + 1):
            if rule:
                s = operator(x) - y
                active = active & (reduce_to(noise.residual(s, ndim), 0, batch) > target)
                if not bool(active.any()):
                    break
                x_new = x - omega * operator.adjoint(s)
            else:
                x_new = x + omega * (b - operator.normal(x))
            if nonneg:
                x_new = x_new.clamp_min(0)
            x = torch.where(expand(active, nd), x_new, x)
            count = count + active.long()
            if callback is not None:
                callback(k, x)
    if rule:
        logger.info("Landweber stopped by the discrepancy principle (tau %.3g, %s noise) after %s iteration(s)", tau,
                    noise.kind, count.flatten()[:4].tolist())
    return x

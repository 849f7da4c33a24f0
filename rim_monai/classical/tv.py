"""Isotropic total-variation regularised reconstruction by the primal-dual hybrid gradient (Chambolle–Pock) method."""

from __future__ import annotations

import math
from typing import Any

import torch

from rim_monai.classical.batching import (
    Callback,
    check_initial,
    check_measurements,
    check_solver_inputs,
    expand,
    operator_norm,
    per_sample,
    sqnorm,
)
from rim_monai.operators.base import LinearOperator

__all__ = ["tv_pdhg", "scaled_tv", "gradient2d", "gradient2d_adjoint", "default_weight_scale", "DEFAULT_TV_WEIGHT"]

#: The default TV weight ``c`` in :math:`\lambda = c\,\mu\,s` (:func:`default_weight_scale`); from the sweep in
#: ``docs/classical.md`` (``python -m rim_monai.classical.tv_sweep``).
DEFAULT_TV_WEIGHT: float = 0.05

# squared norm bound of the 2D forward-difference gradient: ||grad||^2 <= 4 + 4
_GRAD_NORM = math.sqrt(8.0)


def gradient2d(x: torch.Tensor) -> torch.Tensor:
    r"""Forward differences over the last two axes with Neumann boundary (zero difference past the edge).

    .. math::
        (\nabla x)_{0,i,j} = x_{i+1,j} - x_{i,j}, \qquad (\nabla x)_{1,i,j} = x_{i,j+1} - x_{i,j},

    and 0 on the last row (resp. column). :math:`\|\nabla\|_2^2 \le 8`.

    Args:
        x: ``(*lead, H, W)``, real or complex.

    Returns:
        ``(*lead, 2, H, W)``: the vertical and horizontal differences.
    """
    dh = torch.zeros_like(x)
    dw = torch.zeros_like(x)
    dh[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dw[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack((dh, dw), dim=-3)


def gradient2d_adjoint(g: torch.Tensor) -> torch.Tensor:
    r"""The adjoint :math:`\nabla^H = -\mathrm{div}` of :func:`gradient2d`: ``(*lead, 2, H, W) -> (*lead, H, W)``."""
    gh, gw = g[..., 0, :, :], g[..., 1, :, :]
    out = torch.zeros_like(gh)
    out[..., :-1, :] -= gh[..., :-1, :]
    out[..., 1:, :] += gh[..., :-1, :]
    out[..., :, :-1] -= gw[..., :, :-1]
    out[..., :, 1:] += gw[..., :, :-1]
    return out


def _range_sqnorm(t: torch.Tensor, batch: tuple[int, ...]) -> torch.Tensor:
    """Per-sample squared norm of a measurement-space tensor, reduced to the image batch shape ``batch``."""
    lead = len(batch)
    out = sqnorm(t, t.ndim - lead)
    extra = tuple(i for i, (a, b) in enumerate(zip(out.shape, batch)) if a != b)
    if extra:
        out = out.sum(dim=extra, keepdim=True)
    return out.expand(batch)


def default_weight_scale(y: torch.Tensor, operator: LinearOperator, b: torch.Tensor | None = None) -> torch.Tensor:
    r"""The per-sample scale :math:`\mu\,s` that the default TV weight :math:`\lambda = c\,\mu\,s` multiplies.

    .. math::
        \mu = \frac{\|A z\|^2}{\|z\|^2}, \qquad
        s = \alpha \max|A^H y|, \quad \alpha = \frac{\|A^H y\|^2}{\|A A^H y\|^2},

    with :math:`z` a fixed real Gaussian probe (the same for every sample), so :math:`\mu` estimates the *mean* eigenvalue
    :math:`\mathrm{tr}(A^H A)/n` (Hutchinson) — the gain :math:`A^H A` applies to edges, unlike :math:`\|A\|^2`, which for
    CT is the gain at zero frequency — and :math:`s` the image intensity (:math:`\alpha A^H y` is the best multiple of
    :math:`A^H y` in the least-squares sense). The weight then balances :math:`A^H(Ax-y)` against the TV subgradient
    whatever the operator's normalisation: :math:`\lambda(a y) = a\lambda(y)` and :math:`\lambda` for :math:`aA,\,ay`
    is :math:`a^2\lambda`, as the objective's scaling requires.

    Args:
        y: measurements ``(*batch, *operator.range_shape)``.
        operator: the forward model.
        b: :math:`A^H y` when already computed.

    Returns:
        ``(*batch_x,)``, the leading dimensions of :math:`A^H y`; 0 where :math:`A^H y = 0`.
    """
    nd = len(operator.domain_shape)
    with torch.no_grad():
        b = operator.adjoint(y) if b is None else b
        batch = tuple(b.shape[: b.ndim - nd])
        g = torch.Generator().manual_seed(0)
        # the same probe for every sample, so batched and single-sample calls agree
        z = torch.randn(operator.domain_shape, generator=g, dtype=b.real.dtype if b.dtype.is_complex else b.dtype)
        z = z.to(b.dtype).to(b.device).expand(b.shape)
        mu = _range_sqnorm(operator(z), batch) / sqnorm(z, nd)
        ab = _range_sqnorm(operator(b), batch)
        bb = sqnorm(b, nd)
        alpha = torch.where(ab > 0, bb / torch.where(ab > 0, ab, torch.ones_like(ab)), torch.zeros_like(ab))
        peak = b.abs().reshape(batch + (-1,)).amax(dim=-1)
        return mu * alpha * peak


def _project_ball(v: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Project each pixel's gradient vector (axis -3) onto the ball of the given per-sample radius."""
    magnitude = torch.sqrt((v.abs() ** 2).sum(dim=-3, keepdim=True))
    scale = torch.clamp(radius / torch.clamp(magnitude, min=torch.finfo(magnitude.dtype).tiny), max=1.0)
    return v * scale


def tv_pdhg(
    y: torch.Tensor,
    operator: LinearOperator,
    lam: float | torch.Tensor | None = None,
    iterations: int = 500,
    tol: float = 1e-5,
    nonneg: bool = False,
    callback: Callback | None = None,
    x0: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Total-variation regularised reconstruction by Chambolle–Pock's primal-dual hybrid gradient method.

    Solves, per sample,

    .. math::
        \min_x\ \tfrac12\|A x - y\|_2^2 + \lambda\,\mathrm{TV}(x) \;[+\ \iota_{x \ge 0}(x)], \qquad
        \mathrm{TV}(x) = \sum_{i,j} \sqrt{|(\nabla x)_{0,i,j}|^2 + |(\nabla x)_{1,i,j}|^2},

    the isotropic TV over the last two axes (:func:`gradient2d`; for complex images the TV of the complex image,
    moduli inside the square root). Write :math:`K = [A;\, s\nabla]` with :math:`s = \|A\|/\sqrt 8` so both blocks
    have the same norm bound, :math:`L = \sqrt{\|A\|^2 + 8 s^2} = \sqrt 2\,\|A\| \ge \|K\|`, and
    :math:`\tau = \sigma = 0.99 / L`. From :math:`x_0 = \bar x_0`, :math:`u_0 = 0`, :math:`v_0 = 0`:

    .. math::
        u_{k+1} &= \big(u_k + \sigma (A \bar x_k - y)\big) / (1 + \sigma) \\
        v_{k+1} &= \Pi_{\lambda/s}\big(v_k + \sigma s \nabla \bar x_k\big) \\
        x_{k+1} &= P\big(x_k - \tau (A^H u_{k+1} + s \nabla^H v_{k+1})\big) \\
        \bar x_{k+1} &= 2 x_{k+1} - x_k

    where :math:`\Pi_r` projects every pixel's gradient vector onto the ball of radius :math:`r` and :math:`P` is the
    identity or :math:`\max(\cdot, 0)` (``nonneg``). A sample stops, and is left unchanged from then on, when the
    relative primal change :math:`\|x_{k+1} - x_k\| / \|x_{k+1}\| \le` ``tol``; the loop ends when all have stopped.

    The default weight is :math:`\lambda = c\,\mu\,s` per sample with ``c = DEFAULT_TV_WEIGHT`` (0.05) and
    :math:`\mu\,s` from :func:`default_weight_scale` (mean eigenvalue of :math:`A^H A` times the image intensity),
    which makes the result scale-equivariant (``tv_pdhg(a*y) == a*tv_pdhg(y)``) and independent of the operator's
    normalisation; ``c`` comes from the CT / MRI / denoising sweep in ``docs/classical.md``. It is a starting point:
    tune ``lam`` to the noise level and sampling.

    Args:
        y: measurements ``(*batch, *operator.range_shape)``, real or complex.
        operator: the forward model :math:`A` (its domain's last two axes are the image plane).
        lam: TV weight :math:`\lambda \ge 0`: a number or per-sample tensor (leading dimensions of :math:`x`, or
            ``(B,)``); ``None`` uses the default rule above.
        iterations: maximum number of iterations (> 0).
        tol: relative primal change below which a sample stops (0 runs all iterations).
        nonneg: constrain :math:`x \ge 0` (real images only).
        callback: ``callback(k, x_k)`` after iteration ``k = 1, 2, ...``; it must not modify ``x_k`` in place.
        x0: initial estimate shaped like :math:`A^H y` (default zeros).

    Returns:
        ``x`` of shape ``(*batch, *operator.domain_shape)`` (computed without autograd history).

    Raises:
        ValueError: naming ``y``, ``operator``, ``lam``, ``iterations``, ``tol``, ``nonneg`` or ``x0`` when invalid,
            or ``operator`` when its domain has fewer than two axes.

    Example:
        >>> from rim_monai.operators import Identity
        >>> y = torch.zeros(1, 1, 16, 16); y[..., 4:12, 4:12] = 1.0
        >>> x = tv_pdhg(y + 0.1 * torch.randn_like(y), Identity((16, 16)), lam=0.1)
        >>> x.shape
        torch.Size([1, 1, 16, 16])
    """
    iterations, tol = check_solver_inputs(y, operator, iterations, tol)
    nd = len(operator.domain_shape)
    if nd < 2:
        raise ValueError(
            f"operator: TV needs an image domain with at least two axes, got domain_shape {operator.domain_shape}."
        )
    if nonneg and operator.domain_is_complex:
        raise ValueError("nonneg: the projection onto x >= 0 needs real images; this operator's domain is complex.")
    with torch.no_grad():
        b = operator.adjoint(y)
        batch = tuple(b.shape[: b.ndim - nd])
        if lam is None:
            lam_t = DEFAULT_TV_WEIGHT * default_weight_scale(y, operator, b)
        else:
            lam_t = per_sample(lam, "lam", batch, b)
        norm = operator_norm(operator, b)
        if bool((norm <= 0).any()):
            raise ValueError("operator: its norm is zero, so the primal-dual step sizes are undefined.")
        s = norm / _GRAD_NORM
        tau = sigma = 0.99 / (math.sqrt(2.0) * norm)
        tau_x, s_x = expand(tau, nd), expand(s, nd)
        sigma_y = sigma.reshape(batch + (1,) * (y.ndim - len(batch)))
        sigma_g, s_g = expand(sigma, nd + 1), expand(s, nd + 1)
        radius = expand(lam_t / s, nd + 1)

        x = torch.zeros_like(b) if x0 is None else check_initial(x0, b).clone()
        x_bar = x.clone()
        u = torch.zeros_like(operator(x))
        v = torch.zeros_like(gradient2d(x))
        active = torch.ones(batch, dtype=torch.bool, device=b.device)
        for k in range(1, iterations + 1):
            u_new = (u + sigma_y * (operator(x_bar) - y)) / (1 + sigma_y)
            v_new = _project_ball(v + sigma_g * s_g * gradient2d(x_bar), radius)
            x_new = x - tau_x * (operator.adjoint(u_new) + s_x * gradient2d_adjoint(v_new))
            if nonneg:
                x_new = x_new.clamp_min(0)
            change = sqnorm(x_new - x, nd).sqrt()
            size = sqnorm(x_new, nd).sqrt()
            keep_x = expand(active, nd)
            u = torch.where(active.reshape(sigma_y.shape), u_new, u)
            v = torch.where(expand(active, nd + 1), v_new, v)
            x_bar = torch.where(keep_x, 2 * x_new - x, x_bar)
            x = torch.where(keep_x, x_new, x)
            if callback is not None:
                callback(k, x)
            active = active & (change > tol * size)
            if not bool(active.any()):
                break
    return x


def scaled_tv(
    y: torch.Tensor, operator: LinearOperator, weight: float = 0.05, warm_start: bool = True, **kwargs: Any
) -> torch.Tensor:
    r"""TV reconstruction (:func:`tv_pdhg`) with :math:`\lambda` = ``weight`` times the data-driven
    scale :func:`default_weight_scale` (``weight`` = 0.05 is tv_pdhg's own default), so a weight tuned
    on validation data carries over to any intensity scale. ``warm_start`` starts the iterations from the (Hann)
    FBP image clamped at 0 instead of 0, which the objective does not depend on but a fixed iteration budget does.

    Args:
        y: measurements ``(*batch, *operator.range_shape)``, e.g. sinograms ``(B, 1, angles, detectors)``.
        operator: the forward model, e.g. the ray transform.
        weight: the factor :math:`c` of :math:`\lambda = c\,\mu\,s`.
        warm_start: start from ``operator.fbp(y, filter="hann")`` clamped at 0 when the operator supports
            ``"fbp"`` (from 0 otherwise).
        kwargs: passed to ``tv_pdhg`` (``iterations``, ``nonneg``, ...).

    Raises:
        ValueError: a negative ``weight``, and the errors of :func:`tv_pdhg`.
    """
    if weight < 0:
        raise ValueError(f"weight: expected a non-negative TV weight factor, got {weight}.")
    check_measurements(y, operator)
    if warm_start and "x0" not in kwargs and operator.supports("fbp"):
        kwargs["x0"] = operator.fbp(y, filter="hann").clamp_min(0.0)
    return tv_pdhg(y, operator, lam=weight * default_weight_scale(y, operator), **kwargs)

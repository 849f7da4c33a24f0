r"""Data-driven regularisation: the TV weight and early stopping chosen from the measurements.

Morozov's discrepancy principle chooses the regularisation so that the reconstruction explains the data to within the
noise: per sample,

.. math::
    \sum_i w_i\,|(A x_\lambda - y)_i|^2 = \tau\, E\|n\|^2,

with the noise energy :math:`E\|n\|^2` and the entry weights :math:`w_i` of :func:`~rim_monai.classical.noise.
estimate_noise` (given ``sigma`` / ``photons``, or estimated from ``y``). The data residual grows monotonically with
the TV weight :math:`\lambda`, so :func:`choose_tv_weight` finds the root by a safeguarded secant search in
:math:`\log\lambda` (bracketing, then bisection when the secant leaves the bracket), each step a short warm-started
:func:`~rim_monai.classical.tv_pdhg` run; ``tv_pdhg`` then corrects the weight once or twice on its converged
reconstruction (:func:`refine_discrepancy_weight`). Early-stopped solvers (CG, Landweber) stop at the first iterate
whose residual falls below the target (:func:`discrepancy_target`, :data:`TAU_EARLY_STOPPING` = 1).

:data:`TAU_TV` = 1 (Morozov's own choice): on the real CT slices chosen to tune on (chest, abdomen; 256², 60 views,
post-log Poisson at :math:`I_0 = 10^3`–:math:`10^5`) the best TV weight of a grid sits at a converged residual of
0.8–0.96 times the noise energy with a flat top (within :math:`\sqrt2` of the weight, :math:`\le` 0.3 dB), and 0.9
was chosen first; a dense spine slice checked afterwards wanted more (its best weight about 1.4x the 0.9 weight,
-1.1 dB), and 1 keeps every slice within 0.62 dB (``docs/classical.md``).

Undersampled MRI is different: the error that remains is aliasing in the k-space not measured, which the residual
cannot see, and the best weight sits at 0.9x to 7x the noise energy depending on acceleration and SNR. For a
:class:`~rim_monai.operators.MaskedFourier` with enough sampled lines outside the calibration region the weight is
therefore chosen by k-space hold-out validation instead (:mod:`rim_monai.classical.holdout`). The weight factor is
kept in [:data:`MIN_TV_WEIGHT`, :data:`MAX_TV_WEIGHT`] times :func:`~rim_monai.classical.default_weight_scale`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from rim_monai.classical.batching import check_measurements, expand, format_per_sample
from rim_monai.classical.holdout import HOLDOUT_MAX_ITERATIONS, choose_tv_weight_holdout, supports_holdout
from rim_monai.classical.noise import NoiseModel, estimate_noise, reduce_to
from rim_monai.operators.base import LinearOperator

__all__ = [
    "TAU_TV",
    "TAU_EARLY_STOPPING",
    "MIN_TV_WEIGHT",
    "MAX_TV_WEIGHT",
    "WeightChoice",
    "choose_tv_weight",
    "discrepancy_target",
    "initial_estimate",
    "refine_discrepancy_weight",
]

logger = logging.getLogger(__name__)

#: discrepancy factor of the TV weight: residual = TAU_TV x noise energy
TAU_TV: float = 1.0
#: discrepancy factor of early stopping (CG, Landweber): stop once residual <= TAU_EARLY_STOPPING x noise energy
TAU_EARLY_STOPPING: float = 1.0
#: lower bound of the TV weight factor c in lambda = c * default_weight_scale (undersampling-limited regime)
MIN_TV_WEIGHT: float = 0.02
#: upper bound of c (a noise energy overestimated beyond what any weight can reach)
MAX_TV_WEIGHT: float = 1000.0
#: first weight factor c of the search
START_TV_WEIGHT: float = 0.3
#: the ways choose_tv_weight can choose
METHODS = ("auto", "discrepancy", "holdout")
# d log(residual) / d log(lambda) assumed before two evaluations are known (measured 0.5-1.2)
_START_SLOPE = 0.7
# the largest step of the search in log(lambda)
_MAX_STEP = math.log(16.0)


@dataclass
class WeightChoice:
    r"""The TV weight chosen by :func:`choose_tv_weight`.

    Attributes:
        lam: the weight :math:`\lambda` per sample (leading dimensions of :math:`A^H y`).
        weight: :math:`c = \lambda / (\mu s)`, the scale-free factor (comparable to ``scaled_tv(weight=c)``).
        ratio: residual / noise energy reached at the last search step (``None`` for hold-out validation).
        noise: the noise model used (``None`` for hold-out validation).
        evaluations: number of search steps (TV runs of ``search_iterations``).
        x: the last search iterate (a warm start for the final solve).
        method: ``"discrepancy"`` or ``"holdout"``.
        tau: the discrepancy factor (``None`` for hold-out validation).
    """

    lam: torch.Tensor
    weight: torch.Tensor
    ratio: torch.Tensor | None
    noise: NoiseModel | None
    evaluations: int
    x: torch.Tensor
    method: str
    tau: float | None = None


def discrepancy_target(y: torch.Tensor, operator: LinearOperator, sigma: float | torch.Tensor | None = None,
                       photons: float | torch.Tensor | None = None, tau: float = TAU_EARLY_STOPPING, batch: tuple[int, ...] | None = None
                       ) -> tuple[NoiseModel, torch.Tensor]:
    r"""The noise model and the discrepancy target :math:`\tau E\|n\|^2` per sample.

    Args:
        y: measurements ``(*batch, *operator.range_shape)``.
        operator: the forward model.
        sigma, photons: the noise level when known (:func:`~rim_monai.classical.noise.estimate_noise`).
        tau: the discrepancy factor (> 0).
        batch: the leading dimensions of :math:`A^H y` when they differ from those of ``y``.

    Returns:
        ``(noise, target)``; ``target`` has shape ``batch`` (float64).

    Raises:
        ValueError: naming ``tau`` when not positive, and the errors of ``estimate_noise``.
    """
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not 0 < float(tau) < math.inf:
        raise ValueError(f"tau: expected a positive discrepancy factor, got {tau!r}.")
    noise = estimate_noise(y, operator, sigma=sigma, photons=photons)
    energy = noise.energy if batch is None else reduce_to(noise.energy, 0, batch)
    return noise, float(tau) * energy


def initial_estimate(y: torch.Tensor, operator: LinearOperator, nonneg: bool = False) -> torch.Tensor:
    r"""A cheap first image to start iterations from: Hann-filtered FBP for operators with the ``"fbp"`` ability,
    else the best multiple :math:`\alpha A^H y`, :math:`\alpha = \|A^H y\|^2/\|A A^H y\|^2` (zero-filled for MRI);
    clamped at 0 with ``nonneg``."""
    with torch.no_grad():
        if operator.supports("fbp") and not y.is_complex():
            x = operator.fbp(y, filter="hann")
        else:
            b = operator.adjoint(y)
            nd = len(operator.domain_shape)
            batch = tuple(b.shape[: b.ndim - nd])
            bb = reduce_to((b.abs() ** 2).double(), nd, batch)
            ab = reduce_to((operator(b).abs() ** 2).double(), len(operator.range_shape), batch)
            alpha = torch.where(ab > 0, bb / ab.clamp_min(1e-300), torch.zeros_like(ab)).to(b.real.dtype)
            x = expand(alpha, nd) * b
        return x.clamp_min(0) if nonneg else x


def _secant_step(u: torch.Tensor, f: torch.Tensor, prev: tuple[torch.Tensor, torch.Tensor] | None,
                 lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Next log-weight: secant on f(u) = log(ratio / tau), bisection when it leaves the bracket (lo, hi)."""
    slope = torch.full_like(u, _START_SLOPE)
    if prev is not None:
        du = u - prev[0]
        fit = (f - prev[1]) / torch.where(du.abs() > 1e-12, du, torch.ones_like(du))
        slope = torch.where(du.abs() > 1e-12, fit.clamp(0.1, 3.0), slope)
    new = u - (f / slope).clamp(-_MAX_STEP, _MAX_STEP)
    bracketed = torch.isfinite(lo) & torch.isfinite(hi)
    outside = (new <= lo) | (new >= hi)
    return torch.where(bracketed & outside, 0.5 * (lo + hi), new)


def choose_tv_weight(
    y: torch.Tensor,
    operator: LinearOperator,
    sigma: float | torch.Tensor | None = None,
    photons: float | torch.Tensor | None = None,
    tau: float = TAU_TV,
    nonneg: bool = False,
    x0: torch.Tensor | None = None,
    search_iterations: int | None = None,
    max_evaluations: int = 8,
    rtol: float = 0.1,
    min_weight: float = MIN_TV_WEIGHT,
    method: str = "auto",
    return_details: bool = False,
) -> torch.Tensor | WeightChoice:
    r"""The TV weight :math:`\lambda` of :func:`~rim_monai.classical.tv_pdhg` from the measurements.

    Undersampled MRI (``method="auto"``, a :class:`~rim_monai.operators.MaskedFourier` with enough outer lines) uses
    k-space hold-out validation (:mod:`rim_monai.classical.holdout`); every other operator the discrepancy principle:

    Per sample, finds :math:`\lambda = c\,\mu s` (:math:`\mu s` from :func:`~rim_monai.classical.default_weight_scale`)
    with :math:`\|A x_\lambda - y\|_w^2 = \tau E\|n\|^2` to within ``rtol`` (module docstring), by at most
    ``max_evaluations`` TV runs of ``search_iterations`` iterations each, warm-started from one another (and from
    :func:`initial_estimate`), starting at :math:`c` = 0.3 and keeping :math:`c \in` [``min_weight``, 1000].
    The chosen weight is logged at INFO level (logger ``rim_monai.classical.parameter_choice``).

    Args:
        y: measurements ``(*batch, *operator.range_shape)``.
        operator: the forward model.
        sigma: Gaussian noise standard deviation per measured entry, when known (number or per sample).
        photons: :math:`I_0` of post-log transmission data, when known (number or per sample).
        tau: the discrepancy factor :math:`\tau` (default :data:`TAU_TV`).
        nonneg: solve with :math:`x \ge 0` (as the final solve will).
        x0: warm start shaped like :math:`A^H y` (default :func:`initial_estimate`).
        search_iterations: TV iterations per search step (> 0); ``None``: 100 (discrepancy), or for hold-out the cap
            per candidate :data:`~rim_monai.classical.holdout.HOLDOUT_MAX_ITERATIONS` = 2000 (each candidate runs
            until its held-out error settles).
        max_evaluations: search steps at most (> 0).
        rtol: stop when the ratio residual / target is within ``1 ± rtol``.
        min_weight: lower bound of :math:`c` (:data:`MIN_TV_WEIGHT`).
        method: ``"discrepancy"``, ``"holdout"`` (k-space hold-out validation,
            :func:`~rim_monai.classical.holdout.choose_tv_weight_holdout`; ``sigma``, ``photons``, ``tau``, ``x0``,
            ``max_evaluations``, ``rtol`` and ``min_weight`` are not used) or ``"auto"``: hold-out for undersampled
            MRI (:func:`~rim_monai.classical.holdout.supports_holdout`), the discrepancy principle otherwise.
        return_details: return a :class:`WeightChoice` instead of the weight alone.

    Returns:
        :math:`\lambda` per sample (the leading dimensions of :math:`A^H y`), or a :class:`WeightChoice`.

    Raises:
        ValueError: naming ``tau``, ``search_iterations``, ``max_evaluations``, ``rtol``, ``min_weight``, ``method``
            or the arguments of :func:`~rim_monai.classical.noise.estimate_noise`.

    Example:
        >>> from rim_monai.operators import Identity
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.zeros(1, 1, 32, 32); x[..., 8:24, 8:24] = 1.0
        >>> y = x + 0.1 * torch.randn(x.shape, generator=g)
        >>> lam = choose_tv_weight(y, Identity((32, 32)), sigma=0.1)
        >>> lam.shape
        torch.Size([1, 1])
    """
    from rim_monai.classical.tv import default_weight_scale  # tv_pdhg(lam=None) calls this function

    check_measurements(y, operator)
    holdout = method == "holdout" or (method == "auto" and supports_holdout(operator))
    if search_iterations is None:
        search_iterations = HOLDOUT_MAX_ITERATIONS if holdout else 100
    for name, value in (("search_iterations", search_iterations), ("max_evaluations", max_evaluations)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}.")
    if not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(f"rtol: expected a number in (0, 1), got {rtol!r}.")
    if not isinstance(min_weight, (int, float)) or not 0 <= min_weight < MAX_TV_WEIGHT:
        raise ValueError(f"min_weight: expected a number in [0, {MAX_TV_WEIGHT:g}), got {min_weight!r}.")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}.")
    if holdout:
        lam, weight, x = choose_tv_weight_holdout(y, operator, nonneg=nonneg, iterations=search_iterations)
        choice = WeightChoice(lam, weight, None, None, 0, x, "holdout")
        return choice if return_details else lam
    nd = len(operator.domain_shape)
    with torch.no_grad():
        b = operator.adjoint(y)
        batch = tuple(b.shape[: b.ndim - nd])
        noise, target = discrepancy_target(y, operator, sigma, photons, tau, batch)
        scale = default_weight_scale(y, operator, b).double()
        x = initial_estimate(y, operator, nonneg) if x0 is None else x0
        search = _DiscrepancySearch(y, operator, noise, target, tau, math.log(max(min_weight, 1e-12)))
        u, ratio, x, evaluations = search.run(scale, x, nonneg, search_iterations, max_evaluations, rtol)
        weight = torch.exp(u)
        lam = (weight * scale).to(b.real.dtype)
    logger.info("TV weight by the discrepancy principle (tau %.3g, %s noise): c = %s, lambda = %s, residual/energy "
                "= %s after %d steps", tau, noise.kind, format_per_sample(weight), format_per_sample(lam),
                format_per_sample(ratio), evaluations)
    if return_details:
        return WeightChoice(lam, weight.to(b.real.dtype), ratio, noise, evaluations, x, "discrepancy", tau)
    return lam


def refine_discrepancy_weight(y: torch.Tensor, operator: LinearOperator, choice: WeightChoice, x: torch.Tensor,
                              rtol: float = 0.1) -> torch.Tensor | None:
    r"""A corrected discrepancy weight from a converged reconstruction ``x`` at ``choice.lam``, or ``None``.

    The search of :func:`choose_tv_weight` scores short runs, whose residual is not yet the converged one (on CT it
    is too large, so the weight comes out small: measured 1.5–2x below the discrepancy weight). With the converged
    ratio :math:`r` = residual / energy, samples with :math:`|\log(r/\tau)| > \log(1 + \mathrm{rtol})` get
    :math:`\lambda (\tau/r)^{1/0.7}` (0.7: the typical slope of :math:`\log r` in :math:`\log\lambda`; the factor is
    clamped to [1/4, 4]), the others keep theirs.

    Returns:
        The new :math:`\lambda` per sample, or ``None`` when every sample is within ``rtol`` (or the choice was not
        made by the discrepancy principle).
    """
    if choice.method != "discrepancy" or choice.noise is None or choice.tau is None:
        return None
    batch = tuple(choice.lam.shape)
    with torch.no_grad():
        search = _DiscrepancySearch(y, operator, choice.noise,
                                    choice.tau * reduce_to(choice.noise.energy, 0, batch), choice.tau, -math.inf)
        ratio = search.ratio(x)
        f = torch.log(ratio.clamp_min(1e-300) / choice.tau)
        off = f.abs() > math.log1p(rtol)
        if not bool(off.any()):
            return None
        factor = torch.exp((-f / _START_SLOPE).clamp(-math.log(4.0), math.log(4.0)))
        lam = torch.where(off, choice.lam * factor.to(choice.lam.dtype), choice.lam)
    logger.info("TV weight refined on the converged reconstruction: residual/energy %s -> lambda %s", format_per_sample(ratio),
                format_per_sample(lam))
    return lam


@dataclass
class _DiscrepancySearch:
    """The safeguarded secant search of :func:`choose_tv_weight` in ``u = log c``, batched per sample."""

    y: torch.Tensor
    operator: LinearOperator
    noise: NoiseModel
    target: torch.Tensor
    tau: float
    low: float

    def ratio(self, x: torch.Tensor) -> torch.Tensor:
        """Residual / noise energy per sample."""
        residual = reduce_to(self.noise.residual(self.operator(x) - self.y, len(self.operator.range_shape)), 0,
                             tuple(self.target.shape))
        return residual / torch.where(self.target > 0, self.target, torch.ones_like(self.target)) * self.tau

    def run(self, scale, x, nonneg, iterations, evaluations, rtol):
        """``(u, ratio, x, steps)`` after at most ``evaluations`` TV runs of ``iterations`` each."""
        from rim_monai.classical.tv import tv_pdhg

        nd, high = len(self.operator.domain_shape), math.log(MAX_TV_WEIGHT)
        u = torch.full_like(scale, math.log(START_TV_WEIGHT)).clamp_min(self.low)
        lo, hi = torch.full_like(u, -math.inf), torch.full_like(u, math.inf)
        done = torch.zeros(u.shape, dtype=torch.bool, device=u.device)
        prev, ratio, step_count = None, torch.ones_like(u), 0
        for step_count in range(1, evaluations + 1):
            lam = (torch.exp(u) * scale).to(x.real.dtype)
            x_new = tv_pdhg(self.y, self.operator, lam=lam, iterations=iterations, tol=0.0, nonneg=nonneg, x0=x)
            x = torch.where(expand(done, nd), x, x_new)  # finished samples keep their iterate (batch == single)
            ratio = torch.where(done, ratio, self.ratio(x))
            f = torch.log(ratio.clamp_min(1e-300) / self.tau)
            at_bound = ((f > 0) & (u <= self.low + 1e-9)) | ((f < 0) & (u >= high - 1e-9))
            done = done | (f.abs() <= math.log1p(rtol)) | at_bound
            if bool(done.all()):
                break
            lo = torch.where(f < 0, torch.maximum(lo, u), lo)
            hi = torch.where(f > 0, torch.minimum(hi, u), hi)
            step = _secant_step(u, f, prev, lo, hi).clamp(self.low, high)
            prev = (u, f)
            u = torch.where(done, u, step)
        return u, ratio, x, step_count

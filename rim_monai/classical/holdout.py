r"""Hold-out validation of the TV weight on undersampled k-space (MRI), where the noise is not what limits the image.

With undersampled MRI the reconstruction error lives mostly in the k-space that was *not* measured (aliasing), which
the discrepancy principle cannot see: the best TV weight on a grid sits at a residual of 0.9x to 7x the noise energy
depending on acceleration and SNR (``docs/classical.md``). Measured k-space can however stand in for unmeasured
k-space: hold out a fraction of the sampled lines (points, for 2D masks) outside the fully sampled centre,
reconstruct from the rest, and score how well each weight *predicts* the held-out data,

.. math::
    E_h(\lambda) = \sum_{i \in h} |(A x_\lambda^{(-h)} - y)_i|^2,

the noise on :math:`h` (a constant) plus the prediction error there, an estimate of the error on unmeasured k-space
(self-supervised validation, as in SSDU, Yaman et al. 2020). Holding out makes the training data slightly more
undersampled, which biases the choice towards a slightly larger weight (measured: within 0.15 dB of the best).

:func:`split_measurements` makes the split (deterministic: every 5th unit in order of :math:`|k|`, so every
frequency band keeps 80 %), :func:`choose_tv_weight_holdout` searches :math:`\lambda = c\,\mu s`
(:func:`~rim_monai.classical.default_weight_scale` of the full data) by continuation down a grid of :math:`c`
(:data:`HOLDOUT_GRID`, halving; each candidate warm-started from the one before and run until its :math:`E_h`
settles) and refines the minimum of :math:`E_h` by a parabola in :math:`\log c`. Candidates must be compared
converged: with a fixed budget per candidate (300 iterations) small weights, which converge slowest, score worse than
they are and the choice was up to 1.2 dB below the best weight at 40 dB SNR (``docs/classical.md``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from rim_monai.classical.batching import check_measurements, expand, format_per_sample
from rim_monai.classical.noise import readout_axis, reduce_to
from rim_monai.operators.fourier import MaskedFourier

__all__ = ["HOLDOUT_FRACTION", "HOLDOUT_GRID", "HOLDOUT_RTOL", "HOLDOUT_WINDOW", "HOLDOUT_MAX_ITERATIONS",
           "HOLDOUT_PATIENCE", "split_measurements", "choose_tv_weight_holdout", "supports_holdout"]

logger = logging.getLogger(__name__)

#: fraction of the sampled units outside the fully sampled centre that is held out
HOLDOUT_FRACTION: float = 0.2
#: the weight factors c the search descends (factor 2, 0.768 down to 0.0001875): at 40 dB SNR the best weight of some
#: real images lies below 0.0015 (docs/classical.md)
HOLDOUT_GRID: tuple[float, ...] = tuple(0.0001875 * 2**k for k in range(13))
#: a candidate has converged when its held-out error changed by at most this (relative) over HOLDOUT_WINDOW iterations
HOLDOUT_RTOL: float = 1e-3
#: iterations between two checks of a candidate's held-out error
HOLDOUT_WINDOW: int = 50
#: TV iterations per candidate at most
HOLDOUT_MAX_ITERATIONS: int = 2000
#: the descent stops after this many candidates in a row without a new minimum of the held-out error
HOLDOUT_PATIENCE: int = 2
# fewest outer units for a hold-out split (below it, the discrepancy principle is used)
_MIN_UNITS = 5


def _centre_run(sampled: torch.Tensor) -> tuple[int, int]:
    """First and last index of the contiguous run of sampled entries around the centre of a 1D pattern."""
    centre = sampled.shape[0] // 2
    if not bool(sampled[centre]):
        return centre, centre - 1
    lo = hi = centre
    while lo > 0 and bool(sampled[lo - 1]):
        lo -= 1
    while hi < sampled.shape[0] - 1 and bool(sampled[hi + 1]):
        hi += 1
    return lo, hi


def _held_units(order: torch.Tensor, fraction: float) -> torch.Tensor:
    """Every ``round(1/fraction)``-th of the units sorted by |k| (starting in the middle of the first stride)."""
    stride = max(2, round(1.0 / fraction))
    return order[stride // 2 :: stride]


def _split_plane(sampled: torch.Tensor, fraction: float) -> torch.Tensor | None:
    """Held-out 0/1 plane ``(H, W)`` of one sampling pattern, or ``None`` when it has too few outer units."""
    height, width = sampled.shape
    held = torch.zeros_like(sampled)
    axis = readout_axis(sampled)
    if axis is not None:
        lines = sampled.any(dim=-2) if axis == -2 else sampled.any(dim=-1)
        lo, hi = _centre_run(lines)
        index = torch.nonzero(lines).flatten()
        outer = index[(index < lo) | (index > hi)]
        if outer.numel() < _MIN_UNITS:
            return None
        centre = lines.shape[0] // 2
        chosen = _held_units(outer[torch.argsort((outer - centre).abs(), stable=True)], fraction)
        if axis == -2:
            held[:, chosen] = True
        else:
            held[chosen, :] = True
        return held
    ky = torch.arange(height, device=sampled.device) - height // 2
    kx = torch.arange(width, device=sampled.device) - width // 2
    box = torch.maximum(ky[:, None].abs(), kx[None, :].abs())
    calibrated = 0
    while calibrated < min(height, width) // 2 and bool(sampled[box <= calibrated].all()):
        calibrated += 1
    points = torch.nonzero(sampled & (box >= calibrated))
    if points.shape[0] < _MIN_UNITS:
        return None
    radius = (ky[points[:, 0]] ** 2 + kx[points[:, 1]] ** 2).double()
    chosen = points[_held_units(torch.argsort(radius, stable=True), fraction)]
    held[chosen[:, 0], chosen[:, 1]] = True
    return held


def supports_holdout(operator) -> bool:
    """Whether :func:`choose_tv_weight_holdout` applies: a :class:`~rim_monai.operators.MaskedFourier` (with the
    ``"replace"`` ability) whose every sampling pattern has at least 5 lines / points outside the sampled centre."""
    if not isinstance(operator, MaskedFourier) or not operator.supports("replace"):
        return False
    return split_measurements(operator) is not None


def split_measurements(operator: MaskedFourier, fraction: float = HOLDOUT_FRACTION
                       ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Split the mask of ``operator`` into a training and a held-out part.

    Units are the sampled lines of a 1D mask (:func:`~rim_monai.classical.noise.readout_axis`) or the sampled points of
    a 2D one, outside the contiguous fully sampled centre (the calibration lines / box), which always stays in the
    training part. Per mask plane (each sample and coil of a per-sample mask), every ``round(1/fraction)``-th unit in
    order of :math:`|k|` is held out.

    Args:
        operator: the MRI operator.
        fraction: the held-out fraction of the outer units, in ``(0, 0.5]``.

    Returns:
        ``(train_mask, held_mask)`` shaped and typed like ``operator.mask`` (broadcast to full planes), or ``None``
        when some plane has fewer than 5 outer units.

    Raises:
        ValueError: naming ``fraction`` outside ``(0, 0.5]``.
    """
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise ValueError(f"fraction: expected a held-out fraction in (0, 0.5], got {fraction!r}.")
    shape = operator.range_shape[-2:]
    mask = torch.broadcast_to(operator.mask, tuple(operator.mask.shape[:-2]) + tuple(shape))
    planes = (mask != 0).reshape(-1, *shape)
    held = []
    for plane in planes:
        part = _split_plane(plane, fraction)
        if part is None:
            return None
        held.append(part)
    held_mask = torch.stack(held).reshape(mask.shape).to(mask.dtype)
    return mask * (1 - held_mask), held_mask


def _parabola_minimum(u: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Per sample: the minimiser of the parabola through the best point of ``e`` (K, *batch) on the equispaced
    ``u`` (K,) and its neighbours, clamped to one grid step; an end point stays where it is."""
    k = e.shape[0]
    best = e.argmin(dim=0)
    inner = best.clamp(1, k - 2) if k >= 3 else best
    if k < 3:
        return u.to(e.dtype)[best]
    take = lambda offset: torch.gather(e, 0, (inner + offset)[None])[0]  # noqa: E731
    left, mid, right = take(-1), take(0), take(1)
    step = float(u[1] - u[0])
    curvature = left - 2 * mid + right
    shift = torch.where(curvature > 0, 0.5 * step * (left - right) / curvature.clamp_min(1e-300), torch.zeros_like(mid))
    centre = u.to(e.dtype)[inner] + shift.clamp(-step, step)
    at_end = (best == 0) | (best == k - 1)
    return torch.where(at_end, u.to(e.dtype)[best], centre)


def choose_tv_weight_holdout(y: torch.Tensor, operator: MaskedFourier, nonneg: bool = False,
                             iterations: int = HOLDOUT_MAX_ITERATIONS, fraction: float = HOLDOUT_FRACTION,
                             rtol: float = HOLDOUT_RTOL) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""TV weight :math:`\lambda = c\,\mu s` per sample that best predicts held-out k-space (module docstring).

    Search: continuation down :data:`HOLDOUT_GRID` (factor 2) from its largest :math:`c`, each candidate a TV run on
    the training data warm-started from its larger neighbour's reconstruction (the first from
    :func:`~rim_monai.classical.parameter_choice.initial_estimate`), run until its held-out error :math:`E_h`
    changes by at most ``rtol`` relative over :data:`HOLDOUT_WINDOW` iterations (at most ``iterations``), so that
    candidates are compared converged: with a fixed budget the small weights, which converge slowest, lose. A sample
    stops descending once :math:`E_h` has risen :data:`HOLDOUT_PATIENCE` candidates in a row past its minimum (or at
    the grid's end); then the parabola through the minimum and its neighbours in :math:`\log c`.

    Args:
        y: k-space ``(*batch, *operator.range_shape)``.
        operator: the MRI operator (:func:`supports_holdout`).
        nonneg: solve with :math:`x \ge 0`.
        iterations: TV iterations per candidate at most (> 0).
        fraction: held-out fraction of the outer units.
        rtol: relative change of :math:`E_h` per :data:`HOLDOUT_WINDOW` iterations below which a candidate has
            converged (> 0).

    Returns:
        ``(lam, weight, x)``: :math:`\lambda` and :math:`c` per sample (leading dimensions of :math:`A^H y`), and the
        training reconstruction at the best candidate (a warm start for the final solve).

    Raises:
        ValueError: naming ``operator`` when it does not support the split, or ``iterations`` / ``fraction`` /
            ``rtol``.
    """
    from rim_monai.classical.parameter_choice import initial_estimate
    from rim_monai.classical.tv import default_weight_scale

    check_measurements(y, operator)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations: expected a positive integer, got {iterations!r}.")
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(f"rtol: expected a number in (0, 1), got {rtol!r}.")
    split = split_measurements(operator, fraction) if isinstance(operator, MaskedFourier) else None
    if split is None:
        raise ValueError("operator: hold-out validation needs a MaskedFourier with at least 5 sampled lines (or "
                         "points) outside the fully sampled centre; use the discrepancy principle instead.")
    train_mask, held = split
    nd = len(operator.domain_shape)
    with torch.no_grad():
        problem = _HoldoutProblem(operator, operator.replace(mask=train_mask), y, y * train_mask, held, nonneg)
        b = operator.adjoint(y)
        batch = tuple(b.shape[: b.ndim - nd])
        scale = default_weight_scale(y, operator, b).double()
        x = initial_estimate(problem.y_train, problem.train_op, nonneg)
        grid = torch.tensor(HOLDOUT_GRID, dtype=torch.float64, device=b.device)
        e = torch.full((len(HOLDOUT_GRID),) + batch, math.inf, dtype=torch.float64, device=b.device)
        best_x, best_e = x, torch.full(batch, math.inf, dtype=torch.float64, device=b.device)
        rises = torch.zeros(batch, dtype=torch.long, device=b.device)
        done = torch.zeros(batch, dtype=torch.bool, device=b.device)
        total = 0
        for j in range(len(HOLDOUT_GRID) - 1, -1, -1):
            x_new, e_new, used = problem.converge(grid[j] * scale, x, done, iterations, rtol)
            total += used
            x = torch.where(expand(done, nd), x, x_new)
            e[j] = torch.where(done, e[j], e_new)
            better = ~done & (e_new < best_e)
            best_x = torch.where(expand(better, nd), x, best_x)
            best_e = torch.where(better, e_new, best_e)
            rises = torch.where(better, torch.zeros_like(rises), rises + (~done).long())
            done = done | (rises >= HOLDOUT_PATIENCE)
            if bool(done.all()):
                break
        steps = torch.log(grid)
        weight = torch.exp(_parabola_minimum(steps - steps[0], e) + steps[0])
        lam = (weight * scale).to(b.real.dtype)
    logger.info("TV weight by k-space hold-out validation (%d of the sampled units held out, %d TV iterations): c = "
                "%s, lambda = %s", int(held.sum()), total, format_per_sample(weight), format_per_sample(lam))
    return lam, weight.to(b.real.dtype), best_x


@dataclass
class _HoldoutProblem:
    """The training problem and the held-out score of :func:`choose_tv_weight_holdout`."""

    operator: MaskedFourier
    train_op: MaskedFourier
    y: torch.Tensor
    y_train: torch.Tensor
    held: torch.Tensor
    nonneg: bool

    def error(self, x: torch.Tensor) -> torch.Tensor:
        """The held-out error :math:`E_h` of reconstructions ``x`` per sample (float64)."""
        error = ((self.operator(x) - self.y) * self.held).abs() ** 2
        batch = tuple(x.shape[: x.ndim - len(self.operator.domain_shape)])
        return reduce_to(error.double(), len(self.operator.range_shape), batch)

    def converge(self, lam: torch.Tensor, start: torch.Tensor, frozen: torch.Tensor, iterations: int, rtol: float
                 ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """TV on the training data at ``lam`` (per sample) from ``start`` until :math:`E_h` settles: a sample stops
        when its :math:`E_h` changed by at most ``rtol`` relative over the last :data:`HOLDOUT_WINDOW` iterations
        (``frozen`` samples at once); ``(x, E_h, iterations run)``."""
        from rim_monai.classical.tv import tv_pdhg

        state = {"last": None, "k": 0}

        def settled(k: int, x: torch.Tensor) -> torch.Tensor | None:
            state["k"] = k
            if k % HOLDOUT_WINDOW:
                return frozen if k == 1 else None
            e, last = self.error(x), state["last"]
            state["last"] = e
            return None if last is None else (last - e).abs() <= rtol * e

        x = tv_pdhg(self.y_train, self.train_op, lam=lam.to(start.real.dtype), iterations=iterations, tol=0.0,
                    nonneg=self.nonneg, x0=start, callback=settled)
        return x, self.error(x), state["k"]

r"""Derivative-free 1D minimisation for operator parameters that autograd cannot see (R&R+ outer search).

A CT geometry parameter (detector shift, angle offset, source/detector distance) enters the system matrix, not a
differentiable torch graph, so R&R+ estimates it by minimising the data term :math:`\psi \mapsto D(\theta, \psi)`
with :math:`\theta` fixed, one parameter at a time. :func:`grid_golden_search` first evaluates a coarse uniform grid
over the bracket (robust to the local minima a data term has far from the truth), then refines the best grid cell by
golden-section search until the bracket is narrower than ``tol``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["golden_section_search", "grid_golden_search", "SearchResult"]

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # 1 / golden ratio


class SearchResult(tuple):
    """``(x, fx, evaluations)``: the minimiser found, its objective value and the number of evaluations."""

    __slots__ = ()

    def __new__(cls, x: float, fx: float, evaluations: int) -> "SearchResult":
        return super().__new__(cls, (float(x), float(fx), int(evaluations)))

    @property
    def x(self) -> float:
        return self[0]

    @property
    def fx(self) -> float:
        return self[1]

    @property
    def evaluations(self) -> int:
        return self[2]


def _check_bracket(lo: float, hi: float, tol: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"bounds: expected finite lo < hi, got ({lo}, {hi}).")
    if not tol > 0:
        raise ValueError(f"tol: expected a positive number, got {tol}.")


def golden_section_search(
    f: Callable[[float], float], lo: float, hi: float, tol: float = 1e-3, max_evaluations: int = 100
) -> SearchResult:
    r"""Minimise a unimodal function on ``[lo, hi]`` by golden-section search.

    Each iteration shrinks the bracket by the factor :math:`1/\varphi \approx 0.618` with one new evaluation; the
    search stops when the bracket is narrower than ``tol`` (about :math:`\log(\text{width}/\text{tol}) / 0.48`
    evaluations) or after ``max_evaluations``. The best point evaluated is returned (for a function that is not
    unimodal on the bracket it is a local minimiser).

    Args:
        f: the objective, a Python float of a Python float.
        lo: lower end of the bracket.
        hi: upper end of the bracket.
        tol: stop when ``hi - lo < tol``.
        max_evaluations: hard cap on the number of evaluations of ``f``.

    Returns:
        :class:`SearchResult` ``(x, f(x), evaluations)``.

    Raises:
        ValueError: naming ``bounds`` or ``tol`` when the bracket is empty or the tolerance is not positive.

    Example:
        >>> x, fx, n = golden_section_search(lambda t: (t - 0.3) ** 2, -1.0, 1.0, tol=1e-6)
        >>> abs(x - 0.3) < 1e-5
        True
    """
    _check_bracket(lo, hi, tol)
    a, b = float(lo), float(hi)
    c, d = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
    fc, fd = float(f(c)), float(f(d))
    evaluations = 2
    best = min((fc, c), (fd, d))
    while b - a >= tol and evaluations < max_evaluations:
        if fc <= fd:  # the minimum lies in [a, d]
            b, d, fd = d, c, fc
            c = b - _INV_PHI * (b - a)
            fc = float(f(c))
            best = min(best, (fc, c))
        else:  # the minimum lies in [c, b]
            a, c, fc = c, d, fd
            d = a + _INV_PHI * (b - a)
            fd = float(f(d))
            best = min(best, (fd, d))
        evaluations += 1
    return SearchResult(best[1], best[0], evaluations)


def grid_golden_search(
    f: Callable[[float], float],
    lo: float,
    hi: float,
    grid_points: int = 9,
    tol: float = 1e-3,
    max_evaluations: int = 100,
) -> SearchResult:
    """Coarse-to-fine 1D minimisation: a uniform grid over ``[lo, hi]``, then golden section around the best point.

    The golden-section bracket is the two grid cells next to the best grid point, so a minimum narrower than a grid
    cell elsewhere can be missed; choose ``grid_points`` so that a cell is smaller than the basin of the minimum.

    Args:
        f: the objective.
        lo: lower end of the search interval.
        hi: upper end of the search interval.
        grid_points: number of grid points, ends included (at least 2).
        tol: width of the final golden-section bracket.
        max_evaluations: cap on the evaluations of the golden-section stage.

    Returns:
        :class:`SearchResult` with the best point of both stages and the total number of evaluations.

    Raises:
        ValueError: naming ``bounds``, ``tol`` or ``grid_points``.

    Example:
        >>> x, fx, n = grid_golden_search(lambda t: abs(t - 1.25), -3.0, 3.0, grid_points=13, tol=1e-4)
        >>> abs(x - 1.25) < 1e-3
        True
    """
    _check_bracket(lo, hi, tol)
    if int(grid_points) < 2:
        raise ValueError(f"grid_points: expected at least 2, got {grid_points}.")
    n = int(grid_points)
    step = (hi - lo) / (n - 1)
    grid = [lo + i * step for i in range(n)]
    values = [float(f(x)) for x in grid]
    i = min(range(n), key=values.__getitem__)
    best = SearchResult(grid[i], values[i], n)
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, n - 1)]
    if b - a < tol:
        return best
    fine = golden_section_search(f, a, b, tol=tol, max_evaluations=max_evaluations)
    total = n + fine.evaluations
    if fine.fx <= best.fx:
        return SearchResult(fine.x, fine.fx, total)
    return SearchResult(best.x, best.fx, total)

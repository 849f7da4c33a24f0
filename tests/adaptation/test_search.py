import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from rim_monai.adaptation import golden_section_search, grid_golden_search

FUNCTIONS = [
    ("quadratic", lambda t: (t - 0.3) ** 2, -1.0, 1.0),
    ("abs", lambda t: abs(t + 1.7), -3.0, 3.0),
    ("quartic", lambda t: (t - 2.2) ** 4 + 0.1 * t, 0.0, 4.0),
    ("cosh", lambda t: math.cosh(t - 0.01), -0.5, 0.5),
]


@pytest.mark.parametrize("name,f,lo,hi", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_golden_section_matches_scipy_bounded(name, f, lo, hi):
    ref = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9}).x
    x, fx, n = golden_section_search(f, lo, hi, tol=1e-6)
    assert abs(x - ref) < 1e-5
    assert fx == pytest.approx(f(x))
    # the bracket shrinks by 0.618 per evaluation
    assert n <= 2 + math.ceil(math.log((hi - lo) / 1e-6) / math.log(1 / 0.618)) + 1


def test_grid_stage_escapes_a_local_minimum():
    # global minimum at 2.0, a shallower local one at -2.0 that plain golden section on [-3, 3] can fall into
    f = lambda t: min((t + 2.0) ** 2 + 0.5, 2.0 * (t - 2.0) ** 2)  # noqa: E731
    x, fx, _ = grid_golden_search(f, -3.0, 3.0, grid_points=13, tol=1e-6)
    assert abs(x - 2.0) < 1e-4 and fx < 1e-7
    xs = np.linspace(-3, 3, 60001)
    assert fx <= min(f(t) for t in xs) + 1e-8


def test_minimum_at_the_bound():
    x, _, _ = grid_golden_search(lambda t: t, 0.0, 1.0, grid_points=5, tol=1e-6)
    assert x == pytest.approx(0.0, abs=1e-6)


def test_max_evaluations_is_respected():
    calls = []
    golden_section_search(lambda t: calls.append(t) or t * t, -1.0, 1.0, tol=1e-12, max_evaluations=7)
    assert len(calls) == 7


@pytest.mark.parametrize(
    "kwargs,name",
    [({"lo": 1.0, "hi": 1.0}, "bounds"), ({"lo": 0.0, "hi": math.inf}, "bounds"), ({"tol": 0.0}, "tol"),
     ({"grid_points": 1}, "grid_points")],
)
def test_bad_arguments(kwargs, name):
    args = {"lo": -1.0, "hi": 1.0, "tol": 1e-3} | kwargs
    with pytest.raises(ValueError, match=name):
        grid_golden_search(lambda t: t * t, **args)

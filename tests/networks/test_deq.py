"""Deep equilibrium specifics: Anderson acceleration, the fixed-point residual, implicit differentiation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rim_monai.networks import DeepEquilibrium, anderson
from rim_monai.networks.utils import step_scale, to_channels
from tests.networks.problems import make_problem


def test_anderson_solves_a_linear_fixed_point():
    rng = np.random.default_rng(0)
    n, batch = 30, 3
    M = rng.standard_normal((batch, n, n))
    M *= 0.9 / np.linalg.norm(M, 2, axis=(1, 2))[:, None, None]
    b = rng.standard_normal((batch, n))
    expected = np.stack([np.linalg.solve(np.eye(n) - M[i], b[i]) for i in range(batch)])
    Mt, bt = torch.from_numpy(M), torch.from_numpy(b)
    z, stats = anderson(lambda z: (Mt @ z.unsqueeze(-1)).squeeze(-1) + bt, torch.zeros(batch, n, dtype=torch.float64), max_iter=100, tol=1e-10)
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-7, atol=1e-8)
    assert stats["residual"] < 1e-10
    # acceleration: far fewer evaluations than the plain iteration, which contracts by only 0.9 per step
    assert stats["iterations"] < 60


def _contractive_deq(problem, mode="gradient", **kwargs):
    torch.manual_seed(0)
    net = DeepEquilibrium(problem.channels, problem.complex_, mode=mode, features=(8,), iterations=100, tol=1e-6, **kwargs)
    with torch.no_grad():  # a small but non-zero regulariser, so the map is non-linear yet contractive
        last = [m for m in net.regularizer.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.normal_(0, 0.01)
    return net


@pytest.mark.parametrize("mode", ["gradient", "prox"])
@pytest.mark.parametrize("problem_name", ["denoise", "dense-projection", "mri-8coil"])
def test_fixed_point_residual_below_1e3(problem_name, mode):
    problem = make_problem(problem_name)
    net = _contractive_deq(problem, mode).eval()
    with torch.no_grad():
        x = net(problem.y, problem.A)
        z = to_channels(x)
        fz = net.iteration(z, problem.y, problem.A, step_scale(problem.A))
    residual = float((fz - z).flatten(1).norm(dim=1).max() / fz.flatten(1).norm(dim=1).min())
    assert residual < 1e-3
    assert net.last_stats["forward_residual"] < 1e-3
    assert 1 <= net.last_stats["forward_iterations"] <= 100


def test_implicit_gradient_equals_gradient_through_the_converged_iteration():
    problem = make_problem("dense-projection")
    net = _contractive_deq(problem, backward_tol=1e-12, backward_iterations=200).double()
    net.tol = 1e-12
    y, A = problem.y.double(), problem.A
    params = [p for p in net.parameters()]

    loss = (net(y, A) - problem.x.double()).square().sum()
    implicit = torch.autograd.grad(loss, params)
    assert net.last_stats["backward_fallback"] is False and net.last_stats["backward_residual"] < 1e-8

    # reference: backpropagate through 400 plain iterations of the contraction
    scale = step_scale(A)
    z = to_channels(A.adjoint(y) * scale)
    for _ in range(400):
        z = net.iteration(z, y, A, scale)
    unrolled = torch.autograd.grad((z - problem.x.double()).square().sum(), params)
    largest = max(float(g.abs().max()) for g in unrolled)
    for a, b in zip(implicit, unrolled):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8 * largest)


def test_jacobian_free_gradient_differs_but_is_finite():
    problem = make_problem("dense-projection")
    grads = {}
    for backward in ("implicit", "jacobian_free"):
        net = _contractive_deq(problem, backward=backward)
        (net(problem.y, problem.A) - problem.x).square().sum().backward()
        grads[backward] = net.raw_step.grad.clone()
        assert ("backward_iterations" in net.last_stats) == (backward == "implicit")
    assert torch.isfinite(grads["jacobian_free"]).all()
    assert not torch.allclose(grads["implicit"], grads["jacobian_free"])


@pytest.mark.parametrize("kwargs, error", [({"mode": "newton"}, "^mode"), ({"backward": "unrolled"}, "^backward"),
                                           ({"step": 0.0}, "^step"), ({"weight": -1.0}, "^weight")])
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        DeepEquilibrium(**kwargs)

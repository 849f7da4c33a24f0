"""The scale-equivariant wrapper: statistics, zero measurements, noise levels, complex data, lists of estimates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rim_monai.networks import RIM, FBPConvNet, ScaleEquivariant, scale_statistic
from tests.networks.problems import make_problem


@pytest.mark.parametrize(
    "statistic, reference",
    [
        ("rms", lambda a: np.sqrt((a**2).mean(axis=1))),
        ("p99", lambda a: np.quantile(a, 0.99, axis=1)),
        ("max", lambda a: a.max(axis=1)),
    ],
)
def test_statistics_against_numpy(statistic, reference):
    x = torch.randn(3, 2, 7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = reference(np.abs(x.numpy()).reshape(3, -1))
    np.testing.assert_allclose(scale_statistic(x, statistic).numpy(), expected, rtol=1e-12)
    c = 37.5
    torch.testing.assert_close(scale_statistic(c * x, statistic), c * scale_statistic(x, statistic))


def test_unknown_statistic():
    with pytest.raises(ValueError, match="^statistic"):
        ScaleEquivariant(RIM(features=(4, 4), zero_init_update=False), statistic="median")


def test_zero_measurements_are_safe():
    problem = make_problem("denoise")
    net = ScaleEquivariant(RIM(features=(4, 4), iterations=2, zero_init_update=False)).eval()
    zeros = torch.zeros_like(problem.y)
    assert torch.equal(net.scale(zeros, problem.A), torch.ones(2))
    assert torch.isfinite(net(zeros, problem.A)).all()


@pytest.mark.parametrize("c", [1e-3, 1e3])
def test_noise_level_is_scaled_with_the_data(c):
    problem = make_problem("denoise")
    net = ScaleEquivariant(RIM(features=(8, 8), iterations=3, zero_init_update=False)).eval()
    sigma = torch.tensor([0.05, 0.2])
    with torch.no_grad():
        base = net(problem.y, problem.A, sigma=sigma, return_all=True)
        scaled = net(c * problem.y, problem.A, sigma=c * sigma, return_all=True)
    assert isinstance(scaled, list) and len(scaled) == 3
    for a, b in zip(scaled, base):
        torch.testing.assert_close(a, c * b, rtol=1e-4, atol=1e-5 * c)
    with torch.no_grad():  # and the noise level matters
        other = net(problem.y, problem.A, sigma=10 * sigma)
    assert not torch.allclose(other, base[-1])


@pytest.mark.parametrize("problem_name", ["ct-parallel", "mri-8coil"])
@pytest.mark.parametrize("c", [1e-3, 1e3])
def test_equivariance_on_ct_and_mri(problem_name, c):
    problem = make_problem(problem_name)
    net = ScaleEquivariant(RIM(complex_=problem.complex_, features=(4, 4), iterations=2, zero_init_update=False)).eval()
    with torch.no_grad():
        base, scaled = net(problem.y, problem.A), net(c * problem.y, problem.A)
    torch.testing.assert_close(scaled, c * base, rtol=1e-4, atol=1e-5 * c * float(base.abs().max()))
    torch.testing.assert_close(net.scale(c * problem.y, problem.A), c * net.scale(problem.y, problem.A))


def test_scale_is_on_the_image_scale_for_ct():
    # dividing by ||A||^2 puts s near the image intensities even though A^T A has a large gain
    problem = make_problem("ct-parallel")
    s = ScaleEquivariant(RIM(features=(4, 4), zero_init_update=False), statistic="max").scale(problem.y, problem.A)
    assert torch.all(s < 10 * problem.x.abs().amax()) and torch.all(s > 0.01 * problem.x.abs().amax())


def test_sigma_needs_a_network_that_takes_it():
    problem = make_problem("denoise")
    net = ScaleEquivariant(FBPConvNet(channels=(4, 8), strides=(2,)))
    with pytest.raises(ValueError, match="^sigma"):
        net(problem.y, problem.A, sigma=0.1)


def test_bad_y_is_named():
    problem = make_problem("denoise")
    net = ScaleEquivariant(RIM(features=(4, 4), zero_init_update=False))
    with pytest.raises(ValueError, match="^y: expected shape"):
        net(problem.y[..., :-1], problem.A)

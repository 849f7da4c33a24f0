import numpy as np
import pytest
import torch

from rim_monai.adaptation import data_consistency, proximity_penalty, transmission_noise_energy, transmission_weights
from rim_monai.operators import Identity
from tests.adaptation.toys import GaussBlur


def test_data_consistency_matches_numpy():
    g = torch.Generator().manual_seed(0)
    op = GaussBlur((8, 8), sigma=1.2)
    x, y = torch.randn(3, 1, 8, 8, generator=g), torch.randn(3, 1, 8, 8, generator=g)
    w = torch.rand(3, 1, 8, 8, generator=g)
    r = op(x).numpy() - y.numpy()
    np.testing.assert_allclose(data_consistency(x, op, y).numpy(), (r**2).sum(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(
        data_consistency(x, op, y, w).numpy(), (w.numpy() * r**2).sum(axis=(1, 2, 3)), rtol=1e-5
    )


def test_data_consistency_complex_uses_the_modulus():
    op = Identity((2, 2), complex_=True)
    x = torch.full((1, 2, 2), 1 + 1j, dtype=torch.complex64)
    y = torch.zeros(1, 2, 2, dtype=torch.complex64)
    assert float(data_consistency(x, op, y)) == pytest.approx(8.0)


def test_proximity_penalty_and_gradient():
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    b = torch.nn.Parameter(torch.ones(2, 2))
    ref = [torch.zeros(2), torch.ones(2, 2)]
    value = proximity_penalty([a, b], ref)
    assert float(value.detach()) == pytest.approx(5.0)
    value.backward()
    torch.testing.assert_close(a.grad, 2 * a.detach())
    with pytest.raises(ValueError, match="reference"):
        proximity_penalty([a], ref)
    with pytest.raises(ValueError, match="reference"):
        proximity_penalty([a, b], [torch.zeros(3), torch.ones(2, 2)])
    assert float(proximity_penalty([], [])) == 0.0


def test_transmission_weights_are_inverse_poisson_variances():
    y = torch.tensor([[[0.0, 0.5, 2.0]], [[1.0, 1.0, 1.0]]])
    w = transmission_weights(y)
    torch.testing.assert_close(w.mean(dim=(1, 2)), torch.ones(2))
    ratio = (w[0] / torch.exp(-y[0])).flatten()
    torch.testing.assert_close(ratio, ratio[0].expand(3))  # proportional to exp(-y)
    torch.testing.assert_close(w[1], torch.ones(1, 3))


def test_transmission_noise_energy_matches_simulated_poisson_noise():
    """Sum of exp(y) / I0 is the expected ||y - p||^2 of log-transformed Poisson counts (within 3 % on 20k bins)."""
    g = torch.Generator().manual_seed(0)
    photons = 1e4
    p = 3.0 * torch.rand(2, 1, 100, 200, generator=g, dtype=torch.float64)  # line integrals
    counts = torch.poisson(photons * torch.exp(-p), generator=g)
    y = -torch.log(counts / photons)
    energy = transmission_noise_energy(y, photons)
    actual = ((y - p) ** 2).sum(dim=(1, 2, 3))
    assert energy.shape == (2,)
    torch.testing.assert_close(energy, actual, rtol=0.03, atol=0.0)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1e4"):
        with pytest.raises(ValueError, match="photons"):
            transmission_noise_energy(y, bad)

"""Noise levels: the energies against their formulas and the estimators against known noise."""

from __future__ import annotations

import math

import pytest
import torch

from rim_monai.classical.noise import (
    estimate_kspace_sigma,
    estimate_noise,
    estimate_photons,
    estimate_sinogram_sigma,
    gaussian_noise_energy,
    measured_entries,
    transmission_noise_energy,
)
from rim_monai.operators import Identity, poisson_disc_mask, random_mask
from tests.classical.helpers import noisy_kspace, squares_phantom


def _smooth_sinogram(views: int = 40, bins: int = 96, peak: float = 4.0) -> torch.Tensor:
    """Line integrals of a smooth object: a Gaussian bump along the detector that drifts with the view."""
    u = torch.linspace(-1, 1, bins, dtype=torch.float64)[None, :]
    shift = 0.2 * torch.sin(torch.linspace(0, math.pi, views, dtype=torch.float64))[:, None]
    return peak * torch.exp(-(((u - shift) / 0.45) ** 2))


def _transmission(photons: float, seed: int = 0, batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    line = _smooth_sinogram().expand(batch, 1, -1, -1)
    counts = torch.poisson(photons * torch.exp(-line), generator=g).clamp_min(0.1)
    return -torch.log(counts / photons)


def test_gaussian_and_transmission_energy_formulas():
    assert float(gaussian_noise_energy(0.5, torch.tensor([100.0]))[0]) == pytest.approx(25.0)
    per_coil = gaussian_noise_energy(torch.tensor([[1.0, 2.0]]), torch.tensor([[10.0, 10.0]]))
    assert per_coil.tolist() == [50.0]
    y = torch.log(torch.tensor([[[1.0, 2.0, 4.0]]]))  # e^y = 1, 2, 4
    assert float(transmission_noise_energy(y, photons=10.0)[0]) == pytest.approx(0.7)
    weights = torch.tensor([1.0, 0.0, 1.0])
    assert float(transmission_noise_energy(y, 10.0, weights=weights)[0]) == pytest.approx(0.5)
    # y = -log(N/I0)/s: the variance e^{s y}/(I0 s^2)
    assert float(transmission_noise_energy(y / 2, 10.0, attenuation_scale=2.0)[0]) == pytest.approx(0.7 / 4)
    with pytest.raises(ValueError, match="^photons:"):
        transmission_noise_energy(y, photons=0.0)


@pytest.mark.parametrize("photons", [1e3, 1e4, 1e5])
def test_estimate_photons_recovers_the_dose(photons):
    y = _transmission(photons, batch=2)
    estimate = estimate_photons(y)
    assert estimate.shape == (2, 1)
    assert bool(((estimate / photons - 1).abs() < 0.15).all()), estimate


def test_estimate_photons_with_attenuation_scale():
    s = 0.5
    y = _transmission(1e4) / s  # y = -log(N/I0)/s
    assert float(estimate_photons(y, attenuation_scale=s)[0, 0]) == pytest.approx(1e4, rel=0.15)


def test_estimate_sinogram_sigma_recovers_gaussian_noise():
    g = torch.Generator().manual_seed(1)
    clean = _smooth_sinogram().expand(3, 1, -1, -1)
    sigma = torch.tensor([0.01, 0.05, 0.2], dtype=torch.float64)[:, None, None, None]
    y = clean + sigma * torch.randn(clean.shape, generator=g, dtype=torch.float64)
    estimate = estimate_sinogram_sigma(y)
    assert bool(((estimate / sigma.reshape(3, 1) - 1).abs() < 0.1).all()), estimate


@pytest.mark.parametrize("readout", ["columns", "rows"])
def test_estimate_kspace_sigma_one_dimensional_masks(readout):
    mask = random_mask((128, 128), 4, seed=0)
    mask = mask if readout == "columns" else mask.T.contiguous()
    y, A = noisy_kspace(mask, 0.02)
    sigma = estimate_kspace_sigma(y, A.mask)
    assert sigma.shape == (1, 4)
    assert bool(((sigma / 0.02 - 1).abs() < 0.2).all()), sigma  # 96 background values per block at 128²
    assert float((sigma**2).mean().sqrt()) == pytest.approx(0.02, rel=0.1)


def test_estimate_kspace_sigma_small_image_pools_the_small_blocks():
    mask = random_mask((32, 32), 4, seed=0)  # background blocks of fewer than 8 values each
    y, A = noisy_kspace(mask, 0.02, n=32)
    sigma = estimate_kspace_sigma(y, A.mask)
    assert sigma.shape == (1, 4) and bool(((sigma / 0.02 - 1).abs() < 0.6).all()), sigma


def test_estimate_kspace_sigma_two_dimensional_mask_falls_back_to_the_corners():
    mask = poisson_disc_mask((128, 128), 3, seed=0).float()
    y, A = noisy_kspace(mask, 0.05)
    sigma = estimate_kspace_sigma(y, A.mask)
    assert bool(((sigma / 0.05 - 1).abs() < 0.25).all()), sigma


def test_estimate_kspace_sigma_without_corner_samples_uses_the_outermost_entries():
    """A 2D mask that samples nothing outside the inscribed disc (an elliptical Poisson disc) still gets an estimate,
    from its outermost sampled entries: an upper bound of the noise, close to it where the signal has decayed; a
    mask of fewer than 8 entries cannot be used."""
    n = 128
    ky, kx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    mask = poisson_disc_mask((n, n), 3, seed=0).float() * (ky**2 + kx**2 < 0.95).float()
    y, A = noisy_kspace(mask, 0.05)
    sigma = estimate_kspace_sigma(y, A.mask)
    assert sigma.shape == (1, 4) and bool(((sigma / 0.05 - 1).abs() < 0.3).all()), sigma
    sparse = torch.zeros(n, n)
    sparse[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 2] = 1  # 6 entries
    with pytest.raises(ValueError, match="^y: too few sampled k-space entries"):
        estimate_kspace_sigma(noisy_kspace(sparse, 0.05)[0], sparse)


def test_estimate_noise_chooses_the_model():
    mask = random_mask((128, 128), 4, seed=0)
    y, A = noisy_kspace(mask, 0.02)
    given = estimate_noise(y, A, sigma=0.02)
    count = float(measured_entries(y, A).sum())
    assert given.kind == "gaussian" and not given.estimated
    assert float(given.energy[0]) == pytest.approx(count * 0.02**2)  # only the sampled entries count
    estimated = estimate_noise(y, A)
    assert estimated.estimated and float(estimated.energy[0]) == pytest.approx(count * 0.02**2, rel=0.2)
    # real data with an operator that has no special model: white Gaussian noise from second differences
    g = torch.Generator().manual_seed(2)
    image = squares_phantom(64, dtype=torch.float64)[None, None]
    noisy = image + 0.1 * torch.randn(image.shape, generator=g, dtype=torch.float64)
    model = estimate_noise(noisy, Identity((64, 64)))
    assert model.kind == "gaussian" and float(model.level[0, 0]) == pytest.approx(0.1, rel=0.15)


def test_transmission_model_leaves_out_starved_bins():
    A = pytest.importorskip("rim_monai.operators.tomography").RayTransform
    if pytest.importorskip("importlib").util.find_spec("astra") is None:
        pytest.skip("astra is not installed")
    op = A((32, 32), num_angles=20, backend="matrix")
    x = torch.zeros(1, 1, 32, 32)
    x[..., 8:24, 8:24] = 0.4  # optical depth up to 6.4: some bins get no photon at I0 = 100
    g = torch.Generator().manual_seed(0)
    counts = torch.poisson(100.0 * torch.exp(-op(x).double()), generator=g).clamp_min(0.1)
    y = (-torch.log(counts / 100.0)).float()
    model = estimate_noise(y, op, photons=100.0)
    assert model.kind == "transmission"
    assert bool((model.weights[counts < 2] == 0).all()) and bool((model.weights[counts >= 2] == 1).all())
    kept = transmission_noise_energy(y, 100.0, weights=model.weights)
    assert float(model.energy.flatten()[0]) == pytest.approx(float(kept.flatten()[0]))
    automatic = estimate_noise(y, op)  # a tomography operator: post-log transmission data by default
    assert automatic.kind == "transmission" and automatic.estimated


@pytest.mark.parametrize(
    "kwargs, name",
    [({"sigma": 0.1, "photons": 1e4}, "sigma"), ({"sigma": -1.0}, "sigma"), ({"photons": 0}, "photons"),
     ({"sigma": float("nan")}, "sigma"), ({"attenuation_scale": 0.0}, "attenuation_scale"),
     ({"min_counts": -1}, "min_counts")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        estimate_noise(torch.zeros(1, 1, 16, 16), Identity((16, 16)), **kwargs)


def test_photons_need_real_data():
    with pytest.raises(ValueError, match="^photons:"):
        estimate_noise(torch.zeros(1, 16, 16, dtype=torch.complex64), Identity((16, 16), complex_=True), photons=10.0)

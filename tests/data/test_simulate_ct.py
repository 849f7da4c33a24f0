"""Sinogram simulation: operator consistency, noise models, finer grid, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from monai.data import MetaTensor

from rim_monai.data import SimulateSinogramd, add_sinogram_noise, finer_ray_transform
from rim_monai.operators import RayTransform


@pytest.fixture(scope="module")
def op():
    return RayTransform((24, 24), num_angles=10, backend="matrix")


def _disc(n=24):
    y, x = torch.meshgrid(torch.arange(n) - n / 2 + 0.5, torch.arange(n) - n / 2 + 0.5, indexing="ij")
    return MetaTensor(((x**2 + y**2) < (n / 3) ** 2).float()[None], meta={"filename_or_obj": "disc"})


def test_noiseless_is_the_operator(op):
    out = SimulateSinogramd(operator=op, noise=None)({"image": _disc()})
    assert out["sinogram"].shape == (1, *op.range_shape) and out["sinogram"].dtype == torch.float32
    torch.testing.assert_close(out["sinogram"], op(_disc().as_tensor()[None])[0])
    assert out["target"].meta["filename_or_obj"] == "disc"


def test_gaussian_noise_is_a_fraction_of_mean_projection(op):
    clean = op(_disc().as_tensor()[None])[0]
    g = torch.Generator().manual_seed(0)
    noisy = add_sinogram_noise(clean.repeat(1, 40, 1), "gaussian", noise_level=0.05, generator=g)
    ratio = float((noisy - clean.repeat(1, 40, 1)).std() / clean.abs().mean())
    assert abs(ratio - 0.05) < 0.003


def test_poisson_counts_log_transform_and_clamp():
    clean = torch.tensor([[0.0, 1.0, 2.0, 50.0]]).repeat(20000, 1)
    g = torch.Generator().manual_seed(0)
    y = add_sinogram_noise(clean, "poisson", photons=1000.0, attenuation_scale=1.0, min_count=0.1, generator=g)
    # mean of -log(N / I0) is about the line integral; its variance about 1 / (I0 e^{-p})
    torch.testing.assert_close(y[:, :3].mean(0), clean[0, :3], atol=0.01, rtol=0)
    assert abs(float(y[:, 1].var()) - math.e / 1000) < 0.1 * math.e / 1000
    # e^{-50} I0 photons: always zero counts, clamped to 0.1 -> -log(0.1 / 1000)
    torch.testing.assert_close(y[:, 3], torch.full((20000,), math.log(1000 / 0.1)))


def test_finer_grid_avoids_the_inverse_crime_but_stays_close(op):
    fine = finer_ray_transform(op, 2)
    assert fine.domain_shape == (48, 48) and fine.range_shape == op.range_shape
    image = _disc()
    coarse = SimulateSinogramd(operator=op, noise=None)({"image": image})["sinogram"]
    fine_disc = _disc(48)
    out = SimulateSinogramd(operator=op, noise=None, upsample=2)({"image": image, "image_fine": fine_disc})
    rel = float((out["sinogram"] - coarse).norm() / coarse.norm())
    assert 1e-4 < rel < 0.05  # a different discretisation of the same object
    interp = SimulateSinogramd(operator=op, noise=None, simulation_operator=fine)({"image": image})["sinogram"]
    assert float((interp - coarse).norm() / coarse.norm()) < 0.05


def test_seeded_and_dict_operator():
    kwargs = {"image_shape": (16, 16), "num_angles": 6, "backend": "matrix"}
    a = SimulateSinogramd(operator=kwargs, noise="poisson", photons=100, attenuation_scale=0.1).set_random_state(1)
    b = SimulateSinogramd(operator=kwargs, noise="poisson", photons=100, attenuation_scale=0.1).set_random_state(1)
    x = {"image": torch.rand(1, 16, 16)}
    torch.testing.assert_close(a(x)["sinogram"], b(x)["sinogram"])
    assert not torch.equal(a(x)["sinogram"], a(x)["sinogram"])


def test_bad_input(op):
    with pytest.raises(ValueError, match=r"image: expected a real image of shape \(1, 24, 24\)"):
        SimulateSinogramd(operator=op)({"image": torch.rand(1, 20, 24)})
    with pytest.raises(ValueError, match="image: contains NaN"):
        SimulateSinogramd(operator=op)({"image": torch.full((1, 24, 24), float("inf"))})
    with pytest.raises(ValueError, match="noise"):
        SimulateSinogramd(operator=op, noise="salt")
    with pytest.raises(ValueError, match="simulation_operator"):
        SimulateSinogramd(operator=op, simulation_operator=RayTransform((24, 24), num_angles=5, backend="matrix"))
    with pytest.raises(ValueError, match="operator"):
        SimulateSinogramd()

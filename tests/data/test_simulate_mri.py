"""k-space simulation: consistency with MaskedFourier, noise level, masks, determinism, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from monai.data import MetaTensor, list_data_collate

from rim_monai.data import SimulateKSpaced, smooth_phase
from rim_monai.operators import MaskedFourier, birdcage_maps, equispaced_mask, fft2c


def _image(shape=(32, 24), seed=0):
    return MetaTensor(torch.rand(1, *shape, generator=torch.Generator().manual_seed(seed)), meta={"filename_or_obj": "x"})


@pytest.mark.parametrize("coils", [1, 3, 8])
@pytest.mark.parametrize("mask_func", ["random", "equispaced", "poisson_disc"])
def test_noiseless_kspace_is_the_operator_applied_to_the_target(coils, mask_func):
    sim = SimulateKSpaced(coils=coils, acceleration=4, mask_func=mask_func, snr_db=None).set_random_state(0)
    out = sim({"image": _image()})
    assert out["kspace"].shape == (coils, 32, 24) and out["kspace"].dtype == torch.complex64
    assert out["mask"].shape == (1, 32, 24) and out["mask"].dtype == torch.float32
    assert out["sens"].shape == (coils, 32, 24) and out["target"].shape == (1, 32, 24)
    assert isinstance(out["target"], MetaTensor) and out["target"].meta["filename_or_obj"] == "x"
    torch.testing.assert_close(out["target"].abs(), out["image"].as_tensor(), rtol=1e-5, atol=1e-6)
    expected = birdcage_maps(coils, (32, 24)) if coils > 1 else torch.ones(1, 32, 24, dtype=torch.complex64)
    torch.testing.assert_close(out["sens"], expected)
    batch = list_data_collate([out, sim({"image": _image(seed=1)})])
    A = MaskedFourier(batch["mask"], batch["sens"])
    torch.testing.assert_close(A(batch["target"].as_tensor()), batch["kspace"], rtol=1e-5, atol=1e-6)
    assert bool((out["mask"][0, 15:17, 11:13] == 1).all())  # the k-space centre is sampled
    if mask_func != "random":  # (a random mask of 24 columns varies too much around R)
        assert 2.5 < 32 * 24 / float(out["mask"].sum()) < 6


def test_noise_matches_requested_snr():
    sim = SimulateKSpaced(coils=4, acceleration=None, snr_db=20.0, max_phase=0.0).set_random_state(3)
    image = _image((64, 64))
    out = sim({"image": image})
    clean = fft2c(birdcage_maps(4, (64, 64)) * out["target"].as_tensor())
    noise = out["kspace"] - clean
    measured = 20 * math.log10(float(clean.abs().pow(2).mean().sqrt() / noise.abs().pow(2).mean().sqrt()))
    assert abs(measured - 20.0) < 0.2
    assert abs(float(noise.real.std() / noise.imag.std()) - 1) < 0.05  # circular complex noise
    assert bool((out["mask"] == 1).all())


def test_given_mask_and_acceleration_choices():
    mask = equispaced_mask((32, 24), 4, seed=0)
    out = SimulateKSpaced(coils=2)({"image": _image(), "mask": mask[None]})
    torch.testing.assert_close(out["mask"][0], mask)
    assert bool((out["kspace"][:, mask == 0] == 0).all())
    calls = []

    def mask_func(shape, acceleration, center_fraction, seed):
        calls.append((acceleration, center_fraction))
        return equispaced_mask(shape, acceleration, center_fraction, seed)

    sim = SimulateKSpaced(coils=2, acceleration=[2, 8], center_fraction=[0.16, 0.04], mask_func=mask_func)
    sim.set_random_state(0)
    for _ in range(12):
        sim({"image": _image()})
    assert set(calls) == {(2.0, 0.16), (8.0, 0.04)}  # each acceleration with its own centre fraction


def test_deterministic_given_seed_and_phase_is_smooth():
    a = SimulateKSpaced(coils=4, snr_db=25.0).set_random_state(7)({"image": _image()})
    b = SimulateKSpaced(coils=4, snr_db=25.0).set_random_state(7)({"image": _image()})
    c = SimulateKSpaced(coils=4, snr_db=25.0).set_random_state(8)({"image": _image()})
    torch.testing.assert_close(a["kspace"], b["kspace"])
    assert not torch.equal(a["kspace"], c["kspace"])
    phase = smooth_phase((64, 64), max_phase=1.0, order=2, generator=torch.Generator().manual_seed(0))
    assert abs(float(phase.abs().max()) - 1.0) < 1e-6
    assert float(phase.diff(dim=0).abs().max()) < 2 * math.pi * 2 * 2 / 64 * 1.0 * 3  # low-frequency: small steps


def test_complex_input_keeps_its_phase():
    x = torch.polar(torch.ones(1, 16, 16), torch.full((1, 16, 16), 0.3))
    out = SimulateKSpaced(coils=1, acceleration=None)({"image": x})
    torch.testing.assert_close(out["target"], x)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"image": torch.rand(2, 8, 8)}, r"image: expected a channel-first 2D image \(1, H, W\)"),
        ({"image": torch.full((1, 8, 8), float("nan"))}, "image: contains NaN"),
        ({"image": torch.rand(1, 8, 8), "mask": torch.ones(1, 8, 6)}, r"mask: expected shape \(1, 8, 8\)"),
        ({"image": torch.rand(1, 8, 8), "sens": torch.ones(2, 8, 6, dtype=torch.complex64)}, "sens: expected complex"),
    ],
)
def test_bad_input(data, match):
    with pytest.raises(ValueError, match=match):
        SimulateKSpaced(coils=2)(data)


def test_bad_arguments():
    with pytest.raises(ValueError, match="coils"):
        SimulateKSpaced(coils=0)
    with pytest.raises(ValueError, match="mask_func"):
        SimulateKSpaced(mask_func="spiral")
    with pytest.raises(ValueError, match="center_fraction"):
        SimulateKSpaced(acceleration=[4, 8], center_fraction=[0.08])


@pytest.mark.parametrize("estimator", ["lowres", "espirit"])
def test_map_estimator_gives_the_operator_maps_estimated_from_the_calibration_region(estimator):
    sim = SimulateKSpaced(coils=8, acceleration=4, center_fraction=0.25, snr_db=None, map_estimator=estimator)
    out = sim.set_random_state(0)({"image": _image((48, 48)) + 0.5})
    truth = birdcage_maps(8, (48, 48))
    assert not torch.allclose(out["sens"], truth)  # estimated, not the simulation's maps
    assert torch.allclose(out["sens"].abs().square().sum(0), torch.ones(48, 48), atol=1e-3)
    # the estimate agrees with the truth up to one phase per pixel
    overlap = (out["sens"].conj() * truth).sum(0).abs()
    assert float(overlap.mean()) > 0.95
    single = SimulateKSpaced(coils=1, acceleration=4, center_fraction=0.25, map_estimator=estimator)
    out = single.set_random_state(0)({"image": _image((48, 48)) + 0.5})
    torch.testing.assert_close(out["sens"].abs(), torch.ones(1, 48, 48), atol=1e-4, rtol=0)  # one coil: a phase map
    phase = torch.angle(out["target"] * out["sens"].conj())
    assert float(torch.angle(out["target"]).abs().mean()) > 0.4 > 0.1 > float(phase.abs().mean())  # taken off
    ones = SimulateKSpaced(coils=1, acceleration=4).set_random_state(0)  # no estimator: the true map of ones
    assert torch.equal(ones({"image": _image()})["sens"], torch.ones(1, 32, 24, dtype=torch.complex64))


def test_map_estimator_bad_name():
    with pytest.raises(ValueError, match="map_estimator"):
        SimulateKSpaced(map_estimator="sense")

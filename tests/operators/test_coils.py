"""Coil maps: birdcage synthesis, lowres / ESPIRiT estimation on simulated and (when present) real BART data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rim_monai.operators import (
    MaskedFourier,
    birdcage_maps,
    calibration_shape,
    estimate_sensitivities,
    estimate_sensitivities_or_none,
    fft2c,
    ifft2c,
    poisson_disc_mask,
    random_mask,
    rss,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BART_BRAIN = DATA / "mri_kspace" / "bart_brain_8ch"


def _phantom(shape=(96, 80)) -> torch.Tensor:
    """A smooth-edged ellipse with texture (real, positive), so its phase does not disturb the maps."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, shape[0]), torch.linspace(-1, 1, shape[1]), indexing="ij")
    inside = ((yy / 0.8) ** 2 + (xx / 0.7) ** 2 < 1).float()
    return inside * (1 + 0.5 * torch.cos(6 * xx) * torch.sin(4 * yy))


@pytest.mark.parametrize("coils", [1, 3, 8, 12])
def test_birdcage_maps_are_normalised_and_smooth(coils):
    maps = birdcage_maps(coils, (40, 48))
    assert maps.shape == (coils, 40, 48) and maps.dtype == torch.complex64
    torch.testing.assert_close(rss(maps, dim=0), torch.ones(40, 48))
    # smooth: neighbouring pixels differ by a few percent at most
    assert float((maps[:, 1:] - maps[:, :-1]).abs().max()) < 0.1
    assert float((maps[..., 1:] - maps[..., :-1]).abs().max()) < 0.1
    if coils > 1:  # distinct coils see different parts of the image
        assert float(maps.abs().amax(dim=(1, 2)).min() - maps.abs().amin(dim=(1, 2)).max()) > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(coils=0, shape=(8, 8)), "coils: expected a positive integer"),
    (dict(coils=4, shape=(8,)), r"shape: expected \(H, W\)"),
    (dict(coils=4, shape=(8, 8), radius=1.0), r"radius: expected > sqrt\(2\)"),
    (dict(coils=4, shape=(8, 8), dtype=torch.float32), "dtype: expected torch.complex64"),
])
def test_birdcage_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        birdcage_maps(**kwargs)


def _agreement(estimate: torch.Tensor, truth: torch.Tensor, inside: torch.Tensor) -> tuple[float, float, float]:
    """Per-pixel |<S_hat, S>| over coils (phase-blind), the global normalised correlation, and the relative error
    ||S_hat e^{i phi} - S|| / ||S|| inside the object after aligning one common phase phi."""
    per_pixel = (estimate.conj() * truth).sum(dim=-3).abs()[..., inside]
    a, b = estimate[..., inside].reshape(-1), truth[..., inside].reshape(-1)
    inner = torch.vdot(a, b)
    glob = inner.abs() / (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
    error = torch.linalg.vector_norm(a * torch.sgn(inner) - b) / torch.linalg.vector_norm(b)
    return float(per_pixel.mean()), float(glob), float(error)


@pytest.mark.parametrize("method", ["lowres", "espirit"])
@pytest.mark.parametrize("mask_kind", ["random", "poisson"])
def test_estimation_recovers_known_maps(method, mask_kind):
    shape = (96, 80)
    truth = birdcage_maps(8, shape)
    image = _phantom(shape)
    if mask_kind == "random":
        mask = random_mask(shape, 4, 0.2, seed=0)
    else:
        mask = poisson_disc_mask(shape, 4, calib=(20, 20), seed=0)
    kspace = mask * fft2c(truth * image)
    estimate = estimate_sensitivities(kspace, method=method)
    assert estimate.shape == truth.shape
    inside = image > 0
    per_pixel, glob, error = _agreement(estimate, truth, inside)
    assert per_pixel > 0.98 and glob > 0.95 and error < 0.08
    torch.testing.assert_close(rss(estimate, dim=0)[inside], torch.ones(int(inside.sum())), atol=1e-4, rtol=0)


def test_estimation_fails_for_the_wrong_maps():
    # the error bound used above is discriminative: the same maps with the coil order rotated by one fail it
    shape = (96, 80)
    truth = birdcage_maps(8, shape)
    image = _phantom(shape)
    estimate = estimate_sensitivities(fft2c(truth * image), calib_width=24)
    assert _agreement(estimate, truth, image > 0)[2] < 0.08
    assert _agreement(torch.roll(estimate, 1, dims=0), truth, image > 0)[2] > 0.15
    assert _agreement(estimate.conj(), truth, image > 0)[2] > 0.5


def test_batched_estimation_equals_per_sample():
    shape = (48, 40)
    truth = torch.stack([birdcage_maps(4, shape), birdcage_maps(4, shape).conj()])
    image = _phantom(shape)
    kspace = random_mask(shape, 3, 0.3, seed=1) * fft2c(truth * image)
    for method in ("lowres", "espirit"):
        batched = estimate_sensitivities(kspace, method=method)
        for b in range(2):
            torch.testing.assert_close(batched[b], estimate_sensitivities(kspace[b], method=method), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mask, expected", [
    (random_mask((64, 100), 4, 0.12, seed=0), (32, 12)),  # full readout (capped at 32) x at least the 12 ACS lines
    (poisson_disc_mask((64, 64), 4, calib=(14, 10), seed=0), (14, 10)),
])
def test_calibration_shape_detection(mask, expected):
    kspace = mask * fft2c(torch.randn(2, *mask.shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(0)))
    got = calibration_shape(kspace)
    # samples next to the calibration region may extend it, but the box found is always fully sampled
    assert expected[0] <= got[0] <= 32 and expected[1] <= got[1] <= 32
    top, left = mask.shape[0] // 2 - got[0] // 2, mask.shape[1] // 2 - got[1] // 2
    assert bool(mask[top : top + got[0], left : left + got[1]].all())
    assert calibration_shape(kspace, max_size=8) == (8, 8)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kspace=torch.ones(4, 8, 8)), "kspace: expected a complex tensor"),
    (dict(kspace=torch.zeros(4, 8, 8, dtype=torch.complex64)), "kspace: no fully sampled calibration region"),
    (dict(kspace=torch.ones(4, 8, 8, dtype=torch.complex64), method="sense"), "method: expected 'lowres' or 'espirit'"),
    (dict(kspace=torch.ones(4, 8, 8, dtype=torch.complex64), calib_width=12), "calib_width: expected"),
    (dict(kspace=torch.ones(4, 8, 8, dtype=torch.complex64), method="espirit", kernel_size=9), "kernel_size: 9 does not fit"),
])
def test_estimation_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_sensitivities(**kwargs)


def _read_cfl(base: Path) -> np.ndarray:
    """BART array: text header (sizes after '# Dimensions'), complex64 data in column-major order."""
    lines = (base.with_suffix(".hdr")).read_text().splitlines()
    dims = [int(v) for v in lines[lines.index("# Dimensions") + 1].split()]
    data = np.fromfile(base.with_suffix(".cfl"), dtype=np.complex64)
    assert all(d == 1 for d in dims[5:])
    return data.reshape(dims[:5], order="F")  # READ, PHS1, PHS2, COIL, MAPS


@pytest.mark.skipif(not BART_BRAIN.exists(), reason="../shared/data/mri_kspace/bart_brain_8ch is absent")
def test_real_bart_brain_zero_filled_coil_combination():
    ksp = _read_cfl(BART_BRAIN / "ksp")[0, :, :, :, 0]  # (180, 230, 8)
    ref = _read_cfl(BART_BRAIN / "img")[0, :, :, 0, 0]  # first ESPIRiT map image of the fully sampled scan
    kspace = torch.from_numpy(np.ascontiguousarray(ksp.transpose(2, 0, 1)))
    assert kspace.shape == (8, 180, 230)
    sampled = (kspace.abs() > 0).any(dim=0).float()
    assert 7 < sampled.numel() / float(sampled.sum()) < 9  # ~12.7 % kept
    ch, cw = calibration_shape(kspace)
    assert ch >= 16 and cw >= 16
    reference = np.abs(ref).reshape(-1)
    maps = {}
    for method in ("lowres", "espirit"):
        sens = estimate_sensitivities(kspace, method=method)
        maps[method] = sens
        zero_filled = MaskedFourier(sampled, sens).adjoint(kspace[None])[0, 0]
        # coil-combined zero-filled image looks like the reference (magnitude correlation)
        assert np.corrcoef(zero_filled.abs().numpy().reshape(-1), reference)[0, 1] > 0.9
        # it is as good as the root-sum-of-squares of the zero-filled coil images
        rss_image = rss(ifft2c(kspace), dim=0).numpy().reshape(-1)
        assert np.corrcoef(zero_filled.abs().numpy().reshape(-1), rss_image)[0, 1] > 0.95
    head = rss(maps["espirit"], dim=0) > 0.5  # ESPIRiT keeps the object, crops the background
    assert 0.3 < float(head.float().mean()) < 0.95
    agreement = (maps["lowres"].conj() * maps["espirit"]).sum(dim=0).abs()[head]
    assert float(agreement.mean()) > 0.98


def test_estimation_or_none_falls_back_and_reports_a_missing_calibration_region():
    x = torch.rand(32, 32, generator=torch.Generator().manual_seed(0)) + 0.5
    for lines in (6, 10):  # fewer calibration lines than ESPIRiT needs: low-resolution maps
        kspace = fft2c(birdcage_maps(4, (32, 32)) * x) * (torch.arange(32).sub(16).abs() < lines // 2 + 1).float()
        torch.testing.assert_close(estimate_sensitivities_or_none(kspace, "espirit"),
                                   estimate_sensitivities(kspace, method="lowres"))
    wide = fft2c(birdcage_maps(4, (32, 32)) * x) * (torch.arange(32).sub(16).abs() < 8).float()
    torch.testing.assert_close(estimate_sensitivities_or_none(wide, "espirit"), estimate_sensitivities(wide, method="espirit"))
    single = fft2c(x.to(torch.complex64))[None]
    assert torch.equal(estimate_sensitivities_or_none(single, "espirit", single_coil="ones"), torch.ones_like(single))
    assert estimate_sensitivities_or_none(torch.zeros(4, 32, 32, dtype=torch.complex64)) is None
    empty = torch.zeros(1, 32, 32, dtype=torch.complex64)  # one coil, nothing to estimate a phase from: ones
    assert torch.equal(estimate_sensitivities_or_none(empty), torch.ones_like(empty))
    with pytest.raises(ValueError, match="single_coil"):
        estimate_sensitivities_or_none(single, single_coil="coil")


@pytest.mark.parametrize("method", ["lowres", "espirit"])
def test_single_coil_map_takes_the_smooth_phase_off_the_image(method):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    magnitude = 0.5 + torch.rand(64, 64, generator=torch.Generator().manual_seed(1))
    phase = 2.5 * xx + 1.5 * yy**2  # smooth, wrapping past pi
    kspace = fft2c(torch.polar(magnitude, phase).to(torch.complex64))[None]
    kspace = kspace * (torch.arange(64).sub(32).abs() < 12).float()  # the centre lines only
    sens = estimate_sensitivities_or_none(kspace, method)
    assert sens.shape == kspace.shape
    torch.testing.assert_close(sens.abs(), torch.ones_like(sens.abs()), atol=1e-4, rtol=0)
    residual = torch.angle(torch.polar(torch.ones_like(phase), phase) * sens[0].conj())
    assert float(residual.abs().mean()) < 0.1  # what is left of the phase is small: the image is nearly real

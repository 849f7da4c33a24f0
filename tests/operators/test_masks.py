"""Sampling masks: acceleration, centre, determinism (fastMRI semantics) and the Poisson-disc density."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rim_monai.operators import center_fraction_for, equispaced_mask, poisson_disc_mask, random_mask

SEEDS = range(20)


def _check_layout(mask: torch.Tensor, shape) -> None:
    assert mask.shape == shape and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def _centre_columns(lines: torch.Tensor, num_low: int) -> torch.Tensor:
    start = (lines.numel() - num_low + 1) // 2
    return lines[start : start + num_low]


@pytest.mark.parametrize("acceleration, fraction", [(4, 0.08), (8, 0.04)])
def test_center_fraction_defaults(acceleration, fraction):
    assert center_fraction_for(acceleration) == pytest.approx(fraction)


@pytest.mark.parametrize("make", [random_mask, equispaced_mask])
@pytest.mark.parametrize("shape, acceleration", [((320, 368), 4), ((640, 372), 8), ((64, 100), 4)])
def test_cartesian_masks_hit_acceleration_and_centre(make, shape, acceleration):
    fraction = center_fraction_for(acceleration)
    num_low = round(shape[1] * fraction)
    accelerations = []
    for seed in SEEDS:
        mask = make(shape, acceleration, fraction, seed=seed)
        _check_layout(mask, shape)
        assert bool((mask == mask[:1]).all()), "1D masks select whole columns"
        lines = mask[0]
        assert bool(_centre_columns(lines, num_low).all())
        accelerations.append(shape[1] / float(lines.sum()))
    if make is equispaced_mask:  # every mask hits the target up to a line or two
        assert max(abs(a - acceleration) / acceleration for a in accelerations) < 0.08
    else:  # the expected number of lines is W / R
        samples = shape[1] / np.array(accelerations)
        assert abs(samples.mean() - shape[1] / acceleration) < 3 * samples.std() / np.sqrt(len(samples)) + 0.5


def test_random_mask_probability_matches_fastmri():
    # outside the centre, each column is kept with probability (W/R - n_low) / (W - n_low)
    width, acceleration, fraction = 400, 4, 0.08
    num_low = round(width * fraction)
    prob = (width / acceleration - num_low) / (width - num_low)
    kept = [float(random_mask((1, width), acceleration, fraction, seed=s)[0].sum()) - num_low for s in range(200)]
    assert np.mean(kept) / (width - num_low) == pytest.approx(prob, abs=0.01)


def test_equispaced_lines_are_equispaced():
    mask = equispaced_mask((8, 256), 8, 0.04, seed=3)[0]
    num_low = round(256 * 0.04)
    start = (256 - num_low + 1) // 2
    for side in (mask[: start - 1], mask[start + num_low + 1 :]):  # each side of the fully sampled centre
        gaps = np.diff(np.flatnonzero(side.numpy()))
        assert gaps.max() - gaps.min() <= 1  # only the rounding of a fractional spacing


@pytest.mark.parametrize("make", [random_mask, equispaced_mask])
def test_cartesian_masks_are_deterministic(make):
    a = make((32, 128), 4, 0.08, seed=7)
    assert torch.equal(a, make((32, 128), 4, 0.08, seed=7))
    assert any(not torch.equal(a, make((32, 128), 4, 0.08, seed=s)) for s in range(8, 12))


@pytest.mark.parametrize("shape, acceleration, calib", [((96, 96), 4, (16, 16)), ((180, 230), 8, (24, 24)), ((64, 80), 6, (12, 10))])
def test_poisson_disc_hits_acceleration_and_calibration(shape, acceleration, calib):
    for seed in range(3):
        mask = poisson_disc_mask(shape, acceleration, calib=calib, seed=seed)
        _check_layout(mask, shape)
        achieved = shape[0] * shape[1] / float(mask.sum())
        assert abs(achieved - acceleration) / acceleration < 0.03
        top, left = shape[0] // 2 - calib[0] // 2, shape[1] // 2 - calib[1] // 2
        assert bool(mask[top : top + calib[0], left : left + calib[1]].all())


def test_poisson_disc_is_variable_density_and_spread_out():
    shape = (128, 128)
    mask = poisson_disc_mask(shape, 6, calib=(0, 0), seed=0).numpy()
    ky, kx = np.meshgrid(np.arange(128) - 64, np.arange(128) - 64, indexing="ij")
    rho = np.sqrt(ky**2 + kx**2) / 64
    inner, outer = mask[rho < 0.3].mean(), mask[(rho > 0.7) & (rho < 1)].mean()
    assert inner > 1.5 * outer
    # Poisson-disc: in the periphery no two samples touch (unlike i.i.d. sampling at the same density)
    points = np.argwhere(mask * (rho > 0.7))
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)) + np.eye(len(points)) * 1e9
    assert d.min() >= 2


def test_poisson_disc_is_deterministic():
    a = poisson_disc_mask((64, 64), 4, calib=(8, 8), seed=1)
    assert torch.equal(a, poisson_disc_mask((64, 64), 4, calib=(8, 8), seed=1))
    assert not torch.equal(a, poisson_disc_mask((64, 64), 4, calib=(8, 8), seed=2))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: random_mask((32, 64), 1, 0.08), "acceleration: expected a number > 1"),
        (lambda: random_mask((32,), 4, 0.08), r"shape: expected \(H, W\)"),
        (lambda: random_mask((32, 64), 4, 0.5), "center_fraction: 0.5 gives 32 central columns"),
        (lambda: equispaced_mask((32, 64), 4, -0.1), r"center_fraction: expected a number in \[0, 1\)"),
        (lambda: poisson_disc_mask((32, 32), 8, calib=(24, 24)), "calib: a 24x24 calibration box"),
        (lambda: poisson_disc_mask((32, 32), 4, calib=(4,)), r"calib: expected \(ch, cw\)"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()

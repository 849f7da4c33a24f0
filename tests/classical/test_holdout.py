"""k-space hold-out validation of the TV weight: the split and the search on a small undersampled MRI problem."""

from __future__ import annotations

import logging
import math
import re

import pytest
import torch

from rim_monai.classical import tv_pdhg
from rim_monai.classical.holdout import (
    HOLDOUT_GRID,
    HOLDOUT_MAX_ITERATIONS,
    HOLDOUT_WINDOW,
    choose_tv_weight_holdout,
    split_measurements,
    supports_holdout,
)
from rim_monai.classical.parameter_choice import choose_tv_weight
from rim_monai.classical.tv import default_weight_scale
from rim_monai.operators import Identity, MaskedFourier, birdcage_maps, poisson_disc_mask, random_mask
from tests.classical.helpers import squares_phantom


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.abs().double(), ref.abs().double()
    return float(10 * torch.log10(ref.max() ** 2 / ((x - ref) ** 2).mean()))


def test_split_of_a_line_mask():
    mask = random_mask((64, 64), 4, seed=0)
    A = MaskedFourier(mask, birdcage_maps(2, (64, 64)))
    train, held = split_measurements(A)
    assert train.shape == held.shape == mask.shape
    torch.testing.assert_close(train + held, mask)
    lines = mask[0] > 0
    held_lines = torch.nonzero(held[0] > 0).flatten()
    assert bool((held == held[:1]).all())  # whole lines (the readout stays complete)
    assert 1 <= held_lines.numel() <= math.ceil(0.25 * int(lines.sum()))
    centre = 32
    assert bool(lines[centre - 2 : centre + 3].all()) and not bool((held[0, centre - 2 : centre + 3] > 0).any())


def test_split_of_a_point_mask_and_per_sample_masks():
    mask = poisson_disc_mask((48, 48), 3, seed=0).float()
    masks = torch.stack([mask, poisson_disc_mask((48, 48), 3, seed=1).float()])[:, None]
    A = MaskedFourier(masks, birdcage_maps(2, (48, 48)))
    train, held = split_measurements(A)
    assert held.shape == (2, 1, 48, 48)
    torch.testing.assert_close(train + held, masks)
    fraction = held.sum(dim=(-1, -2)) / masks.sum(dim=(-1, -2))
    assert bool(((fraction > 0.02) & (fraction < 0.25)).all())  # a fifth of the points outside the calibration box


def test_supports_holdout():
    assert supports_holdout(MaskedFourier(random_mask((64, 64), 4, seed=0), birdcage_maps(2, (64, 64))))
    assert not supports_holdout(Identity((8, 8)))
    full = torch.ones(16, 16)
    assert not supports_holdout(MaskedFourier(full))  # nothing outside the fully sampled centre
    with pytest.raises(ValueError, match="^fraction:"):
        split_measurements(MaskedFourier(random_mask((64, 64), 4, seed=0), shape=(64, 64)), fraction=0.9)


def _mri(acceleration: float, snr_db: float, n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.zeros(n, n)
    image[n // 8 : 7 * n // 8, n // 8 : 7 * n // 8] = squares_phantom(3 * n // 4)
    x = image.to(torch.complex64)[None, None]
    A = MaskedFourier(random_mask((n, n), acceleration, seed=seed), birdcage_maps(4, (n, n)))
    k = A(x)
    sigma = float(A.replace(mask=torch.ones(n, n))(x).abs().pow(2).mean().sqrt()) / 10 ** (snr_db / 20)
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)) * sigma / math.sqrt(2)
    return x, k + noise * A.mask, A


def test_holdout_weight_is_near_the_best():
    """4x, 20 dB: converged TV (1500 iterations) is best at c = 0.024 (36.8 dB; 35.0 at 0.012 and 0.048) and the
    held-out error is smallest at 0.012-0.024; the search lands within 1 dB."""
    x, y, A = _mri(4, 20.0)
    lam, weight, start = choose_tv_weight_holdout(y, A)
    assert lam.shape == (1,) and start.shape == A.adjoint(y).shape
    scale = default_weight_scale(y, A)
    torch.testing.assert_close(lam, (weight * scale).to(lam.dtype))
    chosen = _psnr(tv_pdhg(y, A, lam=lam, iterations=1500, tol=1e-7), x)
    best = _psnr(tv_pdhg(y, A, lam=0.024 * scale, iterations=1500, tol=1e-7), x)
    assert chosen >= best - 1.0, (chosen, best, float(weight[0]))


def test_holdout_weight_at_high_snr_is_within_one_step_of_the_oracle():
    """4x, 40 dB, 32²: converged TV (3000 iterations, tol 1e-7) scores 40.87 / 42.41 / 43.11 / 41.99 / 39.05 / 35.60 dB
    at c = 0.0001875 / 0.000375 / 0.00075 / 0.0015 / 0.003 / 0.006, so the oracle is c = 0.00075. Candidates of a
    fixed 300 iterations (the search before continuation) chose c = 0.006, 7.5 dB below it; converged candidates
    along the weight path choose 0.0011 (42.84 dB)."""
    x, y, A = _mri(4, 40.0, n=32)
    lam, weight, _ = choose_tv_weight_holdout(y, A)
    assert 0.00075 / 2 <= float(weight[0]) <= 0.00075 * 2, float(weight[0])  # within 1.1 dB of the oracle
    torch.testing.assert_close(lam, (weight * default_weight_scale(y, A)).to(lam.dtype))


def test_holdout_candidates_stop_when_converged(caplog):
    """Each candidate stops once its held-out error settles: far fewer iterations than the cap allows, and a cap of
    one window still gives a weight on the grid's range."""
    x, y, A = _mri(4, 25.0, n=32)
    with caplog.at_level(logging.INFO, logger="rim_monai.classical.holdout"):
        choose_tv_weight_holdout(y, A)
    total = int(re.search(r"(\d+) TV iterations", caplog.text).group(1))
    assert total < 0.5 * HOLDOUT_MAX_ITERATIONS * len(HOLDOUT_GRID), total
    _, weight, _ = choose_tv_weight_holdout(y, A, iterations=HOLDOUT_WINDOW)
    assert min(HOLDOUT_GRID) <= float(weight[0]) <= max(HOLDOUT_GRID)
    with pytest.raises(ValueError, match="^rtol:"):
        choose_tv_weight_holdout(y, A, rtol=0.0)


def test_auto_method_uses_holdout_for_undersampled_mri():
    x, y, A = _mri(4, 25.0)
    choice = choose_tv_weight(y, A, search_iterations=30, return_details=True)
    assert choice.method == "holdout" and choice.ratio is None
    assert choose_tv_weight(y, A, method="discrepancy", return_details=True).method == "discrepancy"
    with pytest.raises(ValueError, match="^method:"):
        choose_tv_weight(y, A, method="gcv")
    with pytest.raises(ValueError, match="^operator:"):
        choose_tv_weight_holdout(torch.zeros(1, 1, 8, 8), Identity((8, 8)))

"""Data-driven defaults: the discrepancy-principle TV weight, CG and Landweber early stopping."""

from __future__ import annotations

import importlib.util
import logging
import math

import pytest
import torch

from rim_monai.classical import cg_normal, landweber, tv_pdhg, zero_filled
from rim_monai.classical.landweber import MAX_LANDWEBER_ITERATIONS
from rim_monai.classical.parameter_choice import (
    MAX_TV_WEIGHT,
    MIN_TV_WEIGHT,
    TAU_TV,
    choose_tv_weight,
    discrepancy_target,
    initial_estimate,
)
from rim_monai.classical.tv import default_weight_scale
from rim_monai.operators import Identity, MaskedFourier, birdcage_maps, random_mask
from tests.classical.helpers import Convolution, squares_phantom


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.abs().double(), ref.abs().double()
    return float(10 * torch.log10(ref.max() ** 2 / ((x - ref) ** 2).mean()))


def _denoising(sigma: float = 0.1, n: int = 32, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = squares_phantom(n, dtype=torch.float64).expand(batch, 1, n, n)
    return x, x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)


def test_weight_meets_the_discrepancy():
    """The search stops where residual / (m sigma^2) is within rtol of tau (short runs, as it scores them)."""
    x, y = _denoising(0.1)
    choice = choose_tv_weight(y, Identity((32, 32)), sigma=0.1, return_details=True)
    assert choice.method == "discrepancy"
    assert abs(float(choice.ratio.flatten()[0]) / TAU_TV - 1) <= 0.1


def test_default_tv_on_a_small_ct_problem():
    """64² squares, 30 views, post-log Poisson at I0 = 1e4 (noise estimated): far above FBP and within 1.5 dB of the
    best weight of a grid (the residual curve is flat here: c = 0.14-0.3 all meet the discrepancy within 10 %)."""
    if importlib.util.find_spec("astra") is None:
        pytest.skip("astra is not installed")
    from rim_monai.operators import RayTransform

    image = torch.zeros(64, 64)
    image[8:56, 8:56] = squares_phantom(48)
    x = (0.04 * image)[None, None]
    A = RayTransform((64, 64), num_angles=30, backend="matrix")
    g = torch.Generator().manual_seed(0)
    y = (-torch.log(torch.poisson(1e4 * torch.exp(-A(x).double()), generator=g).clamp_min(0.1) / 1e4)).float()
    ct_psnr = lambda a: float(10 * torch.log10((x.max() - x.min()) ** 2 / ((a - x) ** 2).mean()))  # noqa: E731
    xd = tv_pdhg(y, A, nonneg=True)
    scale = default_weight_scale(y, A)
    best = max(ct_psnr(tv_pdhg(y, A, lam=0.05 * 2 ** (k / 2) * scale, nonneg=True)) for k in range(12))
    assert ct_psnr(xd) > ct_psnr(A.fbp(y, filter="hann")) + 5
    assert ct_psnr(xd) >= best - 1.5, (ct_psnr(xd), best)


def test_with_estimated_noise_tv_still_denoises():
    x, y = _denoising(0.1, n=48)
    estimated = tv_pdhg(y, Identity((48, 48)))
    assert _psnr(estimated, x) > _psnr(y, x) + 3


def test_weight_is_scale_equivariant_and_batched():
    x, y = _denoising(0.05, seed=1)
    y = torch.cat([y, 3.0 * y])  # the same problem, scaled by 3
    A = Identity((32, 32))
    sigma = torch.tensor([0.05, 0.15], dtype=torch.float64)
    lam = choose_tv_weight(y, A, sigma=sigma)
    assert lam.shape == (2, 1)
    assert float(lam[1, 0] / lam[0, 0]) == pytest.approx(3.0, rel=1e-6)  # the same problem scaled by 3
    single = choose_tv_weight(y[1:], A, sigma=0.15)
    torch.testing.assert_close(lam[1:], single, rtol=1e-9, atol=0)


def test_weight_bounds():
    x, y = _denoising(0.1)
    A = Identity((32, 32))
    scale = default_weight_scale(y, A)
    low = choose_tv_weight(y, A, sigma=1e-6, return_details=True)  # noise far below the image's own structure
    assert float(low.weight.flatten()[0]) == pytest.approx(MIN_TV_WEIGHT, rel=1e-6)
    high = choose_tv_weight(y, A, sigma=100.0, max_evaluations=20, return_details=True)
    assert float(high.weight.flatten()[0]) == pytest.approx(MAX_TV_WEIGHT, rel=1e-6)
    torch.testing.assert_close(low.lam, (MIN_TV_WEIGHT * scale).to(low.lam.dtype))


def test_tv_pdhg_default_uses_and_returns_the_chosen_weight(caplog):
    x, y = _denoising(0.1)
    A = Convolution((32, 32), torch.ones(3, 3, dtype=torch.float64) / 9)
    y = A(x) + (y - x)
    with caplog.at_level(logging.INFO, logger="rim_monai.classical.parameter_choice"):
        xd, lam = tv_pdhg(y, A, sigma=0.1, return_weight=True, iterations=300)
    assert any("TV weight by the discrepancy principle" in r.getMessage() for r in caplog.records)
    torch.testing.assert_close(lam, choose_tv_weight(y, A, sigma=0.1))
    assert _psnr(xd, x) > _psnr(y, x) + 2


def test_bad_arguments():
    y = torch.zeros(1, 1, 16, 16)
    A = Identity((16, 16))
    for kwargs, name in [({"tau": 0.0}, "tau"), ({"search_iterations": 0}, "search_iterations"),
                         ({"max_evaluations": 0}, "max_evaluations"), ({"rtol": 1.5}, "rtol"),
                         ({"min_weight": -1.0}, "min_weight"), ({"sigma": -1.0}, "sigma")]:
        with pytest.raises(ValueError, match=rf"^{name}:"):
            choose_tv_weight(y, A, **kwargs)


def test_initial_estimate_is_the_best_multiple_of_the_adjoint():
    A = Convolution((16, 16), torch.ones(3, 3, dtype=torch.float64) / 9)
    y = A(squares_phantom(16, dtype=torch.float64)[None, None])
    x0 = initial_estimate(y, A)
    b = A.adjoint(y)
    alpha = float((b * b).sum() / (A(b) ** 2).sum())
    torch.testing.assert_close(x0, alpha * b)


# ---------------------------------------------------------------- early stopping (CG-SENSE, Landweber)

def _mri(snr_db: float = 25.0, n: int = 64, coils: int = 4, acceleration: float = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.zeros(n, n)
    image[n // 8 : 7 * n // 8, n // 8 : 7 * n // 8] = squares_phantom(3 * n // 4)
    x = image.to(torch.complex64)[None, None]
    A = MaskedFourier(random_mask((n, n), acceleration, seed=seed), birdcage_maps(coils, (n, n)))
    k = A(x)
    full_rms = float(A.replace(mask=torch.ones(n, n))(x).abs().pow(2).mean().sqrt())
    sigma = full_rms / 10 ** (snr_db / 20)
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)) * sigma / math.sqrt(2)
    return x, k + noise * A.mask, A, sigma


@pytest.mark.parametrize("snr_db", [15.0, 25.0])
def test_cg_default_is_never_below_zero_filled(snr_db):
    x, y, A, sigma = _mri(snr_db)
    for kwargs in ({"sigma": sigma}, {}):
        xd, hist = cg_normal(y, A, return_history=True, **kwargs)
        assert _psnr(xd, x) >= _psnr(zero_filled(y, A), x), kwargs
        assert hist.shape[0] - 1 < 30  # stopped by the discrepancy principle, not by the iteration cap
    noise, target = discrepancy_target(y, A, sigma=sigma)
    assert float(noise.residual(A(xd) - y, 3)[0]) <= 1.5 * float(target[0])


def test_cg_with_a_number_keeps_the_plain_iterations():
    x, y, A, sigma = _mri(15.0)
    _, hist = cg_normal(y, A, lam=0.0, iterations=12, tol=0.0, return_history=True)
    assert hist.shape[0] == 13


def test_landweber_default_stops_at_the_noise_level(caplog):
    x, y = _denoising(0.05)
    A = Convolution((32, 32), torch.ones(3, 3, dtype=torch.float64) / 9)
    y = A(x) + (y - x)
    noise, target = discrepancy_target(y, A, sigma=0.05)
    residuals = []
    with caplog.at_level(logging.INFO, logger="rim_monai.classical.landweber"):
        landweber(y, A, sigma=0.05, callback=lambda k, xk: residuals.append(float(((A(xk) - y) ** 2).sum())))
    assert any("Landweber stopped" in r.getMessage() for r in caplog.records)
    stopped = [r for r in residuals[:-1]]  # the iterates before the last one still fit worse than the target
    assert residuals[-1] <= float(target.flatten()[0]) < min(stopped[: len(stopped) - 1] or [math.inf])
    assert len(residuals) < MAX_LANDWEBER_ITERATIONS
    assert len(landweber(y, A, iterations=3, callback=lambda k, xk: residuals.append(k)).shape) == 4


def test_tv_pdhg_default_meets_the_discrepancy_on_its_converged_image():
    """The search scores short runs; tv_pdhg corrects the weight on its converged reconstruction."""
    x, noisy = _denoising(0.05, n=48, seed=3)
    A = Convolution((48, 48), torch.ones(5, 5, dtype=torch.float64) / 25)
    y = A(x) + (noisy - x)
    xd, lam = tv_pdhg(y, A, sigma=0.05, return_weight=True)
    noise, target = discrepancy_target(y, A, sigma=0.05, tau=TAU_TV)
    ratio = float(noise.residual(A(xd) - y, 2).flatten()[0] / target.flatten()[0])
    assert abs(ratio - 1) < 0.25, ratio

"""tv_pdhg: isotropic TV by Chambolle-Pock, checked against scikit-image's TV denoiser and on CT / MRI."""

from __future__ import annotations

import cmath
import importlib.util

import numpy as np
import pytest
import torch

from rim_monai.classical import default_weight_scale, fbp, gradient2d, gradient2d_adjoint, tv_pdhg
from rim_monai.classical import zero_filled
from rim_monai.operators import Identity
from tests.classical.helpers import Convolution, DenseMatrix, random_tensor, squares_phantom


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.abs().double(), ref.abs().double()
    return float(10 * torch.log10((ref.max() - ref.min()) ** 2 / ((x - ref) ** 2).mean()))


def _noisy(img: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    return img + sigma * random_tensor(img.shape, img.is_complex(), dtype=img.real.dtype, seed=seed)


def test_gradient_matches_numpy_and_is_adjoint():
    x = random_tensor((2, 3, 5, 7), seed=1)
    g = gradient2d(x)
    assert g.shape == (2, 3, 2, 5, 7)
    ref_h = np.zeros((2, 3, 5, 7)); ref_h[..., :-1, :] = np.diff(x.numpy(), axis=-2)
    ref_w = np.zeros((2, 3, 5, 7)); ref_w[..., :, :-1] = np.diff(x.numpy(), axis=-1)
    np.testing.assert_allclose(g[..., 0, :, :].numpy(), ref_h)
    np.testing.assert_allclose(g[..., 1, :, :].numpy(), ref_w)
    for complex_ in (False, True):
        x = random_tensor((2, 5, 7), complex_, seed=2)
        p = random_tensor((2, 2, 5, 7), complex_, seed=3)
        lhs = torch.vdot(gradient2d(x).reshape(-1), p.reshape(-1))
        rhs = torch.vdot(x.reshape(-1), gradient2d_adjoint(p).reshape(-1))
        assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_denoising_matches_scikit_image():
    skimage_restoration = pytest.importorskip("skimage.restoration")
    img = squares_phantom(24, dtype=torch.float64)
    noisy = _noisy(img, 0.1)
    ref = skimage_restoration.denoise_tv_chambolle(noisy.numpy(), weight=0.1, eps=1e-12, max_num_iter=20000)
    x = tv_pdhg(noisy[None, None], Identity((24, 24)), lam=0.1, iterations=1000, tol=0)
    assert np.abs(x[0, 0].numpy() - ref).max() < 5e-3
    assert _psnr(x[0, 0], img) > _psnr(noisy, img) + 3


def test_complex_tv_is_phase_equivariant():
    """TV of a complex image uses moduli, so a global phase e^{i phi} commutes with the solver."""
    img = squares_phantom(16, dtype=torch.float64)
    noisy = _noisy(img, 0.1, seed=4)[None, None]
    phase = cmath.exp(0.7j)
    for balance in (False, True):  # the default balances the steps for complex images only: compare like with like
        x_real = tv_pdhg(noisy, Identity((16, 16)), lam=0.1, iterations=200, tol=0, balance=balance)
        x_cplx = tv_pdhg(noisy.to(torch.complex128) * phase, Identity((16, 16), complex_=True), lam=0.1,
                         iterations=200, tol=0, balance=balance)
        torch.testing.assert_close(x_cplx, x_real.to(torch.complex128) * phase, rtol=1e-9, atol=1e-9)


def test_default_weight_is_scale_equivariant():
    A = Convolution((16, 16), torch.ones(3, 3, dtype=torch.float64) / 9)
    y = A(squares_phantom(16, dtype=torch.float64)[None, None]) + 0.02 * random_tensor((1, 1, 16, 16), seed=5)
    x1 = tv_pdhg(y, A, iterations=100, tol=0)
    x2 = tv_pdhg(7.0 * y, A, iterations=100, tol=0)
    torch.testing.assert_close(x2, 7.0 * x1, rtol=1e-8, atol=1e-10)
    # scaling the operator by a scales the weight by a^2 (the data term's scaling)
    A3 = Convolution((16, 16), 3.0 * torch.ones(3, 3, dtype=torch.float64) / 9)
    torch.testing.assert_close(default_weight_scale(3.0 * y, A3), 9.0 * default_weight_scale(y, A), rtol=1e-8, atol=0)


@pytest.mark.parametrize("lam", [None, "per_sample"])
def test_batch_equals_single_calls(lam):
    A = Convolution((12, 12), torch.ones(3, 3, dtype=torch.float64) / 9)
    img = squares_phantom(12, dtype=torch.float64)
    y = torch.stack([A(img)[None], 3 * A(img.T)[None], A(img.flip(0))[None]]) + 0.05 * random_tensor((3, 1, 12, 12), seed=6)
    lam_t = torch.tensor([0.01, 0.1, 0.05], dtype=torch.float64) if lam else None
    xb = tv_pdhg(y, A, lam=lam_t, iterations=60, tol=1e-3, nonneg=True)
    for i in range(3):
        xi = tv_pdhg(y[i : i + 1], A, lam=None if lam_t is None else float(lam_t[i]), iterations=60, tol=1e-3,
                     nonneg=True)
        torch.testing.assert_close(xb[i : i + 1], xi, rtol=1e-10, atol=1e-12)
    assert bool((xb >= 0).all())


def test_stopping_rule():
    img = squares_phantom(16, dtype=torch.float64)
    seen = []
    tv_pdhg(_noisy(img, 0.1)[None, None], Identity((16, 16)), lam=0.1, iterations=5000, tol=1e-4,
            callback=lambda k, x: seen.append(k))
    assert seen == list(range(1, len(seen) + 1)) and 10 < len(seen) < 5000


def test_callback_stops_samples():
    """A callback that returns a per-sample mask stops those samples where they are; the others go on."""
    img = squares_phantom(16, dtype=torch.float64)
    y = torch.stack([_noisy(img, 0.1, seed=s) for s in (0, 1)])[:, None]
    stop_first = lambda k, x: torch.tensor([[k >= 7], [False]])  # noqa: E731  (batch (2, 1))
    both = tv_pdhg(y, Identity((16, 16)), lam=0.1, iterations=30, tol=0.0, callback=stop_first)
    first = tv_pdhg(y[:1], Identity((16, 16)), lam=0.1, iterations=7, tol=0.0)
    second = tv_pdhg(y[1:], Identity((16, 16)), lam=0.1, iterations=30, tol=0.0)
    torch.testing.assert_close(both[:1], first, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(both[1:], second, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"lam": -0.1}, "lam"), ({"iterations": 0}, "iterations"), ({"tol": -1.0}, "tol"),
     ({"x0": torch.zeros(1, 1, 4, 5)}, "x0")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        tv_pdhg(torch.zeros(1, 1, 4, 4), Identity((4, 4)), **kwargs)


def test_bad_operator_and_nonneg():
    with pytest.raises(ValueError, match=r"^nonneg:"):
        tv_pdhg(torch.zeros(1, 4, 4, dtype=torch.complex64), Identity((4, 4), complex_=True), nonneg=True)
    with pytest.raises(ValueError, match=r"^operator:.*two axes"):
        tv_pdhg(torch.zeros(2, 6, dtype=torch.float64), DenseMatrix(random_tensor((6, 3))))


# ---------------------------------------------------------------- CT and MRI (need the tomography / fourier modules)

def _shepp_logan(n: int) -> torch.Tensor:
    odl = pytest.importorskip("odl")
    space = odl.uniform_discr([-1, -1], [1, 1], (n, n))
    return torch.tensor(np.asarray(odl.phantom.shepp_logan(space, modified=True).data), dtype=torch.float32)


def test_tv_beats_fbp_on_sparse_view_ct():
    if importlib.util.find_spec("astra") is None:
        pytest.skip("astra is not installed")
    from rim_monai.operators.tomography import RayTransform

    x = _shepp_logan(64)[None, None]
    A = RayTransform((64, 64), num_angles=30, geometry="parallel")
    y0 = A(x)
    y = y0 + 0.05 * y0.abs().mean() * random_tensor(y0.shape, dtype=torch.float32, seed=7)
    p_fbp = _psnr(fbp(y, A, filter="hann"), x)
    p_tv = _psnr(tv_pdhg(y, A, iterations=300, nonneg=True), x)
    assert p_tv > p_fbp + 3, (p_tv, p_fbp)


def test_tv_beats_zero_filled_on_undersampled_mri():
    from rim_monai.operators.fourier import MaskedFourier
    from rim_monai.operators.masks import random_mask

    x = _shepp_logan(64).to(torch.complex64)[None, None] * cmath.exp(0.3j)
    M = MaskedFourier(random_mask((64, 64), acceleration=4, seed=0))
    y0 = M(x)
    sampled = M.mask.expand(y0.shape) > 0
    y = (y0 + 0.05 * y0.abs()[sampled].mean() * random_tensor(y0.shape, True, dtype=torch.float32, seed=8)) * M.mask
    p_zf = _psnr(zero_filled(y, M), x)
    p_tv = _psnr(tv_pdhg(y, M, iterations=400), x)
    assert p_tv > p_zf + 2, (p_tv, p_zf)

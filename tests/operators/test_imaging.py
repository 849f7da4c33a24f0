"""Downsample (MATLAB imresize), Blur and RandomProjection against NumPy/SciPy references and real SR data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from rim_monai.operators import Blur, Downsample, RandomProjection, gaussian_kernel, imresize_matrix

SR_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sr_selfexsr"


def _matlab_weights_reference(n_in: int, s: int) -> np.ndarray:
    """MATLAB imresize(., 1/s, 'bicubic') weights, one output pixel at a time (1-based, as MATLAB's contributions())."""
    scale = 1 / s
    n_out = math.ceil(n_in * scale)
    support = 4 / scale
    out = np.zeros((n_out, n_in))

    def keys(t):
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    for i in range(1, n_out + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - support / 2)
        taps = [left + p for p in range(math.ceil(support) + 2)]
        w = np.array([scale * keys(scale * (u - j)) for j in taps])
        w /= w.sum()
        for j, wj in zip(taps, w):
            while j < 1 or j > n_in:  # symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ...
                j = 1 - j if j < 1 else 2 * n_in + 1 - j
            out[i - 1, j - 1] += wj
    return out


@pytest.mark.parametrize("n_in, s", [(7, 2), (16, 2), (13, 3), (9, 3), (21, 4), (8, 4), (3, 4)])
def test_imresize_matrix_matches_reference(n_in, s):
    np.testing.assert_allclose(imresize_matrix(n_in, s).numpy(), _matlab_weights_reference(n_in, s), atol=1e-14)


@pytest.mark.parametrize("shape, s", [((13, 11), 2), ((17, 10), 3), ((15, 21), 4)])
def test_downsample_is_separable_resize(shape, s):
    A = Downsample(shape, s)
    assert A.range_shape == (math.ceil(shape[0] / s), math.ceil(shape[1] / s))
    x = torch.rand(2, 3, *shape, dtype=torch.float64)
    rows, cols = _matlab_weights_reference(shape[0], s), _matlab_weights_reference(shape[1], s)
    np.testing.assert_allclose(A(x).numpy(), np.einsum("ih,bchw,jw->bcij", rows, x.numpy(), cols), atol=1e-12)
    ones = torch.ones(1, *shape, dtype=torch.float64)
    torch.testing.assert_close(A(ones), torch.ones(1, *A.range_shape, dtype=torch.float64))


def test_downsample_bad_arguments():
    with pytest.raises(ValueError, match="factor: expected an integer >= 2"):
        Downsample((8, 8), 1.5)
    with pytest.raises(ValueError, match=r"shape: expected \(H, W\)"):
        Downsample((8,), 2)


def _y_channel(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma on [0, 255] (MATLAB rgb2ycbcr), the SR evaluation channel."""
    return 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255


def _sr_pairs():
    pairs = []
    for name in ("Set5", "Set14"):
        for s in (2, 3, 4):
            for hr in sorted((SR_DATA / name / f"image_SRF_{s}").glob("*_HR.png"))[:5]:
                pairs.append(pytest.param(hr, s, id=f"{name}-x{s}-{hr.name[:7]}"))
    return pairs


@pytest.mark.skipif(not SR_DATA.exists(), reason="../shared/data/sr_selfexsr is absent")
@pytest.mark.parametrize("hr_path, s", _sr_pairs() or [pytest.param(None, 0, marks=pytest.mark.skip("no SR pairs"))])
def test_downsample_reproduces_matlab_lr_images(hr_path, s):
    from PIL import Image

    hr = np.asarray(Image.open(hr_path).convert("RGB"), dtype=np.float64)
    lr = np.asarray(Image.open(str(hr_path).replace("_HR.png", "_LR.png")).convert("RGB"), dtype=np.float64)
    A = Downsample(hr.shape[:2], s).double()
    x = torch.from_numpy(hr).permute(2, 0, 1)[None]
    assert A.range_shape == lr.shape[:2]
    # the shipped LR images differ from any resize of the shipped HR along their outermost pixel ring (how the data
    # set was made); everything inside is compared
    inner = (slice(1, -1), slice(1, -1))
    y = A(x)[0].permute(1, 2, 0).numpy()
    dy = np.abs(_y_channel(np.clip(y, 0, 255)) - _y_channel(lr))[inner]
    assert dy.mean() < 0.25 and np.mean(dy <= 1) > 0.98  # 8-bit rounding level on Y
    assert 10 * np.log10(255**2 / np.mean(dy**2)) > 55
    # MATLAB resizes uint8 images rows first and rounds to uint8 after each pass: emulated, the pixels agree exactly
    # except for a few rounding ties (x2, x4; off by 1, rarely 2 after both passes)
    rows = torch.clamp(torch.round(A.rows @ x), 0, 255)
    emulated = torch.clamp(torch.round(rows @ A.cols.T), 0, 255)[0].permute(1, 2, 0).numpy()
    diff = np.abs(emulated - lr)[inner]
    assert diff.max() <= 2 and np.mean(diff == 0) > 0.97


@pytest.mark.parametrize("kernel_shape", [(5, 5), (4, 3), (2, 6), (1, 1)])
@pytest.mark.parametrize("boundary, mode", [("circular", "wrap"), ("zero", "constant")])
def test_blur_matches_scipy_convolve(kernel_shape, boundary, mode):
    g = torch.Generator().manual_seed(0)
    kernel = torch.rand(kernel_shape, generator=g, dtype=torch.float64)
    x = torch.rand(2, 1, 11, 9, generator=g, dtype=torch.float64)
    A = Blur(kernel, (11, 9), boundary=boundary)
    expected = np.stack([ndimage.convolve(x[b, 0].numpy(), kernel.numpy(), mode=mode, cval=0.0) for b in range(2)])
    np.testing.assert_allclose(A(x)[:, 0].numpy(), expected, atol=1e-12)
    y = torch.rand(2, 1, 11, 9, generator=g, dtype=torch.float64)
    expected_adjoint = np.stack([ndimage.correlate(y[b, 0].numpy(), kernel.numpy(), mode=mode, cval=0.0) for b in range(2)])
    if all(k % 2 for k in kernel_shape):  # scipy's correlate is the adjoint only for odd kernels (centre convention)
        np.testing.assert_allclose(A.adjoint(y)[:, 0].numpy(), expected_adjoint, atol=1e-12)


def test_learnable_blur_kernel_receives_gradients():
    truth = gaussian_kernel(5, 1.0, dtype=torch.float64)
    x = torch.rand(4, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = Blur(truth, (16, 16))(x)
    A = Blur(torch.full((5, 5), 1 / 25, dtype=torch.float64), (16, 16), learnable_kernel=True)
    assert isinstance(A.kernel, torch.nn.Parameter)
    optimiser = torch.optim.LBFGS(A.parameters(), max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = (A(x) - y).pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    torch.testing.assert_close(A.kernel.detach(), truth, atol=1e-6, rtol=0)


def test_gaussian_kernel():
    k = gaussian_kernel((5, 7), (1.0, 2.0), dtype=torch.float64)
    assert k.shape == (5, 7) and float(k.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(k, k.flip(0).flip(1))
    ratio = float(k[2, 3] / k[3, 3])
    assert ratio == pytest.approx(math.exp(0.5), rel=1e-12)
    with pytest.raises(ValueError, match="sigma: expected a positive"):
        gaussian_kernel(5, 0.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel=torch.ones(3), shape=(8, 8)), r"kernel: expected a real floating tensor \(kh, kw\)"),
    (dict(kernel=torch.ones(3, 3), shape=(8, 8), boundary="reflect"), "boundary: expected 'circular' or 'zero'"),
    (dict(kernel=torch.ones(9, 3), shape=(8, 8)), "kernel: shape"),
])
def test_blur_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Blur(**kwargs)


def test_random_projection_ensembles():
    gauss = RandomProjection((16, 16), 0.5, "gaussian", seed=0)
    assert gauss.range_shape == (128,) and not gauss.range_is_complex
    assert abs(float(gauss.matrix.mean())) < 0.02 and float(gauss.matrix.var()) == pytest.approx(1.0, abs=0.03)
    bern = RandomProjection((16, 16), 0.3, "bernoulli", seed=0)
    assert bern.range_shape == (77,)
    assert set(bern.matrix.unique().tolist()) == {-1.0, 1.0} and abs(float(bern.matrix.mean())) < 0.03
    assert torch.equal(bern.matrix, RandomProjection((16, 16), 0.3, "bernoulli", seed=0).matrix)
    assert not torch.equal(bern.matrix, RandomProjection((16, 16), 0.3, "bernoulli", seed=1).matrix)


def test_fourier_projection_is_partial_dft():
    A = RandomProjection((6, 8), 0.5, "fourier", seed=3)
    assert A.domain_is_complex and A.range_is_complex and A.range_shape == (24,)
    x = torch.randn(2, 6, 8, dtype=torch.complex128)
    spectrum = np.fft.fft(x.reshape(2, -1).numpy(), axis=-1)  # unnormalised DFT of the flattened patch
    y = A(x).numpy()
    rows = [int(np.argmin(np.abs(spectrum[0] - v))) for v in y[0]]
    assert len(set(rows)) == 24  # distinct DFT rows
    np.testing.assert_allclose(y, spectrum[:, rows], atol=1e-10)
    unitary = RandomProjection((6, 8), 0.5, "fourier", seed=3, normalized=True).matrix
    torch.testing.assert_close(unitary @ unitary.conj().T, torch.eye(24, dtype=torch.complex128))


def test_random_projection_bad_arguments():
    with pytest.raises(ValueError, match=r"reduction: expected a fraction"):
        RandomProjection((8, 8), 1.5)
    with pytest.raises(ValueError, match="ensemble: expected"):
        RandomProjection((8, 8), 0.5, "rademacher")

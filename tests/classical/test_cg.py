"""cg_normal: Tikhonov / CG-SENSE by conjugate gradients on the normal equations."""

from __future__ import annotations

import pytest
import torch

from rim_monai.classical import cg_normal, zero_filled
from rim_monai.operators import Identity, MaskedFourier
from tests.classical.helpers import Convolution, DenseMatrix, random_tensor


@pytest.mark.parametrize(
    "complex_, lam, m, n",
    [(False, 0.0, 40, 20), (False, 0.5, 15, 25), (True, 0.0, 40, 20), (True, 2.0, 10, 16)],
)
def test_solves_dense_system(complex_, lam, m, n):
    M = random_tensor((m, n), complex_, seed=1)
    A = DenseMatrix(M)
    y = random_tensor((3, m), complex_, seed=2)
    x = cg_normal(y, A, lam=lam, iterations=200, tol=1e-12)
    N = M.conj().T @ M + lam * torch.eye(n, dtype=M.dtype)
    ref = torch.linalg.solve(N, (y @ M.conj()).T).T
    assert torch.linalg.vector_norm(x - ref) <= 1e-5 * torch.linalg.vector_norm(ref)


def test_differentiable_iterations_give_the_gradient_of_the_solution():
    """``differentiable=True``: autograd through the CG iterations equals the gradient of the exact solve
    (converged), while the default runs without a graph."""
    M = random_tensor((12, 6), dtype=torch.float64, seed=3)
    A = DenseMatrix(M)
    y = random_tensor((2, 12), dtype=torch.float64, seed=4).requires_grad_(True)
    x = cg_normal(y, A, lam=0.5, iterations=50, tol=1e-14, differentiable=True)
    (grad,) = torch.autograd.grad(x.square().sum(), y)
    exact = torch.linalg.solve(M.T @ M + 0.5 * torch.eye(6, dtype=M.dtype), M.T @ y.T).T
    (grad_exact,) = torch.autograd.grad(exact.square().sum(), y)
    torch.testing.assert_close(grad, grad_exact, rtol=1e-7, atol=1e-9)
    assert not cg_normal(y, A, lam=0.5).requires_grad
    with pytest.raises(ValueError, match="^lam: differentiable=True needs a number lam"):
        cg_normal(y, A, differentiable=True)


def test_identity_closed_form():
    y = random_tensor((2, 3, 8, 8), dtype=torch.float32)
    x = cg_normal(y, Identity((8, 8)), lam=3.0, iterations=5)
    torch.testing.assert_close(x, y / 4)


def test_history_and_data_residual_monotone():
    g = torch.Generator().manual_seed(0)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64) / 16
    A = Convolution((16, 16), kernel)
    y = A(torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64))
    data = []
    x, hist = cg_normal(
        y, A, lam=0.0, iterations=40, tol=0.0, return_history=True,
        callback=lambda k, xk: data.append(torch.linalg.vector_norm(A(xk) - y, dim=(-2, -1))),
    )
    assert hist.shape == (41, 2, 1)
    assert torch.allclose(hist[0], torch.ones(2, 1, dtype=hist.dtype))
    data = torch.stack(data)
    # CGLS minimises ||y - A x_k|| over nested Krylov spaces: the data residual never increases
    assert bool((data[1:] <= data[:-1] * (1 + 1e-9)).all())
    assert bool((hist[-1] < 1e-3).all())


def test_callback_counts_and_early_stop():
    y = random_tensor((4, 30), seed=3)
    A = DenseMatrix(random_tensor((30, 10), seed=4))
    seen = []
    x, hist = cg_normal(y, A, lam=0.0, iterations=100, tol=1e-8, return_history=True,
                        callback=lambda k, xk: seen.append(k))
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) <= 20  # 10 unknowns: converged long before 100
    assert bool((hist[-1] <= 1e-8).all())


def test_batch_equals_single_calls():
    M = random_tensor((25, 12), seed=5)
    A = DenseMatrix(M)
    y = random_tensor((3, 25), seed=6) * torch.tensor([[1.0], [100.0], [0.01]], dtype=torch.float64)
    lam = torch.tensor([0.0, 1.0, 10.0], dtype=torch.float64)
    x0 = random_tensor((3, 12), seed=7)
    xb, hb = cg_normal(y, A, lam=lam, iterations=8, tol=1e-3, x0=x0, return_history=True)
    for i in range(3):
        xi, hi = cg_normal(y[i : i + 1], A, lam=float(lam[i]), iterations=8, tol=1e-3, x0=x0[i : i + 1],
                           return_history=True)
        torch.testing.assert_close(xb[i : i + 1], xi, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(hb[: hi.shape[0], i], hi[:, 0], rtol=1e-10, atol=1e-12)


def test_zero_measurements_give_zero():
    A = DenseMatrix(random_tensor((10, 5), seed=8))
    x, hist = cg_normal(torch.zeros(2, 10, dtype=torch.float64), A, return_history=True)
    assert bool((x == 0).all()) and bool((hist == 0).all())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lam": -1.0}, "lam"),
        ({"lam": torch.tensor([1.0, -1.0])}, "lam"),
        ({"lam": torch.ones(3)}, "lam"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 2.5}, "iterations"),
        ({"tol": -1e-3}, "tol"),
        ({"x0": torch.zeros(2, 4)}, "x0"),
        ({"x0": torch.zeros(2, 5, dtype=torch.complex128)}, "x0"),
    ],
)
def test_bad_arguments(kwargs, name):
    A = DenseMatrix(random_tensor((10, 5), seed=9))
    y = random_tensor((2, 10), seed=10)
    with pytest.raises(ValueError, match=rf"^{name}:"):
        cg_normal(y, A, **kwargs)


def test_bad_measurements_and_operator():
    A = DenseMatrix(random_tensor((10, 5), seed=9))
    with pytest.raises(ValueError, match=r"^y:"):
        cg_normal(torch.zeros(2, 9, dtype=torch.float64), A)
    with pytest.raises(ValueError, match=r"^operator:"):
        cg_normal(torch.zeros(2, 10), lambda x: x)
    with pytest.raises(ValueError, match=r"^y:"):
        zero_filled(torch.zeros(2, 10, dtype=torch.complex128), A)


# ---------------------------------------------------------------- CG-SENSE on multi-coil MaskedFourier

def _phantom(n: int) -> torch.Tensor:
    """A complex test image ``(1, 1, n, n)``: piecewise-constant magnitude with a smooth phase."""
    from tests.classical.helpers import squares_phantom

    yy = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
    return (squares_phantom(n, dtype=torch.float64) * torch.exp(1j * (0.5 * yy + 0.2)))[None, None].to(torch.complex64)


def test_cg_sense_converges_and_beats_zero_filled():
    from rim_monai.operators import MaskedFourier, birdcage_maps, equispaced_mask

    x = _phantom(64)
    M = MaskedFourier(equispaced_mask((64, 64), acceleration=2, seed=0), birdcage_maps(8, (64, 64)))
    y = M(x)
    data = []
    x_cg, hist = cg_normal(
        y, M, iterations=60, tol=1e-5, return_history=True,
        callback=lambda k, xk: data.append(float(torch.linalg.vector_norm(M(xk) - y))),
    )
    assert float(hist[-1]) < 1e-4  # relative normal-equation residual ||A^H(y - A x)|| / ||A^H y||
    assert all(b <= a * (1 + 1e-5) for a, b in zip(data, data[1:]))  # data residual: monotone (CGLS)
    assert data[-1] < 1e-3 * float(torch.linalg.vector_norm(y))
    err_cg = torch.linalg.vector_norm(x_cg - x)
    err_zf = torch.linalg.vector_norm(zero_filled(y, M) - x)
    assert err_cg < 0.01 * err_zf


def test_cg_sense_per_sample_maps_batch_equals_single():
    from rim_monai.operators import MaskedFourier, birdcage_maps, random_mask

    x = torch.cat([_phantom(32), 2 * _phantom(32).flip(-1)])
    sens = torch.stack([birdcage_maps(4, (32, 32)), birdcage_maps(4, (32, 32), radius=2.0)])
    masks = torch.stack([random_mask((32, 32), 3, seed=s)[None] for s in (0, 1)])
    y = MaskedFourier(masks, sens)(x)
    xb = cg_normal(y, MaskedFourier(masks, sens), lam=torch.tensor([0.0, 0.01]), iterations=10, tol=1e-4)
    for i, lam in enumerate((0.0, 0.01)):
        xi = cg_normal(y[i : i + 1], MaskedFourier(masks[i : i + 1], sens[i : i + 1]), lam=lam, iterations=10, tol=1e-4)
        torch.testing.assert_close(xb[i : i + 1], xi, rtol=1e-4, atol=1e-5)


def test_default_stops_at_the_holdout_iteration_when_the_coil_maps_are_wrong():
    """Model error (coil maps with a smooth per-coil phase error) keeps the residual above the noise, so the
    discrepancy principle alone runs CG into semi-convergence (8.3 dB here, zero-filled 17.0); the hold-out count
    stops it near its best iterate."""
    from rim_monai.data import smooth_phase
    from rim_monai.operators import MaskedFourier, birdcage_maps, random_mask
    from tests.classical.helpers import squares_phantom

    n = 64
    x = torch.zeros(n, n)
    x[8:56, 8:56] = squares_phantom(48)
    mask, maps = random_mask((n, n), 4, seed=0), birdcage_maps(8, (n, n))
    y = MaskedFourier(mask, maps)(x.to(torch.complex64)[None, None])
    g = torch.Generator().manual_seed(1)
    phase = torch.stack([smooth_phase((n, n), 0.3, 3, g) for _ in range(8)])
    wrong = MaskedFourier(mask, maps * torch.exp(1j * phase))

    def psnr(z):
        return float(10 * torch.log10(x.max() ** 2 / (z.abs().reshape(n, n) - x).square().mean()))

    assert psnr(cg_normal(y, wrong)) >= psnr(zero_filled(y, wrong))
    assert psnr(cg_normal(y, wrong, lam=0.0, iterations=30)) < psnr(zero_filled(y, wrong)) - 5


def test_holdout_stop_batched_equals_single_samples():
    from rim_monai.operators import MaskedFourier, birdcage_maps, random_mask

    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 32, 32, generator=g).to(torch.complex64)
    masks = torch.stack([random_mask((32, 32), 4, seed=s) for s in (0, 1)])[:, None]
    A = MaskedFourier(masks, birdcage_maps(4, (32, 32))[None])
    y = A(x)
    y = y + 0.05 * torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g)) * (masks != 0)
    batched = cg_normal(y, A)
    for i in range(2):
        single = cg_normal(y[i : i + 1], MaskedFourier(masks[i : i + 1], birdcage_maps(4, (32, 32))[None]))
        torch.testing.assert_close(batched[i : i + 1], single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("complex_", [False, True])
def test_shifted_solves_equal_one_cg_run_per_weight(complex_):
    """cg_normal_shifted: every weight's iterate equals cg_normal's after the same number of iterations (the Krylov
    spaces are shared), and the converged solutions are the exact Tikhonov solutions."""
    from rim_monai.classical import cg_normal_shifted

    M = random_tensor((30, 20), complex_, seed=5)
    A = DenseMatrix(M)
    y = random_tensor((3, 30), complex_, seed=6)
    lams = [2.0, 0.5, 0.05, 0.0]
    for iterations in (1, 3, 8):
        xs = cg_normal_shifted(y, A, lams, iterations=iterations, tol=0)
        assert xs.shape == (4, 3, 20)
        for x, lam in zip(xs, lams):
            ref = cg_normal(y, A, lam=lam, iterations=iterations, tol=0)
            assert torch.linalg.vector_norm(x - ref) <= 1e-8 * torch.linalg.vector_norm(ref)
    xs = cg_normal_shifted(y, A, lams, iterations=100, tol=1e-13)
    for x, lam in zip(xs, lams):
        exact = torch.linalg.solve(M.conj().T @ M + lam * torch.eye(20, dtype=M.dtype), (y @ M.conj()).T).T
        assert torch.linalg.vector_norm(x - exact) <= 1e-7 * torch.linalg.vector_norm(exact)


def test_shifted_solves_are_per_sample_and_check_their_weights():
    """Per-sample masks in float32 k-space: a batched call equals single-sample calls and cg_normal to float
    rounding; bad weight lists are named."""
    from rim_monai.classical import cg_normal_shifted

    g = torch.Generator().manual_seed(0)
    sens = torch.complex(torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g))
    sens = sens / sens.abs().square().sum(1, keepdim=True).sqrt()
    mask = (torch.rand(2, 1, 1, 16, generator=g) < 0.4).float().expand(2, 1, 16, 16).clone()
    mask[..., 6:10] = 1
    A = MaskedFourier(mask, sens)
    y = A(torch.complex(torch.randn(2, 1, 16, 16, generator=g), torch.randn(2, 1, 16, 16, generator=g)))
    lams = [1.0, 0.1, 0.001]
    xs = cg_normal_shifted(y, A, lams, iterations=12, tol=0)
    for b in range(2):
        single = cg_normal_shifted(y[b : b + 1], MaskedFourier(mask[b : b + 1], sens[b : b + 1]), lams, 12, tol=0)
        torch.testing.assert_close(xs[:, b : b + 1], single, rtol=1e-5, atol=1e-6)
    for x, lam in zip(xs, lams):
        ref = cg_normal(y, A, lam=lam, iterations=12, tol=0)
        assert torch.linalg.vector_norm(x - ref) <= 1e-5 * torch.linalg.vector_norm(ref)
    for bad in ([], [-1.0], [float("nan")], 0.1):
        with pytest.raises(ValueError, match="^lams"):
            cg_normal_shifted(y, A, bad)
    with pytest.raises(ValueError, match="^iterations"):
        cg_normal_shifted(y, A, lams, iterations=0)

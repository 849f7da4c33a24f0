"""landweber: projected gradient descent on the least-squares data term."""

from __future__ import annotations

import pytest
import torch

from rim_monai.classical import landweber
from rim_monai.operators import Identity
from tests.classical.helpers import Convolution, DenseMatrix, random_tensor

BLUR = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64) / 16


@pytest.mark.parametrize("nonneg", [False, True])
def test_data_term_decreases(nonneg):
    A = Convolution((16, 16), BLUR)
    x_true = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = A(x_true) + 0.01 * random_tensor((2, 1, 16, 16), seed=1)
    data = [0.5 * torch.linalg.vector_norm(y, dim=(-2, -1)) ** 2]
    x = landweber(y, A, iterations=30, nonneg=nonneg,
                  callback=lambda k, xk: data.append(0.5 * torch.linalg.vector_norm(A(xk) - y, dim=(-2, -1)) ** 2))
    data = torch.stack(data)
    assert data.shape == (31, 2, 1)
    assert bool((data[1:] <= data[:-1] * (1 + 1e-12)).all())
    assert bool((data[-1] < 0.2 * data[0]).all())
    if nonneg:
        assert bool((x >= 0).all())


@pytest.mark.parametrize("complex_", [False, True])
def test_converges_to_least_squares(complex_):
    M = random_tensor((40, 8), complex_, seed=2) + 4 * torch.eye(40, 8, dtype=torch.complex128 if complex_ else torch.float64)
    A = DenseMatrix(M)
    y = random_tensor((3, 40), complex_, seed=3)
    x = landweber(y, A, iterations=400)
    ref = torch.linalg.lstsq(M, y.T).solution.T
    assert torch.linalg.vector_norm(x - ref) <= 1e-6 * torch.linalg.vector_norm(ref)


def test_default_step_is_inverse_squared_norm():
    y = random_tensor((2, 1, 8, 8), dtype=torch.float32)
    torch.testing.assert_close(landweber(y, Identity((8, 8)), iterations=1), y)  # omega = 1/||I||^2 = 1
    A = DenseMatrix(3 * torch.eye(5, dtype=torch.float64))
    yd = random_tensor((2, 5))
    torch.testing.assert_close(landweber(yd, A, iterations=1), yd / 3)  # omega = 1/9: x1 = A^T y / 9


def test_batch_equals_single_calls():
    A = Convolution((12, 12), BLUR)
    y = random_tensor((3, 1, 12, 12), seed=4)
    step = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    xb = landweber(y, A, step=step, iterations=7, nonneg=True)
    for i in range(3):
        xi = landweber(y[i : i + 1], A, step=float(step[i]), iterations=7, nonneg=True)
        torch.testing.assert_close(xb[i : i + 1], xi, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"step": 0.0}, "step"), ({"step": -1.0}, "step"), ({"step": torch.tensor([1.0, -1.0])}, "step"),
     ({"iterations": 0}, "iterations"), ({"x0": torch.zeros(3, 5, dtype=torch.float64)}, "x0")],
)
def test_bad_arguments(kwargs, name):
    A = DenseMatrix(random_tensor((10, 5), seed=5))
    with pytest.raises(ValueError, match=rf"^{name}:"):
        landweber(random_tensor((2, 10), seed=6), A, **kwargs)


def test_nonneg_needs_real_images():
    A = Identity((4, 4), complex_=True)
    with pytest.raises(ValueError, match=r"^nonneg:"):
        landweber(torch.zeros(1, 4, 4, dtype=torch.complex64), A, nonneg=True)


def test_per_sample_operator_default_step():
    """Masks with a batch dimension: the default step comes from a batched power iteration, one norm per sample."""
    from rim_monai.operators import MaskedFourier, birdcage_maps, random_mask

    sens = torch.stack([birdcage_maps(4, (16, 16)), 3 * birdcage_maps(4, (16, 16))])
    masks = torch.stack([random_mask((16, 16), 2, seed=s)[None] for s in (0, 1)])
    x = random_tensor((2, 1, 16, 16), complex_=True, dtype=torch.float32, seed=7).to(torch.complex64)
    y = MaskedFourier(masks, sens)(x)
    xb = landweber(y, MaskedFourier(masks, sens), iterations=5)
    for i in range(2):
        A_i = MaskedFourier(masks[i : i + 1], sens[i : i + 1])
        # a single sample's operator is shared by its batch and uses the cached A.opnorm() (50 power steps, 1e-5),
        # the batch a batched power iteration: they agree on ||A|| to ~1e-3
        torch.testing.assert_close(xb[i : i + 1], landweber(y[i : i + 1], A_i, iterations=5), rtol=1e-2, atol=5e-4)

"""The batched-solver bookkeeping of ``rim_monai.classical.batching`` against direct per-sample computations."""

from __future__ import annotations

import pytest
import torch

from rim_monai.classical.batching import (
    check_initial,
    check_solver_inputs,
    expand,
    operator_norm,
    per_sample,
    rdot,
    sqnorm,
)
from rim_monai.operators import Identity, MaskedFourier
from tests.classical.helpers import DenseMatrix, random_tensor


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(1, 4, 4), torch.nn.Identity(), 5, 0.0), "^operator: expected a rim_monai"),
        ((torch.zeros(1, 4, 5), Identity((4, 4)), 5, 0.0), "^y: expected shape"),
        ((torch.zeros(1, 4, 4), Identity((4, 4)), 0, -1.0), "^iterations: expected a positive integer"),  # in order
        ((torch.zeros(1, 4, 4), Identity((4, 4)), 5, -1.0), "^tol: expected a non-negative number"),
    ],
)
def test_check_solver_inputs_names_the_first_bad_argument(args, match):
    with pytest.raises(ValueError, match=match):
        check_solver_inputs(*args)


def test_check_solver_inputs_returns_clean_values():
    y = torch.zeros(2, 4, 4)
    assert check_solver_inputs(y, Identity((4, 4)), 7, 1) == (7, 1.0)
    assert check_solver_inputs(y, Identity((4, 4)), 7) == (7, None)  # tol not checked when not given


def test_per_sample_aligns_to_leading_dimensions():
    like = torch.zeros(3, 2, 5)
    torch.testing.assert_close(per_sample(2.0, "lam", (3, 2), like), torch.full((3, 2), 2.0))
    lam = per_sample(torch.tensor([1.0, 2.0, 3.0]), "lam", (3, 2), like)  # (B,) serves (B, C)
    torch.testing.assert_close(lam, torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))
    with pytest.raises(ValueError, match="^lam: expected a non-negative value"):
        per_sample(-1.0, "lam", (3, 2), like)
    with pytest.raises(ValueError, match="^step: expected a positive value"):
        per_sample(0.0, "step", (3, 2), like, positive=True)
    with pytest.raises(ValueError, match="^lam: expected a scalar or a per-sample tensor"):
        per_sample(torch.ones(4), "lam", (3, 2), like)


@pytest.mark.parametrize("complex_", [False, True])
def test_norms_and_inner_products_per_sample(complex_):
    a, b = random_tensor((3, 2, 4, 5), complex_, seed=1), random_tensor((3, 2, 4, 5), complex_, seed=2)
    expected_sq = torch.stack([torch.stack([torch.vdot(a[i, j].flatten(), a[i, j].flatten()).real
                                            for j in range(2)]) for i in range(3)])
    expected_dot = torch.stack([torch.stack([torch.vdot(a[i, j].flatten(), b[i, j].flatten()).real
                                             for j in range(2)]) for i in range(3)])
    torch.testing.assert_close(sqnorm(a, 2), expected_sq)
    torch.testing.assert_close(rdot(a, b, 2), expected_dot)
    assert expand(expected_sq, 2).shape == (3, 2, 1, 1)


def test_check_initial():
    like = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    assert check_initial(torch.ones(2, 1, 3, 3), like).dtype == torch.float64
    with pytest.raises(ValueError, match="^x0: expected shape"):
        check_initial(torch.ones(2, 3, 3), like)


def test_operator_norm_shared_and_per_sample():
    matrix = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))
    b = torch.zeros(2, 3, dtype=torch.float64)
    torch.testing.assert_close(operator_norm(DenseMatrix(matrix), b), torch.full((2,), 3.0, dtype=torch.float64),
                               rtol=1e-4, atol=0)
    masks = torch.zeros(2, 1, 8, 8)  # per-sample weights: gain 2 for sample 0, 0.5 for sample 1
    masks[0] = 2.0
    masks[1, 0, :, :4] = 0.5
    norms = operator_norm(MaskedFourier(masks), torch.zeros(2, 1, 8, 8, dtype=torch.complex64))
    assert norms.shape == (2, 1)
    torch.testing.assert_close(norms, torch.tensor([[2.0], [0.5]]), rtol=1e-3, atol=0)

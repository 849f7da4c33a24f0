"""zero_filled and fbp."""

from __future__ import annotations

import pytest
import torch

from rim_monai.classical import fbp, zero_filled
from rim_monai.operators import Identity, UnsupportedAbilityError
from tests.classical.helpers import DenseMatrix, random_tensor


def test_zero_filled_is_adjoint():
    M = random_tensor((6, 4), complex_=True, seed=1)
    y = random_tensor((2, 3, 6), complex_=True, seed=2)
    torch.testing.assert_close(zero_filled(y, DenseMatrix(M)), y @ M.conj())


def test_fbp_needs_the_fbp_ability():
    with pytest.raises(UnsupportedAbilityError, match=r"^operator: Identity does not support 'fbp'.*zero_filled"):
        fbp(torch.zeros(1, 1, 4, 4), Identity((4, 4)))


def test_fbp_delegates_arguments():
    calls = []

    class WithFBP(Identity):
        abilities = Identity.abilities | {"fbp"}

        def fbp(self, y, filter="ram-lak", frequency_scaling=1.0):
            calls.append((filter, frequency_scaling))
            return 2 * y

    y = torch.ones(1, 1, 4, 4)
    out = fbp(y, WithFBP((4, 4)), filter="cosine", frequency_scaling=0.5)
    assert calls == [("cosine", 0.5)] and torch.equal(out, 2 * y)
    with pytest.raises(ValueError, match=r"^frequency_scaling:"):
        fbp(y, WithFBP((4, 4)), frequency_scaling=0.0)
    with pytest.raises(ValueError, match=r"^y:"):
        fbp(torch.ones(1, 1, 4, 5), WithFBP((4, 4)))

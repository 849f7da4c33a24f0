"""``all_finite`` and the finiteness part of ``check_tensor`` against ``torch.isfinite(...).all()``.

The rest of the LinearOperator contract (shapes, adjointness, autograd, devices) is the shared contract test.
"""

from __future__ import annotations

import pytest
import torch

from rim_monai.operators import OPTIONAL_ABILITIES, Identity, UnsupportedAbilityError, all_finite, check_tensor

NAN, INF = float("nan"), float("inf")
BIG = 3.0e38  # finite in float32, but three of them sum to +Inf


def _tensor(values, dtype):
    return torch.tensor(values, dtype=dtype)


CASES = [
    # (name, tensor, expected)
    ("finite-real", _tensor([1.0, -2.0, 3.0], torch.float32), True),
    ("nan", _tensor([1.0, NAN, 3.0], torch.float32), False),
    ("plus-inf", _tensor([1.0, INF], torch.float64), False),
    ("minus-inf", _tensor([-INF, 1.0], torch.float32), False),
    ("inf-minus-inf", _tensor([INF, -INF], torch.float32), False),  # the sum is NaN
    ("overflowing-sum", _tensor([BIG, BIG, BIG], torch.float32), True),  # the sum is Inf, the values are finite
    ("overflow-cancels", _tensor([BIG, BIG, -BIG, -BIG, NAN], torch.float32), False),
    ("half-overflow", torch.full((8,), 6.0e4, dtype=torch.float16), True),
    ("bfloat16-nan", _tensor([1.0, NAN], torch.bfloat16), False),
    ("complex-finite", torch.complex(torch.ones(4), -torch.ones(4)), True),
    ("complex-nan-imag", torch.complex(torch.ones(3), _tensor([0.0, NAN, 0.0], torch.float32)), False),
    ("complex-inf-real", torch.complex(_tensor([0.0, INF], torch.float64), torch.zeros(2, dtype=torch.float64)),
     False),
    ("complex-overflow", torch.complex(torch.full((4,), BIG), torch.full((4,), -BIG)), True),
    ("empty", torch.empty(0, 3), True),
    ("integer", torch.arange(5), True),
    ("bool", torch.ones(3, dtype=torch.bool), True),
]


@pytest.mark.parametrize("name,value,expected", CASES, ids=[c[0] for c in CASES])
def test_all_finite_table(name, value, expected):
    assert all_finite(value) is expected
    if value.dtype.is_floating_point or value.dtype.is_complex:
        assert expected == bool(torch.isfinite(value).all())  # the table itself agrees with the reference


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_all_finite_finds_one_bad_element_anywhere(dtype, bad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 17, 13, generator=g, dtype=dtype)
    assert all_finite(x)
    for flat in (0, 500, x.numel() - 1):
        y = x.clone().reshape(-1)
        y[flat] = bad
        assert not all_finite(y.reshape(x.shape))
        if dtype.is_complex:  # in the imaginary part only
            z = x.clone().reshape(-1)
            z[flat] = complex(0.0, bad)
            assert not all_finite(z)
    # a non-contiguous view sees only its own elements
    y = x.clone()
    y[0, 0, 0, 1] = bad
    assert all_finite(y[..., ::2]) and not all_finite(y[..., 1::2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_check_tensor_rejects_non_finite_and_accepts_large_values(dtype):
    x = torch.full((1, 1, 4, 4), BIG, dtype=dtype)
    check_tensor(x, "x", (4, 4), dtype.is_complex)
    x[0, 0, 2, 3] = NAN
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        check_tensor(x, "x", (4, 4), dtype.is_complex)
    check_tensor(x, "x", (4, 4), dtype.is_complex, check_finite=False)


def test_operators_reject_nan_at_the_boundary():
    a = Identity((4, 4))
    x = torch.zeros(2, 1, 4, 4)
    x[1, 0, 3, 3] = NAN
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        a(x)
    with pytest.raises(ValueError, match="y: contains NaN or Inf"):
        a.adjoint(x)


# ---------------------------------------------------------------------------------------------- optional abilities
def test_abilities_are_checked_when_the_class_is_made():
    with pytest.raises(TypeError, match="implements the optional ability 'fbp' but does not declare it"):
        type("GuessedFBP", (Identity,), {"fbp": lambda self, y, **kw: y})
    with pytest.raises(TypeError, match="declares the optional ability 'fbp' but does not implement it"):
        type("ClaimedFBP", (Identity,), {"abilities": frozenset({"fbp", "replace"})})
    with pytest.raises(TypeError, match="unknown"):
        type("Flying", (Identity,), {"abilities": {"fly"}})
    declared = type("WithFBP", (Identity,), {"abilities": {"fbp", "replace"}, "fbp": lambda self, y, **kw: 2 * y})
    assert declared.abilities == frozenset({"fbp", "replace"}) and declared((4, 4)).supports("fbp")


def test_missing_ability_error_names_class_ability_and_alternative():
    a = Identity((4, 4)).H  # the adjoint as an operator has no optional ability
    with pytest.raises(UnsupportedAbilityError) as info:
        a.fbp(torch.zeros(1, 4, 4))
    message = str(info.value)
    assert message.startswith("AdjointOperator does not support 'fbp'") and "zero_filled" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, NotImplementedError)
    assert (info.value.operator_class, info.value.ability) == ("AdjointOperator", "fbp")
    with pytest.raises(UnsupportedAbilityError, match=r"^A: AdjointOperator does not support 'replace'.*new operator"):
        a.require("replace", "A")
    import pickle

    again = pickle.loads(pickle.dumps(info.value))  # a plain message exception: it crosses process boundaries
    assert type(again) is UnsupportedAbilityError and str(again) == message
    assert set(OPTIONAL_ABILITIES) == {"fbp", "replace"}

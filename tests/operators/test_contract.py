"""The contract every LinearOperator and backend satisfies: adjointness, exact autograd, shapes, devices, bad input,
and its declared optional abilities (``fbp``, ``replace``): present ones work, missing ones raise a clear error."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from rim_monai.operators import OPTIONAL_ABILITIES, UnsupportedAbilityError
from tests.operators.cases import OperatorCase, all_cases

CASES = all_cases()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _build(case: OperatorCase, device: str = "cpu"):
    for module in case.requires:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    if device == "cuda" and not case.cuda:
        pytest.skip("this backend runs on the CPU only")
    return case.build().to(device)


def _random(shape, complex_: bool, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    if complex_:
        x = torch.complex(x, torch.randn(shape, generator=g, dtype=dtype))
    return x.to(device)


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.vdot(a.reshape(-1), b.reshape(-1))


def _adjoint_error(op, batch, dtype, device) -> float:
    x = _random(batch + op.domain_shape, op.domain_is_complex, dtype, device, seed=1)
    y = _random(batch + op.range_shape, op.range_is_complex, dtype, device, seed=2)
    ax, ahy = op(x), op.adjoint(y)
    lhs, rhs = _inner(ax, y), _inner(x, ahy)
    scale = torch.linalg.vector_norm(ax) * torch.linalg.vector_norm(y)
    return float(abs(lhs - rhs) / scale)


ids = [c.name for c in CASES]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_adjointness_float32(case, device):
    op = _build(case, device)
    assert _adjoint_error(op, case.batch, torch.float32, device) <= case.tol


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_adjointness_float64(case):
    if not case.float64:
        pytest.skip("backend computes in single precision")
    op = _build(case)
    assert _adjoint_error(op, case.batch, torch.float64, "cpu") <= 1e-10


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_shapes_and_batching(case, device):
    op = _build(case, device)
    x = _random(case.batch + op.domain_shape, op.domain_is_complex, device=device)
    y = op(x)
    assert tuple(y.shape) == case.batch + op.range_shape
    assert y.dtype.is_complex == op.range_is_complex
    assert y.device.type == device
    assert tuple(op.adjoint(y).shape) == case.batch + op.domain_shape
    if case.per_sample:
        return
    # batching is exact: the batched result equals the per-sample results
    flat = x.reshape((-1,) + op.domain_shape)
    single = torch.stack([op(flat[i : i + 1])[0] for i in range(flat.shape[0])])
    torch.testing.assert_close(y.reshape(single.shape), single, rtol=1e-4, atol=1e-5 * float(single.abs().max()))


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_autograd_is_exact_adjoint(case):
    op = _build(case)
    x = _random(case.batch + op.domain_shape, op.domain_is_complex, seed=3).requires_grad_(True)
    g = _random(case.batch + op.range_shape, op.range_is_complex, seed=4)
    y = op(x)
    y.backward(g)
    torch.testing.assert_close(x.grad, op.adjoint(g), rtol=1e-5, atol=1e-6 * float(x.grad.abs().max()))
    y_in = _random(case.batch + op.range_shape, op.range_is_complex, seed=5).requires_grad_(True)
    h = _random(case.batch + op.domain_shape, op.domain_is_complex, seed=6)
    op.adjoint(y_in).backward(h)
    torch.testing.assert_close(y_in.grad, op(h), rtol=1e-5, atol=1e-6 * float(y_in.grad.abs().max()))


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_opnorm_bounds_the_gain(case):
    op = _build(case)
    norm = op.opnorm()
    assert norm > 0
    assert op.opnorm() == norm  # cached
    if case.per_sample:
        return  # one sample broadcast against B per-sample buffers is a B-fold operator: its gain is not bounded by A's
    x = _random((4,) + op.domain_shape, op.domain_is_complex, seed=7)
    gains = [float(torch.linalg.vector_norm(op(x[i])) / torch.linalg.vector_norm(x[i])) for i in range(4)]
    assert max(gains) <= norm * (1 + 1e-3)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_bad_input_names_the_argument(case):
    op = _build(case)
    good_x = _random(case.batch + op.domain_shape, op.domain_is_complex)
    wrong_shape = _random(case.batch + tuple(s + 1 for s in op.domain_shape), op.domain_is_complex)
    with pytest.raises(ValueError, match=r"x: expected shape"):
        op(wrong_shape)
    wrong_kind = good_x.abs() if op.domain_is_complex else good_x.to(torch.complex64)
    with pytest.raises(ValueError, match=r"x: expected a (real|complex) tensor"):
        op(wrong_kind)
    with pytest.raises(ValueError, match=r"x: expected a (real|complex) tensor"):
        op(good_x.abs().to(torch.int64) if not op.domain_is_complex else good_x.real.to(torch.int64))
    nan = good_x.clone()
    nan.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=r"x: contains NaN"):
        op(nan)
    bad_y = _random(case.batch + tuple(s + 1 for s in op.range_shape), op.range_is_complex)
    with pytest.raises(ValueError, match=r"y: expected shape"):
        op.adjoint(bad_y)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"x: expected a tensor on device"):
            op(good_x.cuda())


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_declared_abilities(case):
    op = _build(case)
    assert all(isinstance(op.supports(ability), bool) for ability in OPTIONAL_ABILITIES)
    with pytest.raises(ValueError, match=r"^ability: expected one of"):
        op.supports("fly")
    y = _random(case.batch + op.range_shape, op.range_is_complex)
    name = type(op).__name__
    if op.supports("fbp"):
        assert tuple(op.fbp(y).shape) == case.batch + op.domain_shape
    else:
        with pytest.raises(UnsupportedAbilityError, match=rf"^{name} does not support 'fbp' .*; use .*supports\('fbp'\)"):
            op.fbp(y)
        with pytest.raises(UnsupportedAbilityError, match=r"^operator: "):
            op.require("fbp", "operator")
    if not op.supports("replace"):
        with pytest.raises(UnsupportedAbilityError, match=rf"{name} does not support 'replace'"):
            op.replace()
        with pytest.raises(UnsupportedAbilityError, match="'replace'"):
            op.params()
    assert case.changes == {} or op.supports("replace")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_replace_rebuilds_and_changes_the_operator(case, device):
    op = _build(case, device)
    if not op.supports("replace"):
        pytest.skip(f"this {type(op).__name__} does not support 'replace'")
    params = op.params()
    assert set(params) == set(op.PARAMETERS)
    x = _random(case.batch + op.domain_shape, op.domain_is_complex, device=device)
    expected = op(x).detach()
    for name, value in params.items():  # every parameter round-trips: the same numbers, a new operator
        same = op.replace(**{name: value})
        assert type(same) is type(op) and same is not op and same.device == op.device
        assert torch.equal(same(x).detach(), expected), name
    if case.changes:
        changed = op.replace(**case.changes)
        assert changed.device == op.device and changed.domain_shape == op.domain_shape
        assert not torch.allclose(changed(x).detach(), expected)
        assert torch.equal(op(x).detach(), expected)  # the operator itself is not changed
    with pytest.raises(ValueError, match=r"^changes: unknown parameter\(s\) \['not_a_parameter'\]"):
        op.replace(not_a_parameter=1)

import pytest
import torch

from rim_monai.adaptation import (
    GeometryParameter,
    OperatorParameter,
    ParameterEstimator,
    Reestimated,
    unit_sum_nonnegative,
)
from rim_monai.operators import Blur, Identity, MaskedFourier, gaussian_kernel
from tests.adaptation.toys import GaussBlur, ShiftPair


def test_operator_parameter_binds_a_learnable_parameter():
    op = ShiftPair(shift=0.5, learnable=True)
    p = OperatorParameter("shift", lr=0.1, bounds=(-1, 1))
    assert p.bind(op) is op.shift
    with torch.no_grad():
        op.shift.fill_(3.0)
    p.constrain(op)
    assert p.value(op) == 1.0


@pytest.mark.parametrize(
    "op,name,match",
    [
        (ShiftPair(shift=0.5), "shift", "nn.Parameter"),  # a plain float
        (GaussBlur(), "kernel", "nn.Parameter"),  # a buffer
        (Identity((4, 4)), "shift", "no attribute"),
        (Blur(gaussian_kernel(3, 1.0), (8, 8)), "kernel", "learnable"),
    ],
)
def test_operator_parameter_rejects_what_gradients_cannot_reach(op, name, match):
    with pytest.raises(ValueError, match=match):
        OperatorParameter(name).bind(op)


def test_operator_parameter_needs_native_autograd():
    op = ShiftPair(learnable=True)
    op.native_autograd = False
    with pytest.raises(ValueError, match="GeometryParameter"):
        OperatorParameter("shift").bind(op)


def test_real_operators_expose_their_learnable_parameters():
    blur = Blur(gaussian_kernel(3, 1.0), (8, 8), learnable_kernel=True)
    assert OperatorParameter("kernel").bind(blur) is blur.kernel
    mri = MaskedFourier(torch.ones(8, 8), learnable_shift=True)
    assert OperatorParameter("shift").bind(mri) is mri.shift
    assert OperatorParameter("shift").value(mri) == [0.0, 0.0]


def test_unit_sum_nonnegative_projection():
    k = unit_sum_nonnegative(torch.tensor([[-1.0, 1.0], [1.0, 2.0]]))
    assert float(k.min()) >= 0 and float(k.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(unit_sum_nonnegative(torch.zeros(2, 2)), torch.full((2, 2), 0.25))


def test_geometry_parameter_uses_replace():
    p = GeometryParameter("shift", bounds=(-2, 2))
    op = ShiftPair(shift=0.25)
    p.bind(op)
    assert p.value(op) == 0.25
    moved = p.apply(op, 1.5)
    assert isinstance(moved, ShiftPair) and moved.shift == 1.5 and op.shift == 0.25
    with pytest.raises(ValueError, match="^name: AdjointOperator does not support 'replace'"):
        p.bind(Identity((4, 4)).H)


def test_reestimated_rebuilds():
    p = Reestimated("shift", lambda y, A: float(y.mean()))
    op = p.apply(ShiftPair(), torch.full((3, 2, 12, 12), 0.75))
    assert op.shift == 0.75
    with pytest.raises(ValueError, match="rebuild"):
        p.bind(Identity((4, 4)).H)
    Reestimated("shape", lambda y, A: (8, 8)).bind(Identity((4, 4)))  # operators that support replace need no rebuild


@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: OperatorParameter("k", lr=-1.0), "lr"),
        (lambda: OperatorParameter("k", bounds=(1, 0)), "bounds"),
        (lambda: GeometryParameter("k", bounds=(1, 1)), "bounds"),
        (lambda: GeometryParameter("k", bounds=(0, 1), tol=0), "tol"),
        (lambda: GeometryParameter("k", bounds=(0, 1), grid_points=2), "grid_points"),
        (lambda: Reestimated("k", None), "estimate"),
        (lambda: ParameterEstimator([]), "parameters"),
        (lambda: ParameterEstimator(["shift"]), "parameters"),
        (lambda: ParameterEstimator([OperatorParameter("a"), GeometryParameter("a", (0, 1))]), "unique"),
        (lambda: ParameterEstimator([OperatorParameter("a")], search_rounds=0), "search_rounds"),
        (lambda: ParameterEstimator.wrap("shift"), "estimate"),
    ],
)
def test_bad_parameter_arguments(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_wrap_accepts_one_or_many():
    one = ParameterEstimator.wrap(OperatorParameter("a"))
    many = ParameterEstimator.wrap([OperatorParameter("a"), GeometryParameter("b", (0, 1))])
    assert len(one.parameters) == 1 and len(many.parameters) == 2
    assert ParameterEstimator.wrap(None) is None and ParameterEstimator.wrap(one) is one
    assert [p.name for p in many.gradient_parameters] == ["a"] and [p.name for p in many.search_parameters] == ["b"]


def test_coil_sensitivities_replace_the_maps_and_keep_mask_and_shift():
    from rim_monai.adaptation import coil_sensitivities
    from rim_monai.operators import birdcage_maps, estimate_sensitivities, random_mask

    mask = random_mask((16, 16), 4, 0.25, seed=0)
    op = MaskedFourier(mask, birdcage_maps(4, (16, 16)), shift=(0.25, -0.5), learnable_shift=True)
    x = torch.complex(torch.rand(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))
    y = MaskedFourier(mask, birdcage_maps(6, (16, 16), radius=3.0))(x)  # new data: six coils
    p = coil_sensitivities()
    p.bind(op)
    new = p.apply(op, y)
    by_hand = MaskedFourier(mask, estimate_sensitivities(y), shift=(0.25, -0.5), shape=(16, 16), learnable_shift=True)
    assert new.range_shape == (6, 16, 16) and isinstance(new.shift, torch.nn.Parameter)
    assert torch.equal(new(x), by_hand(x))

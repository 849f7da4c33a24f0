"""adapt() with the package's operators and networks: CT geometry search, MRI k-space shift and coil maps, blur kernel."""

import copy
import math

import pytest
import torch

from rim_monai.adaptation import (
    GeometryParameter,
    OperatorParameter,
    ParameterEstimator,
    adapt,
    coil_sensitivities,
    swap_operator,
    unit_sum_nonnegative,
)
from rim_monai.classical import landweber
from rim_monai.operators import Blur, MaskedFourier, RayTransform, birdcage_maps, estimate_sensitivities, gaussian_kernel
from tests.adaptation.toys import phantoms, smooth_images
from tests.networks.cases import all_cases


class Landweber(torch.nn.Module):
    """A parameter-free reconstructor ``net(y, A)`` (20 Landweber steps): R&R+ with ``mu = inf`` estimates ψ only."""

    def forward(self, y, A):
        return landweber(y, A, iterations=20)


@pytest.fixture(scope="module")
def ct_images():
    return phantoms(3, shape=(24, 24), seed=7)


@pytest.mark.parametrize("geometry,true", [("fan", 0.7), ("fan", -1.3), ("parallel", 0.7), ("parallel", -1.3)])
def test_ct_detector_shift_is_recovered_by_the_outer_search(ct_images, geometry, true):
    a0 = RayTransform((24, 24), num_angles=30, geometry=geometry, backend="matrix")
    y = a0.replace(detector_shift=true)(ct_images)
    estimator = ParameterEstimator([GeometryParameter("detector_shift", bounds=(-3.0, 3.0), tol=0.01)], search_rounds=1)
    _, report = adapt(Landweber(), a0, y, mu=math.inf, estimate=estimator, progress=False)
    found = report.parameters_final["detector_shift"]
    assert abs(found - true) < 0.1 * a0.detector_spacing  # a tenth of a detector bin
    assert report.operator.detector_shift == found and a0.detector_shift == 0.0
    # the data term falls to the floor of the reconstructor with the true operator (Landweber's own residual)
    floor = adapt(Landweber(), a0.replace(detector_shift=true), y, mu=math.inf, steps=0, progress=False)[1]
    assert report.data_term_after < min(1.01 * floor.data_term_after, 0.5 * report.data_term_before)


def test_ct_source_distance_is_recovered_by_the_outer_search(ct_images):
    a0 = RayTransform((24, 24), num_angles=30, geometry="fan", backend="matrix")
    true = 1.1 * a0.src_radius
    y = a0.replace(src_radius=true)(ct_images)
    estimator = ParameterEstimator([GeometryParameter("src_radius", bounds=(0.8 * a0.src_radius, 1.3 * a0.src_radius),
                                                      tol=0.2, grid_points=6)])
    _, report = adapt(Landweber(), a0, y, mu=math.inf, estimate=estimator, progress=False)
    assert abs(report.parameters_final["src_radius"] / true - 1) < 0.01
    assert report.data_term_after < report.data_term_before


def test_mri_kspace_shift_is_recovered_by_gradient():
    sens = birdcage_maps(4, (16, 16))
    x = smooth_images(3, (16, 16), seed=1).to(torch.complex64)
    true = torch.tensor([0.4, -0.7])
    y = MaskedFourier(torch.ones(16, 16), sens, shift=true)(x)
    op = MaskedFourier(torch.ones(16, 16), sens, learnable_shift=True)
    _, report = adapt(Landweber(), op, y, mu=math.inf, steps=30, lr=0.08, batch_size=3, patience=None,
                      estimate=[OperatorParameter("shift")], references=x, metric_protocol="volume", progress=False)
    found = torch.tensor(report.parameters_final["shift"])
    assert float((found - true).abs().max()) < 0.1
    assert float(op.shift.detach().abs().max()) == 0.0
    assert report.psnr_after > report.psnr_before + 10.0


def test_mri_coil_sensitivities_are_reestimated_per_sample():
    mask = torch.zeros(24, 24)
    mask[:, ::2] = 1.0
    mask[:, 8:16] = 1.0  # fully sampled calibration region
    x = smooth_images(2, (24, 24), seed=3).to(torch.complex64)
    y = MaskedFourier(mask, birdcage_maps(6, (24, 24)))(x)
    wrong = MaskedFourier(mask, torch.ones(6, 24, 24, dtype=torch.complex64) / math.sqrt(6))
    _, report = adapt(Landweber(), wrong, y, mu=math.inf, steps=0, estimate=[coil_sensitivities()],
                      progress=False)
    ops = report.operator
    assert isinstance(ops, list) and len(ops) == 2 and report.config["per_sample_operators"]
    for i, op in enumerate(ops):
        torch.testing.assert_close(op.sens, estimate_sensitivities(y[i : i + 1]).to(op.sens.dtype))
    before = adapt(Landweber(), wrong, y, mu=math.inf, steps=0, progress=False)[1]
    assert report.data_term_before == pytest.approx(before.data_term_after)  # "before" is the operator as given
    assert report.eval_steps == [0, 0] and report.data_term_after < 0.5 * report.data_term_before


def test_blur_kernel_parameter_stays_a_unit_sum_kernel():
    true = gaussian_kernel(5, 1.5)
    x = phantoms(4, shape=(16, 16), seed=8)
    y = Blur(true, (16, 16))(x)
    op = Blur(gaussian_kernel(5, 0.7), (16, 16), learnable_kernel=True)
    estimate = [OperatorParameter("kernel", lr=1e-2, project=unit_sum_nonnegative)]
    _, report = adapt(Landweber(), op, y, mu=math.inf, steps=15, batch_size=4, patience=None, estimate=estimate,
                      progress=False)
    kernel = report.operator.kernel.detach()
    assert float(kernel.min()) >= 0 and float(kernel.sum()) == pytest.approx(1.0, abs=1e-5)
    assert not torch.equal(kernel, op.kernel.detach())
    assert report.data_term_after < report.data_term_before


NETWORKS = [case for case in all_cases()]


@pytest.mark.parametrize("case", NETWORKS, ids=[c.name for c in NETWORKS])
def test_rr_runs_with_every_network(case):
    a1 = RayTransform((16, 16), num_angles=12, backend="matrix")
    x = phantoms(4, shape=(16, 16), seed=9)
    y = a1(x)
    torch.manual_seed(0)
    net = case.build(1, False)
    before = copy.deepcopy(net.state_dict())
    adapted, report = adapt(net, a1, y, mu=1e-4, steps=6, lr=1e-3, batch_size=2, patience=None, progress=False)
    assert report.data_term_after < report.data_term_before
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    torch.testing.assert_close(swap_operator(adapted, report.operator, y), swap_operator(adapted, a1, y))

"""Learned primal-dual specifics: the measurement layout of the dual network, coil-count independence."""

from __future__ import annotations

import pytest
import torch

from rim_monai.networks import LearnedPrimalDual, fold_measurements, unfold_measurements
from tests.networks.problems import make_problem


@pytest.mark.parametrize(
    "shape, range_ndim, complex_, folded",
    [
        ((2, 1, 16, 46), 2, False, (2, 1, 16, 46)),  # CT sinograms (B, C, angles, detectors)
        ((2, 8, 16, 16), 3, True, (16, 2, 16, 16)),  # multi-coil k-space: coils become batch items
        ((2, 1, 16, 16), 2, True, (2, 2, 16, 16)),  # single-coil k-space
        ((2, 3, 40), 1, False, (6, 1, 1, 40)),  # random projections of RGB images
    ],
)
def test_fold_unfold_roundtrip(shape, range_ndim, complex_, folded):
    g = torch.Generator().manual_seed(0)
    t = torch.randn(shape, generator=g)
    if complex_:
        t = torch.complex(t, torch.randn(shape, generator=g))
    f, original = fold_measurements(t, range_ndim)
    assert tuple(f.shape) == folded and not f.is_complex()
    torch.testing.assert_close(unfold_measurements(f, original, complex_), t, rtol=0, atol=0)


def test_fold_puts_real_and_imaginary_parts_in_channels():
    t = torch.complex(torch.ones(1, 2, 3, 3), -2 * torch.ones(1, 2, 3, 3))
    f, _ = fold_measurements(t, 3)
    assert torch.all(f[:, 0] == 1) and torch.all(f[:, 1] == -2)


def test_same_weights_serve_any_coil_count():
    from rim_monai.operators import MaskedFourier

    net = LearnedPrimalDual(complex_=True, iterations=2, n_primal=2, n_dual=2, features=(8,)).eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    mask = torch.ones(12, 12)
    x = torch.randn(1, 1, 12, 12, dtype=torch.complex64)
    outputs = []
    for coils in (1, 4, 8):
        sens = torch.ones(coils, 12, 12, dtype=torch.complex64) / coils**0.5
        A = MaskedFourier(mask, sens)
        outputs.append(net(A(x), A))
    assert all(o.shape == x.shape and torch.isfinite(torch.view_as_real(o)).all() for o in outputs)
    # no coil-dependent parameters were created or changed
    assert net.state_dict().keys() == state.keys()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


def test_paper_configuration_parameter_count():
    # 10 iterations, 5 primal / 5 dual channels, three 3x3 convolutions with 32 features and PReLU
    net = LearnedPrimalDual()
    assert len(net.primal_blocks) == len(net.dual_blocks) == 10
    convs = [m for m in net.primal_blocks[0] if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 5] and convs[0].in_channels == 6
    assert 2.4e5 <= sum(p.numel() for p in net.parameters()) <= 2.6e5


def test_measurement_kind_must_match():
    problem = make_problem("ct-parallel")
    net = LearnedPrimalDual(complex_measurements=True, iterations=1, features=(4,))
    with pytest.raises(ValueError, match="^A: the dual network"):
        net(problem.y, problem.A)


def test_fbp_start_uses_the_operator_fbp():
    problem = make_problem("ct-parallel")
    net = LearnedPrimalDual(init="fbp", iterations=1, features=(4,))
    for block in list(net.primal_blocks) + list(net.dual_blocks):
        for p in block.parameters():
            torch.nn.init.zeros_(p)
    # with zero updates the estimate is the start
    torch.testing.assert_close(net(problem.y, problem.A), problem.A.fbp(problem.y))


@pytest.mark.parametrize("options", [{"channels_last": True}, {"channels_last": True, "autocast_dtype": "bfloat16"}])
def test_mixed_precision_keeps_float32_estimates_and_state_dict(options):
    """channels_last / bfloat16 blocks: the same parameters (a checkpoint loads both ways), float32 estimates and
    gradients, and a result close to the float32 network's."""
    from rim_monai.operators import RayTransform

    A = RayTransform((16, 16), num_angles=6, backend="matrix")
    y = A(torch.rand(2, 1, 16, 16))
    torch.manual_seed(0)
    plain = LearnedPrimalDual(iterations=2, n_primal=3, n_dual=3, features=(8,), init="fbp")
    fast = LearnedPrimalDual(iterations=2, n_primal=3, n_dual=3, features=(8,), init="fbp", **options)
    fast.load_state_dict(plain.state_dict())
    estimates = fast(y, A, return_all=True)
    assert all(x.dtype == torch.float32 for x in estimates)
    reference = plain(y, A).detach()
    tolerance = 0.05 if "autocast_dtype" in options else 1e-5
    assert float((estimates[-1].detach() - reference).norm() / reference.norm()) < tolerance
    estimates[-1].square().sum().backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in fast.parameters())


def test_lpd_autocast_dtype_is_checked():
    with pytest.raises(ValueError, match="autocast_dtype"):
        LearnedPrimalDual(iterations=1, autocast_dtype="int8")

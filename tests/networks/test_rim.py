"""RIM specifics: the likelihood gradient through the link, architectures, ablations, noise levels."""

from __future__ import annotations

import pytest
import torch

from rim_monai.networks import RIM
from rim_monai.networks.blocks import BoundaryConv2d, ConvGRUCell
from rim_monai.networks.utils import sigma_like
from tests.networks.problems import make_problem


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("link", ["identity", "sigmoid", "softplus"])
@pytest.mark.parametrize("problem_name", ["dense-projection", "ct-parallel"])
def test_likelihood_gradient_is_the_autograd_gradient_through_the_link(link, problem_name):
    problem = make_problem(problem_name)
    net = RIM(link=link, features=(4, 4), zero_init_update=False).double()
    A, y = problem.A, problem.y.double()
    eta = torch.randn(problem.x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigma = sigma_like(torch.tensor([0.3, 0.7]), eta)
    analytic = net.likelihood_gradient(eta, y, A, sigma)
    eta_ = eta.clone().requires_grad_(True)
    # log p(y | eta) = -||y - A psi(eta)||^2 / (2 (sigma^2 + eps)), per sample
    residual = y - A(net.psi(eta_))
    log_lik = -(residual.square().flatten(1).sum(1) / (2 * (sigma.flatten() ** 2 + net.likelihood.epsilon))).sum()
    (autograd,) = torch.autograd.grad(log_lik, eta_)
    torch.testing.assert_close(analytic, autograd, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("link", ["sigmoid", "softplus"])
def test_inverse_link(link):
    net = RIM(link=link, features=(4, 4), zero_init_update=False)
    x = torch.linspace(0.01, 0.99, 50)
    torch.testing.assert_close(net.psi(net.psi_inverse(x)), x, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(net.psi_inverse(torch.tensor([-1.0, 0.0, 2.0, 1e4]))).all()


def test_complex_rim_needs_the_identity_link():
    with pytest.raises(ValueError, match="^link: complex"):
        RIM(complex_=True, link="sigmoid")


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"architecture": "unet"}, "^architecture"),
        ({"variant": "lstm"}, "^variant"),
        ({"link": "tanh"}, "^link"),
        ({"init": "random"}, "^init"),
        ({"iterations": 0}, "^iterations"),
        ({"features": (8, 8), "dilations": (1,)}, "^dilations"),
        ({"padding_mode": "periodic"}, "^padding_mode"),
        ({"architecture": "paper", "padding_mode": "circular"}, "^padding_mode: the strided"),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        RIM(**kwargs)


def test_atrous_has_about_half_a_million_parameters():
    # the paper's super-resolution model: "only about 500.000 parameters"
    assert 4.5e5 <= _count(RIM(architecture="atrous")) <= 5.5e5
    assert 4.5e5 <= _count(RIM(in_channels=3, architecture="atrous")) <= 5.5e5


def test_paper_architecture_layers():
    net = RIM(architecture="paper")
    cell = net.cell
    assert cell.down.stride == (2, 2) and cell.down.out_channels == 64 and cell.down.kernel_size == (3, 3)
    assert isinstance(cell.core, ConvGRUCell) and cell.core.hidden_channels == 256
    assert cell.up.stride == (2, 2) and cell.up.out_channels == 64
    assert cell.out.kernel_size == (3, 3) and cell.out.out_channels == 1


@pytest.mark.parametrize("size", [(15, 15), (16, 13), (9, 20)])
def test_paper_architecture_handles_odd_sizes(size):
    from rim_monai.operators import Identity

    net = RIM(architecture="paper", features=(8, 16), zero_init_update=False, iterations=2)
    y = torch.rand(1, 1, *size)
    assert net(y, Identity(size)).shape == y.shape


def test_ablations():
    rim, gdn, ffn = (RIM(variant=v, features=(8, 8), zero_init_update=False) for v in ("rim", "gdn", "ffn"))
    assert rim.cell.convs[0].in_channels == 2 and gdn.cell.convs[0].in_channels == 1
    assert not any(isinstance(m, ConvGRUCell) for m in ffn.modules())
    # GDN ignores the estimate: changing eta only through the gradient path is all it sees
    problem = make_problem("denoise")
    zero_grad = torch.zeros_like(problem.x)
    eta_a, eta_b = torch.zeros_like(problem.x), torch.ones_like(problem.x)
    for net, same in ((gdn, True), (rim, False)):
        inputs = [zero_grad if net.variant == "gdn" else torch.cat([zero_grad, e], 1) for e in (eta_a, eta_b)]
        da, _ = net.cell(inputs[0], None)
        db, _ = net.cell(inputs[1], None)
        assert torch.equal(da, db) == same


@pytest.mark.parametrize("architecture", ["paper", "compact"])
def test_ffn_keeps_no_state(architecture):
    ffn = RIM(variant="ffn", architecture=architecture, features=(8, 8), zero_init_update=False).eval()
    rim = RIM(variant="rim", architecture=architecture, features=(8, 8), zero_init_update=False).eval()
    u = torch.randn(1, 2, 8, 8)
    assert ffn.cell(u, None)[1] is None
    assert rim.cell(u, None)[1] is not None


def test_sigma_changes_the_gradient_scale_per_sample():
    problem = make_problem("denoise")
    net = RIM(features=(8, 8), zero_init_update=False, iterations=2).eval()
    out_scalar = net(problem.y, problem.A, sigma=0.5)
    out_tensor = net(problem.y, problem.A, sigma=torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(out_scalar, out_tensor)
    out_mixed = net(problem.y, problem.A, sigma=torch.tensor([0.5, 3.0]))
    torch.testing.assert_close(out_mixed[0], out_scalar[0])
    assert not torch.allclose(out_mixed[1], out_scalar[1])
    with pytest.raises(ValueError, match="^sigma"):
        net(problem.y, problem.A, sigma=torch.ones(3))
    with pytest.raises(ValueError, match="^sigma"):
        net(problem.y, problem.A, sigma=-1.0)


def test_epsilon_is_learned():
    problem = make_problem("denoise")
    net = RIM(features=(8, 8), zero_init_update=False, iterations=2)
    (net(problem.y, problem.A) - problem.x).square().mean().backward()
    assert net.likelihood.raw_epsilon.grad is not None and net.likelihood.raw_epsilon.grad != 0


@pytest.mark.parametrize("init", ["zeros", "adjoint", "fbp", "cg"])
def test_initialisations(init):
    problem = make_problem("ct-parallel")
    net = RIM(features=(4, 4), zero_init_update=False, iterations=2, init=init, link="softplus").eval()
    assert torch.isfinite(net(problem.y, problem.A)).all()


def test_cg_start_is_the_cgls_iterate_and_fits_the_data_better_than_zero_filled():
    """``init="cg"``: an untrained RIM (zero update) returns ``cg_iterations`` CGLS iterations on multi-coil MRI."""
    from rim_monai.classical import cg_normal
    from rim_monai.networks.utils import NETWORK_CG_TOL

    problem = make_problem("mri-8coil")
    y, A = problem.y, problem.A
    net = RIM(complex_=True, features=(4, 4), iterations=2, init="cg", cg_iterations=3).eval()
    with torch.no_grad():
        x = net(y, A)
    torch.testing.assert_close(x, cg_normal(y, A, lam=0.0, iterations=3, tol=NETWORK_CG_TOL), rtol=1e-5, atol=1e-6)
    zero_filled = A.adjoint(y)
    assert (A(x) - y).norm() < 0.8 * (A(zero_filled) - y).norm()
    with pytest.raises(ValueError, match="^cg_iterations"):
        RIM(complex_=True, init="cg", cg_iterations=0)


def test_output_data_consistency_is_the_proximal_step_and_differentiable():
    """``dc_lambda``: each returned estimate x becomes argmin ||A z - y||^2 + lam ||z - x||^2 (converged CG equals the
    closed form on a dense operator, to CG's tolerance), gradients reach the weights through it, and bad settings are named."""
    from rim_monai.networks.utils import data_consistency

    problem = make_problem("dense-projection")
    y, A = problem.y.double(), problem.A
    torch.manual_seed(0)
    plain = RIM(features=(4, 4), zero_init_update=False, iterations=2).double()
    dc = RIM(features=(4, 4), zero_init_update=False, iterations=2, dc_lambda=0.3, dc_iterations=60).double()
    dc.load_state_dict(plain.state_dict())
    with torch.no_grad():
        xs, xs_dc = plain(y, A, return_all=True), dc(y, A, return_all=True)
    matrix = A.matrix.double()  # (m, H*W), one image channel
    normal = matrix.T @ matrix + 0.3 * torch.eye(matrix.shape[1], dtype=matrix.dtype)
    for x, x_dc in zip(xs, xs_dc):
        torch.testing.assert_close(x_dc, data_consistency(x, y, A, 0.3, 60))
        rhs = y.reshape(y.shape[0], -1) @ matrix + 0.3 * x.reshape(x.shape[0], -1)
        exact = torch.linalg.solve(normal, rhs.T).T
        # CG stops at relative residual 1e-3 (NETWORK_CG_TOL)
        assert (x_dc.reshape(x.shape[0], -1) - exact).norm() <= 1e-2 * exact.norm()
        assert (A(x_dc) - y).norm() < (A(x) - y).norm()
    (dc(y, A) - problem.x.double()).square().sum().backward()
    assert dc.cell.out.weight.grad is not None and dc.cell.out.weight.grad.abs().sum() > 0
    for kwargs, name in [({"dc_lambda": 0.0}, "dc_lambda"), ({"dc_lambda": 1.0, "dc_iterations": 0}, "dc_iterations")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            RIM(**kwargs)
    with pytest.raises(ValueError, match="^lam"):
        data_consistency(xs[-1], y, A, -1.0, 3)


def test_recurrent_data_consistency_feeds_each_step_back():
    """``dc_placement="recurrent"``: every step ends with the proximal step and the next step starts from it: the
    first estimate is the output step's, later ones differ from it; gradients reach the weights through every step."""
    from rim_monai.networks.utils import data_consistency

    problem = make_problem("dense-projection")
    y, A = problem.y.double(), problem.A
    torch.manual_seed(0)
    output = RIM(features=(4, 4), zero_init_update=False, iterations=3, dc_lambda=0.3, dc_iterations=20).double()
    recurrent = RIM(features=(4, 4), zero_init_update=False, iterations=3, dc_lambda=0.3, dc_iterations=20,
                    dc_placement="recurrent").double()
    recurrent.load_state_dict(output.state_dict())  # no new weights: checkpoints load across placements
    plain = RIM(features=(4, 4), zero_init_update=False, iterations=3).double()
    plain.load_state_dict(output.state_dict())
    with torch.no_grad():
        xs_out, xs_rec, xs_plain = (net(y, A, return_all=True) for net in (output, recurrent, plain))
    torch.testing.assert_close(xs_rec[0], xs_out[0])
    torch.testing.assert_close(xs_rec[0], data_consistency(xs_plain[0], y, A, 0.3, 20))
    assert (xs_rec[1] - xs_out[1]).abs().max() > 1e-6
    for x_rec, x_plain in zip(xs_rec, xs_plain):
        assert (A(x_rec) - y).norm() < (A(x_plain) - y).norm()
    (recurrent(y, A) - problem.x.double()).square().sum().backward()
    assert recurrent.cell.out.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="^dc_placement"):
        RIM(dc_lambda=0.3, dc_placement="inside")
    with pytest.raises(ValueError, match="^dc_lambda.*recurrent"):
        RIM(dc_placement="recurrent")


def test_zero_initialised_update_returns_the_start_until_trained():
    from rim_monai.operators import Identity

    A = Identity((12, 12))
    y = torch.rand(2, 1, 12, 12)
    net = RIM(features=(4, 4), iterations=3, link="identity")
    with torch.no_grad():
        estimates = net(y, A, return_all=True)
    for x in estimates:  # the start A^H y / ||A||^2 = y, unchanged by the zero update
        torch.testing.assert_close(x, y)
    random_net = RIM(features=(4, 4), iterations=3, link="identity", zero_init_update=False)
    with torch.no_grad():
        assert not torch.allclose(random_net(y, A), y)


@pytest.mark.parametrize("architecture", ["compact", "atrous"])
def test_circular_padding_makes_the_rim_commute_with_circular_shifts(architecture):
    """With ``padding_mode="circular"`` and a shift-invariant operator (denoising, or Cartesian MRI, whose image is
    periodic), shifting the measurement circularly shifts the reconstruction; zero padding breaks this at the edges."""
    from rim_monai.operators import Identity

    A = Identity((12, 10))
    y = torch.rand(2, 1, 12, 10, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    circular = RIM(architecture=architecture, features=(4, 4), iterations=3, zero_init_update=False,
                   padding_mode="circular", channels_last=False)
    zeros = RIM(architecture=architecture, features=(4, 4), iterations=3, zero_init_update=False, channels_last=False)
    zeros.load_state_dict(circular.state_dict())  # weights load across padding modes
    shift = (5, -3)
    with torch.no_grad():
        rolled = circular(y.roll(shift, dims=(-2, -1)), A)
        torch.testing.assert_close(rolled, circular(y, A).roll(shift, dims=(-2, -1)), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(zeros(y.roll(shift, dims=(-2, -1)), A), zeros(y, A).roll(shift, dims=(-2, -1)),
                                  atol=1e-4)
        assert circular.cell.convs[0].padding_mode == "circular" and zeros.cell.convs[0].padding_mode == "zeros"


@pytest.mark.parametrize("padding_mode", ["zeros", "circular", "reflect", "replicate"])
def test_boundary_conv_is_torch_conv_and_keeps_channels_last(padding_mode):
    torch.manual_seed(0)
    reference = torch.nn.Conv2d(3, 4, 3, padding=2, dilation=2, padding_mode=padding_mode).double()
    conv = BoundaryConv2d(3, 4, 3, padding=2, dilation=2, padding_mode=padding_mode).double()
    conv.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 9, 7, dtype=torch.float64).to(memory_format=torch.channels_last).requires_grad_(True)
    out, expected = conv(x), reference(x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert out.is_contiguous(memory_format=torch.channels_last)
    weights = torch.randn(out.shape, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), x)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)  # the folded halo gradient


# ---------------------------------------------------------------- training speed (issue 13): same function, faster


def test_gru_zero_state_shortcut_equals_an_explicit_zero_state():
    """``s=None`` skips ``U * 0`` (no bias): the same new state and the same gradients as a zero state."""
    torch.manual_seed(0)
    cell = ConvGRUCell(3, 5).double()
    u = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    fast = cell(u, None)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), u)
    slow = cell(u, torch.zeros(2, 5, 7, 6, dtype=torch.float64))
    (g_slow,) = torch.autograd.grad(slow.square().sum(), u)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-14)
    torch.testing.assert_close(g_fast, g_slow, rtol=0, atol=1e-14)


def test_channels_last_is_the_same_function():
    problem = make_problem("dense-projection")
    torch.manual_seed(0)
    plain = RIM(features=(4, 4), zero_init_update=False, channels_last=False)
    fast = RIM(features=(4, 4), zero_init_update=False, channels_last=True)
    fast.load_state_dict(plain.state_dict())
    torch.testing.assert_close(fast(problem.y, problem.A), plain(problem.y, problem.A), rtol=1e-5, atol=1e-6)


def test_bfloat16_autocast_keeps_float32_estimates_and_state_dict():
    """Mixed precision runs the update network in bfloat16; estimates stay float32, the weights load both ways and
    the result is close to the float32 network's."""
    problem = make_problem("dense-projection")
    torch.manual_seed(0)
    plain = RIM(features=(4, 4), zero_init_update=False)
    mixed = RIM(features=(4, 4), zero_init_update=False, autocast_dtype="bfloat16")
    mixed.load_state_dict(plain.state_dict())
    estimates = mixed(problem.y, problem.A, return_all=True)
    assert all(x.dtype == torch.float32 for x in estimates)
    reference = plain(problem.y, problem.A)
    assert float((estimates[-1].detach() - reference.detach()).norm() / reference.detach().norm()) < 0.05
    estimates[-1].square().sum().backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in mixed.parameters())


def test_autocast_dtype_is_checked():
    with pytest.raises(ValueError, match="autocast_dtype"):
        RIM(features=(4, 4), autocast_dtype="int8")
    with pytest.raises(ValueError, match="autocast_dtype.*write None"):  # `--mixed_precision null` on the command line
        RIM(features=(4, 4), autocast_dtype="null")


def _noisy_kspace(sigma: float):
    """4-coil k-space (128², 1D random mask, 4x) of a phantom with background, complex noise of level ``sigma``."""
    from rim_monai.operators import random_mask
    from tests.classical.helpers import noisy_kspace

    return noisy_kspace(random_mask((128, 128), 4, seed=0), sigma)


def test_noise_input_channel_is_the_log_level_given_or_estimated():
    from rim_monai.networks.utils import NOISE_FLOOR, NOISE_LOG_CENTER, noise_input_channel

    y, A = _noisy_kspace(0.05)
    x = A.adjoint(y)
    given = noise_input_channel(y, A, 0.05, x)
    assert given.shape == (1, 1, 1, 1) and given.dtype == torch.float32
    torch.testing.assert_close(given, torch.full((1, 1, 1, 1), torch.log10(torch.tensor(0.05)).item() - NOISE_LOG_CENTER))
    estimated = noise_input_channel(y, A, None, x)
    assert abs(float(estimated - given)) < 0.05  # within 12 % of the true level
    noise_free = noise_input_channel(y, A, 0.0, x)
    assert float(noise_free) == pytest.approx(torch.log10(torch.tensor(NOISE_FLOOR)).item() - NOISE_LOG_CENTER)


def test_noise_input_loads_weights_without_it_as_the_same_function():
    """A ``noise_input`` RIM loads a plain RIM's state dict (zero weight for the noise channel) and computes the
    same estimates; once that weight is non-zero the output depends on the noise level."""
    y, A = _noisy_kspace(0.05)
    for architecture, features in (("compact", (8, 8)), ("paper", (8, 16))):
        torch.manual_seed(0)
        plain = RIM(complex_=True, architecture=architecture, features=features, iterations=3,
                    zero_init_update=False).eval()
        noisy = RIM(complex_=True, architecture=architecture, features=features, iterations=3,
                    zero_init_update=False, noise_input=True).eval()
        noisy.load_state_dict(plain.state_dict())
        first = noisy.get_submodule(noisy._first_conv_name()).weight
        assert first.shape[1] == plain.get_submodule(plain._first_conv_name()).weight.shape[1] + 1
        assert float(first[:, -1].detach().abs().sum()) == 0.0
        with torch.no_grad():
            torch.testing.assert_close(noisy(y, A), plain(y, A))
            first[:, -1].fill_(0.1)
            assert not torch.allclose(noisy(y, A, sigma=0.01), noisy(y, A, sigma=0.1))
    with pytest.raises(RuntimeError, match="size mismatch"):  # the other way round is a plain shape error
        plain.load_state_dict(noisy.state_dict())


def test_noise_input_keeps_scale_equivariance_with_the_estimated_level():
    from rim_monai.networks import ScaleEquivariant

    y, A = _noisy_kspace(0.05)
    torch.manual_seed(0)
    net = ScaleEquivariant(RIM(complex_=True, features=(8, 8), iterations=2, zero_init_update=False,
                               noise_input=True)).eval()
    with torch.no_grad():
        net.net.cell.convs[0].weight[:, -1].normal_()
        torch.testing.assert_close(net(1e3 * y, A), 1e3 * net(y, A), rtol=1e-4, atol=1e-4)


def test_noise_input_iterate_needs_the_channel():
    y, A = _noisy_kspace(0.05)
    net = RIM(complex_=True, features=(4, 4), iterations=1, noise_input=True)
    with pytest.raises(ValueError, match="^noise"):
        net.iterate(y, A, A.adjoint(y), 1)


def _wrong_maps_kspace(n: int = 48, coils: int = 4):
    """``(truth, y, A_right, A_wrong)``: noise-free 4x k-space of a phantom filling the field of view, the operator
    with the maps that made it and one whose maps are shifted by a quarter of the field of view."""
    from rim_monai.operators import MaskedFourier, birdcage_maps
    from tests.classical.helpers import squares_phantom

    mask = torch.zeros(n, n)
    mask[:, ::4] = 1
    mask[:, n // 2 - 3 : n // 2 + 3] = 1
    maps = birdcage_maps(coils, (n, n))
    truth = squares_phantom(n).to(torch.complex64)[None, None]
    right = MaskedFourier(mask, maps)
    wrong = MaskedFourier(mask, torch.roll(maps, n // 4, dims=-1))
    return truth, right(truth), right, wrong


def test_holdout_data_consistency_trusts_right_maps_and_declines_wrong_ones():
    """holdout_data_consistency: with the maps that made the data it takes a step (a finite weight) that brings an
    estimate closer to the truth; with wrong maps the held-out k-space says no step, and the estimate is returned
    unchanged; one batch holds both cases, chosen per sample."""
    from rim_monai.classical.holdout import split_measurements
    from rim_monai.operators import MaskedFourier
    from rim_monai.networks.utils import DC_HOLDOUT_LAMBDAS, holdout_data_consistency

    truth, y, right, wrong = _wrong_maps_kspace()
    blurred = torch.nn.functional.avg_pool2d(truth.real, 3, 1, 1).to(truth.dtype)  # an estimate missing detail
    train_mask, held_mask = split_measurements(right)
    estimate, lam = holdout_data_consistency(blurred, blurred, y, right, train_mask, held_mask)
    assert lam.shape == (1,) and float(lam) in DC_HOLDOUT_LAMBDAS  # one per sample (domain (1, H, W))
    assert (estimate - truth).norm() < 0.5 * (blurred - truth).norm()
    estimate, lam = holdout_data_consistency(truth, truth, y, wrong, train_mask, held_mask)
    assert float(lam) == float("inf")
    torch.testing.assert_close(estimate, truth)
    both = MaskedFourier(right.mask, torch.stack([right.sens, wrong.sens]))
    estimate, lam = holdout_data_consistency(torch.cat([blurred, truth]), torch.cat([blurred, truth]),
                                             torch.cat([y, y]), both, train_mask, held_mask)
    assert float(lam[0]) in DC_HOLDOUT_LAMBDAS and float(lam[1]) == float("inf")
    with pytest.raises(ValueError, match="^lams"):
        holdout_data_consistency(truth, truth, y, right, train_mask, held_mask, lams=[0.0])


def test_rim_holdout_step_runs_the_network_on_the_training_lines():
    """``dc_lambda="holdout"``: the output is holdout_data_consistency of the plain RIM's estimate from all the data
    and its estimate from the training part of the mask; ``return_all`` and masks too sparse to split give the plain
    estimates; other operators and placements are refused, naming ``dc_lambda``."""
    from rim_monai.classical.holdout import split_measurements
    from rim_monai.networks.utils import (DC_HOLDOUT_ITERATIONS, DC_ITERATIONS, holdout_data_consistency,
                                          step_scale)
    from rim_monai.operators import MaskedFourier

    problem = make_problem("mri-8coil")
    y, A = problem.y, problem.A
    torch.manual_seed(0)
    plain = RIM(complex_=True, features=(4, 4), zero_init_update=False, iterations=2).eval()
    holdout = RIM(complex_=True, features=(4, 4), zero_init_update=False, iterations=2, dc_lambda="holdout").eval()
    holdout.load_state_dict(plain.state_dict())
    assert holdout.dc_iterations == DC_HOLDOUT_ITERATIONS and RIM(dc_lambda=0.1).dc_iterations == DC_ITERATIONS
    train_mask, held_mask = split_measurements(A)
    train = A.replace(mask=train_mask)
    with torch.no_grad():
        x = plain(y, A)
        adjoint = train.adjoint(y * train_mask)
        x_train = plain.iterate(y * train_mask, train, adjoint, 2, step=step_scale(A))[-1]
        expected, _ = holdout_data_consistency(x, x_train, y, A, train_mask, held_mask)
        torch.testing.assert_close(holdout(y, A), expected)
        for a, b in zip(holdout(y, A, return_all=True), plain(y, A, return_all=True)):
            torch.testing.assert_close(a, b)
        sparse = MaskedFourier(torch.ones(16, 16), A.sens)  # fully sampled: nothing outside the centre to hold out
        torch.testing.assert_close(holdout(sparse(problem.x), sparse), plain(sparse(problem.x), sparse))
    dense = make_problem("dense-projection")
    with pytest.raises(ValueError, match="^dc_lambda.*MaskedFourier"):
        RIM(features=(4, 4), dc_lambda="holdout")(dense.y, dense.A)
    with pytest.raises(ValueError, match="^dc_lambda.*recurrent"):
        RIM(dc_lambda="holdout", dc_placement="recurrent")
    for bad in ("often", True, -0.1):
        with pytest.raises(ValueError, match="^dc_lambda"):
            RIM(dc_lambda=bad)
    with pytest.raises(ValueError, match="^dc_lambda.*write None"):  # JSON's spelling typed on the command line
        RIM(dc_lambda="null")


def test_learned_data_consistency_weight_starts_at_its_init_and_reads_the_state():
    """DataConsistencyWeight: lambda = init for any state while untrained, one positive value per sample within its
    bounds once the weights are set, and a gradient for every weight; bad init / rate name the argument."""
    from rim_monai.networks.rim import DataConsistencyWeight

    head = DataConsistencyWeight(4, init=0.5)
    state = torch.randn(3, 4, 8, 8)
    torch.testing.assert_close(head(state), torch.full((3,), 0.5))
    with torch.no_grad():
        head.linear.weight.normal_(std=0.005)  # log lambda = 50 w.[mean; rms]: within the bounds
    lam = head(state.to(torch.bfloat16))
    assert lam.shape == (3,) and lam.dtype == torch.float32 and len(set(lam.tolist())) == 3
    assert bool(((lam >= 1e-4 * (1 - 1e-6)) & (lam <= 1e2 * (1 + 1e-6))).all())
    head(state).sum().backward()
    assert head.linear.weight.grad.abs().sum() > 0 and head.linear.bias.grad is not None
    with pytest.raises(ValueError, match="^init"):
        DataConsistencyWeight(4, init=1e3)
    with pytest.raises(ValueError, match="^rate"):
        DataConsistencyWeight(4, rate=0.0)


def test_rim_learned_data_consistency_step():
    """``dc_lambda="learned"``: the last estimate (also with ``return_all``) is the proximal step with the weight the
    head reads from the last recurrent state, 8 CG iterations; the earlier estimates are the plain RIM's; the weight
    trains through the CG iterations; weights load both ways (the head starts at 1, or is left out); an FFN or a
    recurrent placement is refused, naming ``dc_lambda``."""
    from rim_monai.networks.utils import DC_LEARNED_ITERATIONS, data_consistency

    problem = make_problem("mri-8coil")
    y, A = problem.y, problem.A
    torch.manual_seed(0)
    plain = RIM(complex_=True, features=(4, 4), zero_init_update=False, iterations=2).eval()
    learned = RIM(complex_=True, features=(4, 4), zero_init_update=False, iterations=2, dc_lambda="learned").eval()
    assert learned.dc_iterations == DC_LEARNED_ITERATIONS == 8
    learned.load_state_dict(plain.state_dict())  # no head in the weights: it starts at lambda = 1
    with torch.no_grad():
        x = plain(y, A, return_all=True)
        torch.testing.assert_close(learned(y, A), data_consistency(x[-1], y, A, 1.0, DC_LEARNED_ITERATIONS))
        steps = learned(y, A, return_all=True)
        torch.testing.assert_close(steps[0], x[0])
        torch.testing.assert_close(steps[-1], data_consistency(x[-1], y, A, 1.0, DC_LEARNED_ITERATIONS))
    loss = (learned(y, A) - problem.x).abs().square().mean()
    loss.backward()
    assert learned.dc_weight.linear.bias.grad.abs() > 0 and learned.dc_weight.linear.weight.grad.abs().sum() > 0
    with torch.no_grad():
        learned.dc_weight.linear.bias.fill_(-0.05)  # lambda = exp(-2.5)
        torch.testing.assert_close(learned(y, A), data_consistency(x[-1], y, A, float(torch.tensor(-2.5).exp()), 8))
    plain.load_state_dict(learned.state_dict())  # the head is left out
    with pytest.raises(ValueError, match="^dc_lambda.*state"):
        RIM(variant="ffn", dc_lambda="learned")
    with pytest.raises(ValueError, match="^dc_lambda.*recurrent"):
        RIM(dc_lambda="learned", dc_placement="recurrent")


def test_data_consistency_per_sample_weights():
    """data_consistency with one weight per sample equals the per-sample calls; bad shapes or values name ``lam``."""
    from rim_monai.networks.utils import data_consistency

    problem = make_problem("mri-8coil")
    y, A = problem.y, problem.A
    x = A.adjoint(y)
    assert x.shape[0] == 2
    both = data_consistency(x, y, A, torch.tensor([0.01, 1.0]), 4)
    torch.testing.assert_close(both[:1], data_consistency(x, y, A, 0.01, 4)[:1])
    torch.testing.assert_close(both[1:], data_consistency(x, y, A, 1.0, 4)[1:])
    for bad in (torch.tensor([0.1]), torch.tensor([0.1, -1.0]), torch.ones(2, 1)):
        with pytest.raises(ValueError, match="^lam"):
            data_consistency(x, y, A, bad, 4)

"""adapt(): R&R and R&R+ on small synthetic drifted operators, with networks trained in the test."""

import copy
import math
import warnings

import pytest
import torch

from rim_monai.adaptation import (
    NOISE_WARNING_FACTOR,
    AdaptationReport,
    GeometryParameter,
    OperatorParameter,
    ParameterEstimator,
    adapt,
    data_consistency,
)
from rim_monai.operators import Identity
from tests.adaptation.toys import GaussBlur, ShiftPair, TinyNet, phantoms, smooth_images, train


def _distance(net_a: torch.nn.Module, net_b: torch.nn.Module) -> float:
    return math.sqrt(sum(float(((a.detach() - b.detach()) ** 2).sum()) for a, b in zip(net_a.parameters(), net_b.parameters())))


@pytest.fixture(scope="module")
def blur_case():
    """A post-processing net trained for a Gaussian blur of width 1 and new data blurred with width 1.8."""
    a0, a1 = GaussBlur(sigma=1.0), GaussBlur(sigma=1.8)
    net = train(TinyNet(), a0, phantoms(64, seed=1), steps=120, noise=0.01)
    x = phantoms(8, seed=2)
    y = a1(x) + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    return net, a1, y, x


@pytest.fixture(scope="module")
def shift_case():
    """A net trained for ShiftPair(0) and data from ShiftPair(1.3) (an unknown shift)."""
    net = train(TinyNet(), ShiftPair(shift=0.0), smooth_images(64, seed=1), steps=100)
    x = smooth_images(6, seed=2)
    return net, ShiftPair(shift=1.3)(x), x


def test_rr_reduces_the_data_term_and_improves_psnr(blur_case, tmp_path):
    net, a1, y, x = blur_case
    adapted, report = adapt(net, a1, y, mu=1e-3, steps=80, lr=1e-3, batch_size=4, references=x, progress=True)
    assert report.method == "R&R" and report.num_samples == 8
    assert report.data_term_after < 0.3 * report.data_term_before
    assert report.psnr_after > report.psnr_before + 1.0
    assert report.ssim_after > report.ssim_before
    # the report's numbers are the data term of the returned network
    with torch.no_grad():
        assert data_consistency(adapted(y, a1), a1, y).mean().item() == pytest.approx(report.data_term_after, rel=1e-4)
    assert report.data_term[0] == report.data_term_before and min(report.data_term) == report.data_term_after
    assert len(report.batch_loss) == report.steps_run == 80 and report.eval_steps[-1] == 80
    # the PSNR/SSIM curve is scored at every evaluation; the returned state is the one at best_step
    assert len(report.psnr) == len(report.ssim) == len(report.eval_steps)
    assert report.psnr[0] == report.psnr_before
    best = report.eval_steps.index(report.best_step)
    assert report.psnr[best] == pytest.approx(report.psnr_after, abs=1e-6)
    assert report.wall_time_s > 0 and report.operator is a1
    back = AdaptationReport.from_json(report.to_json(tmp_path / "report.json"))
    assert back.to_dict() == report.to_dict()


def test_input_network_is_untouched(blur_case):
    net, a1, y, _ = blur_case
    before = copy.deepcopy(net.state_dict())
    flags = [p.requires_grad for p in net.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    adapted, _ = adapt(net, a1, y, mu=0.0, steps=10, lr=1e-2, batch_size=4, progress=False, patience=None)
    assert adapted is not net
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    assert [p.requires_grad for p in net.parameters()] == flags
    for p, g in zip(net.parameters(), grads):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    assert all(p.grad is None for p in adapted.parameters())
    assert _distance(adapted, net) > 0


def test_mu_keeps_the_weights_near_the_trained_ones(blur_case):
    net, a1, y, _ = blur_case
    kwargs = dict(steps=40, lr=2e-3, batch_size=8, progress=False, patience=None)
    distances = [_distance(adapt(net, a1, y, mu=mu, **kwargs)[0], net) for mu in (0.0, 10.0, 1e4)]
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.2 * distances[0]
    frozen, report = adapt(net, a1, y, mu=math.inf, **kwargs)  # mu = inf: exactly theta_0
    assert _distance(frozen, net) == 0.0
    assert report.data_term_after == report.data_term_before and report.steps_run == 0
    assert all(p.requires_grad for p in frozen.parameters())
    assert report.psnr == [] and report.ssim == [] and report.psnr_before is None  # no references, no scores


def test_penalty_is_reported(blur_case):
    net, a1, y, _ = blur_case
    adapted, report = adapt(net, a1, y, mu=0.5, steps=8, lr=1e-2, batch_size=8, progress=False, patience=None)
    assert report.penalty[0] == 0.0
    assert report.penalty[-1] == pytest.approx(0.5 * _distance(adapted, net) ** 2, rel=1e-4)


def test_rr_plus_recovers_a_differentiable_shift(shift_case):
    net, y, x = shift_case
    op = ShiftPair(shift=0.0, learnable=True)
    adapted, report = adapt(
        net, op, y, mu=1e-2, steps=120, lr=1e-3, batch_size=6, references=x, progress=False,
        estimate=[OperatorParameter("shift", lr=0.05)],
    )
    assert report.method == "R&R+"
    assert abs(report.parameters_final["shift"] - 1.3) < 0.05
    assert report.parameters_before == {"shift": 0.0} and report.parameters["shift"][0] == 0.0
    assert float(op.shift.detach()) == 0.0 and report.operator is not op  # the caller's operator is not changed
    assert float(report.operator.shift.detach()) == pytest.approx(report.parameters_final["shift"])
    assert report.psnr_after > report.psnr_before + 5.0


@pytest.mark.parametrize("mu,ratio", [(1e-2, 0.2), (math.inf, 0.5)])  # mu = inf: the network is not fine-tuned
def test_rr_plus_recovers_a_shift_by_outer_search(shift_case, mu, ratio):
    net, y, x = shift_case
    op = ShiftPair(shift=0.0)  # the shift is a float: only replace() changes it
    estimator = ParameterEstimator([GeometryParameter("shift", bounds=(-3, 3), tol=1e-3)], search_rounds=2)
    adapted, report = adapt(net, op, y, mu=mu, steps=20, lr=1e-3, batch_size=6, estimate=estimator,
                            references=x, progress=False)
    assert abs(report.parameters_final["shift"] - 1.3) < 0.1
    assert report.operator.shift == report.parameters_final["shift"] and op.shift == 0.0
    assert report.search_evaluations > 10
    assert report.data_term_after < ratio * report.data_term_before
    assert report.psnr_after > report.psnr_before + 5.0


def test_early_stopping_returns_the_best_state(blur_case):
    net, a1, y, _ = blur_case
    # a learning rate too small to change the data term: no improvement, stop after `patience` evaluations
    adapted, report = adapt(net, a1, y, mu=0.0, steps=100, lr=1e-9, batch_size=4, patience=2, min_delta=1e-3,
                            progress=False)
    assert report.stopped_early and report.steps_run == 2 * 2  # eval_every = ceil(8 / 4) = 2 steps
    assert report.eval_steps == [0, 2, 4]
    # a real run with patience stops before the step budget once the data term levels off
    _, long = adapt(net, a1, y, mu=0.0, steps=2000, lr=3e-3, batch_size=8, patience=3, min_delta=0.05,
                    progress=False)
    assert long.stopped_early and long.steps_run < 2000
    assert long.data_term_after == min(long.data_term)
    assert long.best_step <= long.steps_run


def test_noise_energy_stops_at_the_discrepancy_level(blur_case, tmp_path):
    """With noise_energy, the run stops at the first evaluation whose data term reaches it (Morozov)."""
    net, a1, y, _ = blur_case
    kwargs = dict(mu=0.0, steps=60, lr=1e-3, batch_size=4, patience=None, progress=False)
    _, free = adapt(net, a1, y, **kwargs)
    level = 0.5 * (free.data_term_before + free.data_term_after)
    reached = next(step for step, d in zip(free.eval_steps, free.data_term) if d <= level)
    # the same level given as a number and as a per-sample callable (the mean is used)
    for energy in (level, lambda y_all: torch.full((y_all.shape[0],), level)):
        with pytest.warns(UserWarning, match="noise energy"):  # level > data_term_before / NOISE_WARNING_FACTOR
            _, report = adapt(net, a1, y, noise_energy=energy, **kwargs)
        assert report.stopped_early and report.stop_reason == "noise level"
        assert report.noise_energy == pytest.approx(level)
        assert report.steps_run == reached < 60 and report.data_term_after <= level
        assert all(d > level for d in report.data_term[:-1])
    assert report.plot(tmp_path / "curve.png").is_file()
    # a network that already fits to within twice the noise: a warning, and no step is taken at or below the level
    with pytest.warns(UserWarning, match="noise"):
        adapted, idle = adapt(net, a1, y, noise_energy=free.data_term_before, **kwargs)
    assert idle.steps_run == 0 and _distance(adapted, net) == 0.0
    # a level below data_term_before / NOISE_WARNING_FACTOR: no warning, and never reached here
    low_level = min(0.1 * free.data_term_after, 0.9 * free.data_term_before / NOISE_WARNING_FACTOR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, low = adapt(net, a1, y, noise_energy=low_level, **kwargs)
    assert not low.stopped_early and low.steps_run == 60
    # patience still reports its own reason
    _, patient = adapt(net, a1, y, mu=0.0, steps=100, lr=1e-9, batch_size=4, patience=2, progress=False)
    assert patient.stop_reason == "no improvement" and patient.noise_energy is None


def test_measurement_containers_and_per_sample_operators_agree(blur_case):
    net, a1, y, _ = blur_case
    kwargs = dict(mu=1e-3, steps=6, lr=1e-3, batch_size=3, progress=False, patience=None, seed=4)
    _, ref = adapt(net, a1, y, **kwargs)

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return y.shape[0]

        def __getitem__(self, i):
            return y[i]

    for measurements in (list(y), Samples()):
        _, rep = adapt(net, a1, measurements, **kwargs)
        assert rep.data_term == pytest.approx(ref.data_term, rel=1e-6)
    # one operator per sample (run sample by sample) gives the same objective and the same steps
    _, per_sample = adapt(net, [GaussBlur(sigma=1.8) for _ in range(8)], y, **kwargs)
    assert per_sample.config["per_sample_operators"]
    assert per_sample.batch_loss == pytest.approx(ref.batch_loss, rel=1e-4)
    assert per_sample.data_term == pytest.approx(ref.data_term, rel=1e-4)


def test_noise_weighting(blur_case):
    net, a1, y, _ = blur_case
    kwargs = dict(steps=1, lr=1e-9, batch_size=4, progress=False, patience=None)
    _, plain = adapt(net, a1, y, **kwargs)
    weights = torch.ones(8, 1, 1, 1)
    weights[::2] = 0.0  # ignore every other sample
    _, half = adapt(net, a1, y, noise_weighting=weights, **kwargs)
    with torch.no_grad():
        terms = data_consistency(net(y, a1), a1, y)
    assert plain.data_term_before == pytest.approx(float(terms.mean()), rel=1e-5)
    assert half.data_term_before == pytest.approx(float(terms[1::2].sum() / 8), rel=1e-5)
    _, called = adapt(net, a1, y, noise_weighting=lambda yb: torch.full_like(yb, 2.0), **kwargs)
    assert called.data_term_before == pytest.approx(2 * plain.data_term_before, rel=1e-5)
    # the relative residual is unweighted
    assert called.relative_residual_before == pytest.approx(plain.relative_residual_before, rel=1e-5)


def test_network_returning_all_iterates():
    class AllSteps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(0.5))

        def forward(self, y, A):
            x = A.adjoint(y)
            return [x, self.scale * x]

    op = Identity((4, 4))
    y = torch.ones(3, 1, 4, 4)
    adapted, report = adapt(AllSteps(), op, y, mu=0.0, steps=60, lr=0.05, batch_size=3, progress=False, patience=None)
    assert float(adapted.scale.detach()) == pytest.approx(1.0, abs=0.05)


BAD = [
    ({"mu": -1.0}, "mu"),
    ({"mu": float("nan")}, "mu"),
    ({"steps": -1}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"lr": 0.0}, "lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"patience": 0}, "patience"),
    ({"min_delta": -0.1}, "min_delta"),
    ({"eval_every": 0}, "eval_every"),
    ({"metric_protocol": "psnr"}, "metric_protocol"),
    ({"measurements": torch.zeros(0, 1, 16, 16)}, "measurements"),
    ({"measurements": []}, "measurements"),
    ({"measurements": torch.zeros(2, 1, 15, 16)}, "measurements"),
    ({"measurements": torch.zeros(16, 16)}, "measurements"),
    ({"measurements": [torch.zeros(1, 16, 16), torch.zeros(1, 16, 15)]}, "measurements"),
    ({"measurements": "y"}, "measurements"),
    ({"references": torch.zeros(3, 1, 16, 16)}, "references"),
    ({"references": torch.zeros(2, 1, 8, 8)}, "references"),
    ({"noise_weighting": torch.ones(3, 1, 16, 16)}, "noise_weighting"),
    ({"noise_weighting": -torch.ones(1)}, "noise_weighting"),
    ({"noise_energy": -1.0}, "noise_energy"),
    ({"noise_energy": float("nan")}, "noise_energy"),
    ({"noise_energy": "low"}, "noise_energy"),
    ({"noise_energy": torch.ones(3)}, "noise_energy"),
    ({"noise_energy": lambda y: torch.ones(2, 2)}, "noise_energy"),
    ({"operator": [GaussBlur()]}, "operator"),
    ({"operator": "blur"}, "operator"),
    ({"net": "net"}, "net"),
    ({"estimate": "shift"}, "estimate"),
    ({"estimate": [OperatorParameter("kernel")]}, "name"),
    ({"estimate": [GeometryParameter("sigma", (0, 1))]}, "name"),
]


@pytest.mark.parametrize("changes,name", BAD, ids=[f"{k}-{i}" for i, (c, k) in enumerate(BAD)])
def test_bad_arguments_name_the_argument(changes, name):
    args = dict(net=TinyNet(), operator=GaussBlur(), measurements=torch.zeros(2, 1, 16, 16), steps=1,
                progress=False)
    args.update(changes)
    with pytest.raises(ValueError, match=name):
        adapt(**args)


def test_mixing_gradient_and_search_parameters_is_refused():
    with pytest.raises(ValueError, match="estimate"):
        adapt(TinyNet(), ShiftPair(learnable=True), torch.zeros(1, 1, 2, 12, 12), progress=False,
              estimate=[OperatorParameter("shift"), GeometryParameter("other", (0, 1))])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_adapt_on_cuda_moves_the_copy_and_the_data():
    op = GaussBlur(sigma=1.5).to("cuda")
    x = phantoms(4, seed=3)
    y = GaussBlur(sigma=1.5)(x)  # on the CPU: moved to the operator's device
    net = TinyNet()
    adapted, report = adapt(net, op, y, mu=1e-3, steps=5, lr=1e-3, batch_size=2, references=x, progress=False)
    assert next(adapted.parameters()).device.type == "cuda" and next(net.parameters()).device.type == "cpu"
    assert report.data_term_after < report.data_term_before and report.psnr_after is not None


def test_a_learned_data_consistency_weight_is_kept_as_trained():
    """A RIM with dc_lambda="learned": R&R changes its update network and leaves the weight head as it was (the
    measurement-only loss would drive lambda to its lower bound); the caller's network keeps its gradients."""
    from rim_monai.adaptation import freeze_data_consistency_weights
    from rim_monai.networks import RIM
    from rim_monai.operators import MaskedFourier

    torch.manual_seed(0)
    mask = torch.zeros(16, 16)
    mask[:, ::2] = 1
    A = MaskedFourier(mask, torch.ones(2, 16, 16, dtype=torch.complex64) / math.sqrt(2))
    x = torch.nn.functional.avg_pool2d(torch.rand(4, 1, 16, 16), 3, 1, 1).to(torch.complex64)
    y = A(x)
    net = RIM(complex_=True, features=(4, 4), iterations=2, zero_init_update=False, dc_lambda="learned")
    adapted, _ = adapt(net, A, y, mu=0.0, steps=3, lr=1e-2, batch_size=4, progress=False, patience=None)
    for (name, before), after in zip(net.named_parameters(), adapted.parameters()):
        if name.startswith("dc_weight."):
            torch.testing.assert_close(after, before)
    assert _distance(net.cell, adapted.cell) > 0
    assert all(p.requires_grad for p in net.parameters())
    assert freeze_data_consistency_weights(RIM(features=(4, 4))) == []

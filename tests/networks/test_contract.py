"""The contract every reconstruction network satisfies: shapes and gradients on CT, MRI and denoising operators,
iteration counts and their deprecated names, a new operator at call time, bad input, scale equivariance of the
wrapper, and fitting one batch."""

from __future__ import annotations

import time

import pytest
import torch

from rim_monai.networks import IterativeNetwork, ScaleEquivariant
from rim_monai.networks.utils import initial_estimate
from tests.networks.cases import NetworkCase, all_cases
from tests.networks.problems import PROBLEMS, Problem, make_problem

CASES = all_cases()
ids = [c.name for c in CASES]

#: the overfitting test stops at this budget (the contract asks for a 10x fall within 30 s on a CPU)
OVERFIT_SECONDS = 30.0
OVERFIT_PROBLEM = "dense-projection"


def _build(case: NetworkCase, problem: Problem, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return case.build(problem.channels, problem.complex_)


def _mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (estimate - target).abs().square().mean()


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_forward_backward(case, problem_name):
    problem = make_problem(problem_name)
    net = _build(case, problem).train()
    out = net(problem.y, problem.A)
    reference = problem.A.adjoint(problem.y)
    assert out.shape == reference.shape
    assert out.dtype == reference.dtype
    assert torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all()
    _mse(out, problem.x).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is None or torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_iteration_counts(case):
    problem = make_problem("denoise")
    net = _build(case, problem).eval()
    estimates = net(problem.y, problem.A, return_all=True)
    assert isinstance(estimates, list) and len(estimates) == case.iterations
    assert all(e.shape == problem.x.shape for e in estimates)
    torch.testing.assert_close(estimates[-1], net(problem.y, problem.A))
    if case.any_iterations:
        longer = net(problem.y, problem.A, iterations=2 * case.iterations, return_all=True)
        assert len(longer) == 2 * case.iterations
        # the first T iterations of a longer run are the T-iteration run
        torch.testing.assert_close(longer[case.iterations - 1], estimates[-1])
    elif isinstance(net, IterativeNetwork) and not net.share_weights:
        with pytest.raises(ValueError, match=r"^iterations: this network has 3 iterations with their own weights"):
            net(problem.y, problem.A, iterations=2 * case.iterations)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_deprecated_iteration_names_warn_and_agree(case):
    """The names used before ``iterations`` (RIM ``steps``, DEQ ``max_iter``; ``steps`` at call time) still work."""
    problem = make_problem("denoise")
    net = _build(case, problem).eval()
    if not isinstance(net, IterativeNetwork):
        pytest.skip("not an iterative network")
    with torch.no_grad():
        expected = net(problem.y, problem.A, iterations=net.iterations, return_all=True)
        with pytest.warns(DeprecationWarning, match=r"'steps' is deprecated, use 'iterations'"):
            old = net(problem.y, problem.A, steps=net.iterations, return_all=True)
    assert len(old) == len(expected) and all(torch.equal(a, b) for a, b in zip(old, expected))
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=r"^steps: the deprecated name of 'iterations'"):
        net(problem.y, problem.A, iterations=net.iterations, steps=net.iterations + 1)
    if case.build_deprecated is None:
        return
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=r"is deprecated, use 'iterations'"):
        built_old = case.build_deprecated(problem.channels, problem.complex_).eval()
    assert built_old.iterations == net.iterations
    with torch.no_grad():
        assert torch.equal(built_old(problem.y, problem.A), expected[-1])


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_new_operator_at_call_time(case):
    first, second = make_problem("denoise"), make_problem("dense-projection")
    net = _build(case, first).eval()
    assert net(first.y, first.A).shape == first.x.shape
    assert net(second.y, second.A).shape == second.x.shape


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_bad_input_names_the_argument(case):
    problem = make_problem("denoise")
    net = _build(case, problem)
    with pytest.raises(ValueError, match=r"^y: expected shape"):
        net(problem.y[..., :-1], problem.A)
    with pytest.raises(ValueError, match=r"^y: expected a real tensor"):
        net(problem.y.to(torch.complex64), problem.A)
    with pytest.raises(ValueError, match=r"^y: expected a batch"):
        net(problem.y[0, 0], problem.A)
    with pytest.raises(ValueError, match=r"^y: .*expects \(B, 1, H, W\)"):
        net(problem.y.repeat(1, 3, 1, 1), problem.A)
    nan = problem.y.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^y: contains NaN"):
        net(nan, problem.A)
    with pytest.raises(ValueError, match=r"^A: "):
        net(problem.y, torch.nn.Identity())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("problem_name", ["denoise", "mri-8coil"])
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_runs_on_cuda(case, problem_name):
    problem = make_problem(problem_name)
    net = _build(case, problem).cuda()
    A, y, x = problem.A.cuda(), problem.y.cuda(), problem.x.cuda()
    out = net(y, A)
    assert out.device.type == "cuda" and out.shape == x.shape
    _mse(out, x).backward()
    assert all(p.grad is None or p.grad.device.type == "cuda" for p in net.parameters())


@pytest.mark.parametrize("c", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("case", CASES, ids=ids)
def test_scale_equivariance_of_the_wrapper(case, c):
    problem = make_problem("dense-projection")
    wrapped = ScaleEquivariant(_build(case, problem)).eval()
    with torch.no_grad():
        base = wrapped(problem.y, problem.A)
        scaled = wrapped(c * problem.y, problem.A)
    torch.testing.assert_close(scaled, c * base, rtol=1e-4, atol=1e-5 * c * float(base.abs().max()))


def overfit(case: NetworkCase, problem: Problem, seconds: float = OVERFIT_SECONDS) -> dict[str, float]:
    """Fit one fixed batch with Adam until the loss is 20x below the reference, or the iteration/time budget ends.

    The reference is the smaller of the untrained network's loss and the loss of the classical start
    ``A^H y / ||A||^2``, so a network cannot pass by merely unlearning a bad initialisation.
    """
    net = _build(case, problem).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=case.lr)
    classical = float(_mse(initial_estimate(problem.y, problem.A, "adjoint"), problem.x))
    start, first, loss_value, iterations = time.perf_counter(), None, float("nan"), 0
    while iterations < case.overfit_iterations and time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        loss = _mse(net(problem.y, problem.A), problem.x)
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())
        first = loss_value if first is None else first
        iterations += 1
        if loss_value <= min(first, classical) / 20:
            break
    return {
        "initial": first,
        "classical": classical,
        "final": loss_value,
        "iterations": iterations,
        "seconds": time.perf_counter() - start,
    }


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_overfits_one_batch(case):
    stats = overfit(case, make_problem(OVERFIT_PROBLEM))
    print(
        f"\noverfit {case.name} on {OVERFIT_PROBLEM}: loss {stats['initial']:.3e} -> {stats['final']:.3e} "
        f"({stats['initial'] / stats['final']:.1f}x; classical start {stats['classical']:.3e}) "
        f"in {stats['iterations']} steps, {stats['seconds']:.2f} s"
    )
    assert stats["seconds"] <= OVERFIT_SECONDS + 5
    assert stats["final"] <= min(stats["initial"], stats["classical"]) / 10

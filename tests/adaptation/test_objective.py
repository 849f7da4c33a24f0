"""AdaptationObjective: the variables of R&R, its Adam step, snapshot and restore."""

import copy
import math

import pytest
import torch

from rim_monai.adaptation import AdaptationObjective, OperatorParameter, ParameterEstimator
from tests.adaptation.toys import GaussBlur, ShiftPair, TinyNet


def _objective(mu=1e-2, estimator=None, op=None):
    net = TinyNet(seed=2).eval()
    op = op or GaussBlur(sigma=1.5)
    y = torch.randn(4, 1, *op.range_shape, generator=torch.Generator().manual_seed(0))
    return AdaptationObjective(copy.deepcopy(net), [op], y, mu, estimator=estimator), net


def test_a_step_moves_the_weights_and_restore_brings_them_back():
    objective, net = _objective()
    assert objective.penalty() == 0.0 and objective.penalized
    snapshot = objective.snapshot()
    objective.build_optimizer(lr=1e-2)
    loss = objective.step(torch.tensor([0, 1]))
    assert math.isfinite(loss) and objective.penalty() > 0
    objective.restore(snapshot)
    for a, b in zip(objective.net.parameters(), net.parameters()):
        assert torch.equal(a, b) and a.grad is None


def test_frozen_weights_until_restore():
    objective, _ = _objective(mu=math.inf)
    assert not objective.penalized and all(not p.requires_grad for p in objective.theta)
    assert objective.build_optimizer(lr=1e-2) is None
    objective.restore(objective.snapshot())
    assert all(p.requires_grad for p in objective.theta)


def test_gradient_parameters_are_optimised_and_snapshotted_by_copy():
    estimator = ParameterEstimator.wrap([OperatorParameter("shift", lr=0.1)])
    objective, _ = _objective(mu=math.inf, estimator=estimator, op=ShiftPair(shift=0.0, learnable=True))
    snapshot = objective.snapshot()
    objective.build_optimizer(lr=1e-3)
    objective.step(torch.tensor([0, 1, 2]))
    assert objective.parameter_values()["shift"] != 0.0
    assert snapshot["ops"][0] is not objective.ops[0] and float(snapshot["ops"][0].shift.detach()) == 0.0
    objective.restore(snapshot)
    assert objective.parameter_values()["shift"] == pytest.approx(0.0)

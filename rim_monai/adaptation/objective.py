r"""The Reuse & Regularize objective and the variables it is minimised over (Gilton, Ongie & Willett 2021).

.. math::
    L(\theta, \psi) = \frac{1}{N} \sum_{i=1}^N \big\| W_i^{1/2} \big(A(\psi)\, f_\theta(y_i, A(\psi)) - y_i\big)
    \big\|_2^2 + \mu \|\theta - \theta_0\|_2^2

:class:`AdaptationObjective` holds the network being adapted (:math:`\theta`), its trained weights
(:math:`\theta_0`), the operators (:math:`\psi`, with the unknown parameters of a
:class:`~rim_monai.adaptation.ParameterEstimator`) and the ``N`` measurements, and offers the steps
:func:`~rim_monai.adaptation.adapt` composes: one Adam step on a mini-batch, the full evaluation, the re-estimation
and outer search of operator parameters, a snapshot of the state and its restoration.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch

from rim_monai.adaptation.batched import full_data_term, sample_data_terms
from rim_monai.adaptation.losses import proximity_penalty
from rim_monai.adaptation.parameters import GeometryParameter, ParameterEstimator
from rim_monai.adaptation.search import grid_golden_search
from rim_monai.operators.base import LinearOperator

__all__ = ["AdaptationObjective"]


class AdaptationObjective:
    r"""The R&R (R&R+) objective over ``N`` measurement-only samples, and its variables θ and ψ.

    With ``mu = inf`` the weights are frozen (``requires_grad`` off until :meth:`restore`), and only operator
    parameters are estimated.

    Args:
        net: the network to adapt, called as ``net(y, A)`` (a copy: it is changed in place), in eval mode.
        operators: one shared operator ``[A]`` or ``N`` per-sample operators.
        measurements: ``(N, *range)`` on the operators' device.
        mu: weight :math:`\mu \ge 0` of the proximity penalty.
        weighting: ``None``, weights broadcastable to the measurements or a callable ``y -> weights``.
        estimator: the unknown operator parameters (R&R+), or ``None``.

    Attributes:
        net: the network (θ).
        ops: the current operators (ψ); replaced by :meth:`reestimate`, :meth:`search` and :meth:`restore`.
        optimizer: the Adam optimiser of θ and the gradient parameters (:meth:`build_optimizer`; ``None`` when
            there is nothing to optimise by gradient).

    Example:
        >>> objective = AdaptationObjective(net, [A1], y, mu=1e-3)          # doctest: +SKIP
        >>> objective.build_optimizer(lr=1e-4); objective.step(torch.tensor([0, 1]))  # doctest: +SKIP
    """

    def __init__(
        self,
        net: torch.nn.Module,
        operators: Sequence[LinearOperator],
        measurements: torch.Tensor,
        mu: float,
        weighting: Any = None,
        estimator: ParameterEstimator | None = None,
    ) -> None:
        self.net, self.mu, self.weighting, self.estimator = net, mu, weighting, estimator
        self.y_all = measurements
        self.theta = [p for p in net.parameters() if p.requires_grad]
        self.theta0 = [p.detach().clone() for p in self.theta]
        self.frozen = math.isinf(mu)
        if self.frozen:
            for p in self.theta:
                p.requires_grad_(False)
        self.ops = [estimator.prepare(op) for op in operators] if estimator is not None else list(operators)
        self.optimizer: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------------ values
    @property
    def penalized(self) -> bool:
        """Whether the penalty enters the objective (θ not frozen, ``mu > 0`` and something to train)."""
        return not self.frozen and self.mu > 0 and bool(self.theta)

    def penalty(self) -> float:
        r""":math:`\mu\|\theta - \theta_0\|^2` now (0 when :attr:`penalized` is false)."""
        if not self.penalized:
            return 0.0
        with torch.no_grad():
            return float(self.mu * proximity_penalty(self.theta, self.theta0))

    def parameter_values(self) -> dict[str, Any]:
        """The current values of the estimated operator parameters (empty for R&R)."""
        return {} if self.estimator is None else self.estimator.values(self.ops)

    def evaluate(self, batch_size: int, outputs: list[torch.Tensor] | None = None,
                 count: int | None = None) -> tuple[float, float]:
        """The full data term (mean over the samples) and the relative residual; see
        :func:`~rim_monai.adaptation.batched.full_data_term`."""
        return full_data_term(self.net, self.ops, self.y_all, self.weighting, batch_size, count, outputs)

    # ------------------------------------------------------------------ state
    def snapshot(self) -> dict[str, Any]:
        """A copy of the weights and the operators (deep copies of operators with learned parameters)."""
        learned = self.estimator is not None and self.estimator.gradient_parameters
        keep = [copy.deepcopy(op) for op in self.ops] if learned else list(self.ops)
        return {"state": copy.deepcopy(self.net.state_dict()), "ops": keep}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`, clear the gradients, and give frozen weights their ``requires_grad`` back."""
        self.net.load_state_dict(snapshot["state"])
        self.net.zero_grad(set_to_none=True)
        self.ops = snapshot["ops"]
        if self.frozen:
            for p in self.theta:
                p.requires_grad_(True)

    # ------------------------------------------------------------------ updates
    def reestimate(self) -> None:
        """Re-estimate every :class:`~rim_monai.adaptation.Reestimated` parameter once from the measurements."""
        n = self.y_all.shape[0]
        for spec in self.estimator.reestimated_parameters:
            if len(self.ops) == 1 and not spec.per_sample:
                self.ops = [spec.apply(self.ops[0], self.y_all)]
            else:
                shared = self.ops * n if len(self.ops) == 1 else self.ops
                self.ops = [spec.apply(op, self.y_all[i : i + 1]) for i, op in enumerate(shared)]
        for op in self.ops:
            for spec in self.estimator.parameters:
                spec.bind(op)

    def build_optimizer(self, lr: float) -> torch.optim.Optimizer | None:
        """Adam over θ (unless frozen) and the gradient parameters of the current operators (their own ``lr``)."""
        groups: list[dict[str, Any]] = [] if self.frozen or not self.theta else [{"params": self.theta, "lr": lr}]
        if self.estimator is not None:
            for spec in self.estimator.gradient_parameters:
                groups.append({"params": [spec.bind(op) for op in self.ops], "lr": spec.lr or lr})
        self.optimizer = torch.optim.Adam(groups) if groups else None
        return self.optimizer

    def step(self, idx: torch.Tensor) -> float:
        """One Adam step on the mini-batch objective of the samples ``idx``; returns its value before the step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = sample_data_terms(self.net, self.ops, self.y_all, idx, self.weighting).mean()
        if self.penalized:
            loss = loss + self.mu * proximity_penalty(self.theta, self.theta0)
        loss.backward()
        self.optimizer.step()
        if self.estimator is not None:
            for spec in self.estimator.gradient_parameters:
                for op in self.ops:
                    spec.constrain(op)
        return float(loss.detach())

    def search(self, spec: GeometryParameter, round_index: int, batch_size: int, count: int | None = None) -> int:
        """One coarse-to-fine search of ``spec`` with the network fixed; keeps the operators at the best value.

        Later rounds search two grid cells either side of the current estimate. The current value is kept unless the
        search found a lower data term.

        Returns:
            The number of objective evaluations spent.
        """
        lo, hi = spec.bounds
        current = spec.value(self.ops[0])
        if round_index > 0:
            cell = (hi - lo) / (spec.grid_points - 1)
            lo, hi = max(lo, current - 2 * cell), min(hi, current + 2 * cell)
        if hi - lo < spec.tol:
            return 0

        def objective(value: float) -> float:
            candidate = [spec.apply(op, value) for op in self.ops]
            return full_data_term(self.net, candidate, self.y_all, self.weighting, batch_size, count)[0]

        found = grid_golden_search(objective, lo, hi, grid_points=spec.grid_points, tol=spec.tol)
        if found.fx < self.evaluate(batch_size, count=count)[0]:
            self.ops = [spec.apply(op, found.x) for op in self.ops]
        return found.evaluations + 1

r"""Model adaptation from measurements alone: Reuse & Regularize (R&R) and R&R+ (Gilton, Ongie & Willett 2021).

A network :math:`f_{\theta_0}(y, A)` trained for an operator :math:`A_0` is adapted to a new operator :math:`A_1`
from ``N`` measurements :math:`y_i` of the new scanner, without ground truth:

.. math::
    \theta_1 = \arg\min_\theta \frac{1}{N} \sum_{i=1}^N \|A_1 f_\theta(y_i, A_1) - y_i\|_2^2
    + \mu \|\theta - \theta_0\|_2^2 \qquad \text{(R\&R)}

and, when the operator is only partly known, jointly over its parameters :math:`\psi` (R&R+):

.. math::
    (\theta_1, \psi_1) = \arg\min_{\theta, \psi} \frac{1}{N} \sum_{i=1}^N
    \|A(\psi) f_\theta(y_i, A(\psi)) - y_i\|_2^2 + \mu \|\theta - \theta_0\|_2^2 .

The penalty keeps the weights near the trained ones, so the prior the network learned survives the fine-tuning
(``mu = inf`` freezes them and estimates only :math:`\psi`). See :mod:`rim_monai.adaptation.parameters` for how
each kind of operator parameter is updated.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from ignite.engine import Engine, Events

from rim_monai.adaptation.batched import reconstruct
from rim_monai.adaptation.checks import check_mu, check_positive, check_protocol
from rim_monai.adaptation.objective import AdaptationObjective
from rim_monai.adaptation.parameters import ParameterEstimator, ParameterSpec
from rim_monai.adaptation.report import AdaptationReport
from rim_monai.adaptation.samples import check_weighting, noise_level, prepare_samples, stack_samples
from rim_monai.adaptation.scoring import reference_quality
from rim_monai.networks.rim import DataConsistencyWeight
from rim_monai.operators.base import LinearOperator
from rim_monai.training import (
    EpochLengths,
    KeepBestState,
    LossHistory,
    PeriodicEvaluation,
    ShuffledBatches,
    StopAtLevel,
    StopOnPlateau,
    step_engine,
)

__all__ = ["adapt", "freeze_data_consistency_weights", "NOISE_WARNING_FACTOR"]

logger = logging.getLogger(__name__)

#: ``adapt`` warns when the data term before adaptation is within this factor of ``noise_energy``. In the measured
#: evidence (docs/adaptation.md) R&R lost PSNR on every case at a ratio of 2.1 or less and gained on every case at 12
#: or more; 4 sits between them.
NOISE_WARNING_FACTOR = 4.0


def freeze_data_consistency_weights(net: torch.nn.Module) -> list[str]:
    r"""Turn off the gradients of ``net``'s learned data-consistency weights
    (:class:`~rim_monai.networks.rim.DataConsistencyWeight`, ``RIM(dc_lambda="learned")``) and return their names.

    The measurement-only loss :math:`\|A_1 f_\theta(y) - y\|^2` rewards a step that trusts the measurements outright:
    driving :math:`\lambda` to its lower bound lowers the loss by fitting the noise and any model error, which is
    what the weight was trained to avoid. So adaptation changes the network and leaves the weight's rule as trained.
    """
    names = [name for name, module in net.named_modules() if isinstance(module, DataConsistencyWeight)]
    for name in names:
        net.get_submodule(name).requires_grad_(False)
    return names


def _split(total: int, parts: int) -> list[int]:
    """``total`` steps in ``parts`` nearly equal blocks (the longer ones first)."""
    return [total // parts + (1 if r < total % parts else 0) for r in range(parts)]


def adapt(
    net: torch.nn.Module,
    operator: LinearOperator | Sequence[LinearOperator],
    measurements: Any,
    mu: float = 1e-3,
    steps: int = 200,
    lr: float = 1e-4,
    batch_size: int = 4,
    estimate: ParameterEstimator | Sequence[ParameterSpec] | ParameterSpec | None = None,
    references: Any = None,
    metric_protocol: str = "per_image",
    noise_weighting: Any = None,
    noise_energy: Any = None,
    patience: int | None = 5,
    min_delta: float = 1e-3,
    eval_every: int | None = None,
    progress: bool = True,
    seed: int = 0,
) -> tuple[torch.nn.Module, AdaptationReport]:
    r"""Adapt a trained network to a new operator from measurements alone (R&R; R&R+ with ``estimate``).

    The input ``net`` is never modified: a deep copy with weights :math:`\theta_0` is fine-tuned by Adam on
    mini-batches of the measurements, minimising :math:`D(\theta, \psi) + \mu\|\theta - \theta_0\|^2` with the data
    term :math:`D = \frac1N \sum_i \|W_i^{1/2}(A f_\theta(y_i, A) - y_i)\|^2`. The network runs in eval mode (the
    function fitted is the one used at inference; normalisation statistics are not changed).

    Every ``eval_every`` steps the full data term is evaluated; when it has not decreased by a relative ``min_delta``
    for ``patience`` evaluations the run stops, and the state (weights and operator) with the lowest full data term
    is returned. With ``noise_energy`` (the expected data term of the true images), the run also stops as soon as the
    data term reaches it (Morozov's discrepancy principle: fitting further only fits noise), and a warning says when
    the trained network already fits the data to within :data:`NOISE_WARNING_FACTOR` times that level.

    With ``estimate`` (R&R+): :class:`~rim_monai.adaptation.OperatorParameter` s are optimised jointly with θ by
    Adam; :class:`~rim_monai.adaptation.GeometryParameter` s by an outer coarse-grid + golden-section search with θ
    fixed, at the start of each of ``search_rounds`` blocks of θ steps; :class:`~rim_monai.adaptation.Reestimated`
    ones once from the measurements. The caller's operator is not changed; the estimated one is
    ``report.operator``.

    Args:
        net: a trained network called as ``net(y, A)`` (the last element is used if it returns a list).
        operator: the new operator :math:`A_1` (the initial guess :math:`A(\psi_0)` for R&R+), shared by all samples,
            or a sequence of ``N`` operators, one per sample (e.g. MRI slices with their own coil maps; mini-batches
            are then run sample by sample).
        measurements: ``N`` measurement-only samples: a tensor ``(N, *range)`` (e.g. ``(N, C, angles, detectors)``),
            a list of ``(*range)`` tensors, or a ``Dataset`` returning such tensors.
        mu: weight of :math:`\|\theta - \theta_0\|^2` (``>= 0``; ``math.inf`` freezes θ).
        steps: number of Adam steps on θ (and differentiable ψ).
        lr: Adam learning rate of θ (and of operator parameters without their own ``lr``).
        batch_size: mini-batch size (capped at ``N``).
        estimate: unknown operator parameters (R&R+): a :class:`~rim_monai.adaptation.ParameterEstimator`, one
            parameter or a list of them; ``None`` for R&R with a known operator.
        references: optional ground truth ``(N, *)`` (same forms as ``measurements``), used only to report PSNR/SSIM
            before, after and at every evaluation (``report.psnr`` / ``report.ssim``), never in the optimisation.
        metric_protocol: data-range protocol of :func:`rim_monai.metrics.psnr` / ``ssim``: ``"per_image"`` (CT,
            max - min of each reference), ``"volume"`` (fastMRI, max of each reference volume) or ``"8bit"``.
        noise_weighting: optional weights :math:`W` of the data term: a tensor broadcastable to the measurements
            (``(N, *)`` rows are per sample), or a callable ``y_batch -> weights`` (e.g.
            :func:`~rim_monai.adaptation.transmission_weights` for Poisson CT data).
        noise_energy: optional expected data term of the true images, :math:`E\|A x - y\|^2` per sample (in the units
            of the data term, so of the weighted one with ``noise_weighting``): a number, a ``(N,)`` tensor (its mean
            is used) or a callable ``y_all -> (N,)`` (e.g. ``lambda y: transmission_noise_energy(y, photons)``).
        patience: evaluations without improvement before stopping (``None``: never stop early).
        min_delta: relative decrease of the full data term that counts as an improvement.
        eval_every: steps between full evaluations (``None``: one pass over the data, ``ceil(N / batch_size)``).
        progress: show a tqdm progress bar.
        seed: seed of the mini-batch order.

    Returns:
        ``(adapted_net, report)``: the adapted deep copy (on the operator's device, in eval mode) and an
        :class:`~rim_monai.adaptation.AdaptationReport` (``report.operator`` is the operator to use it with).

    Raises:
        ValueError: naming the argument: negative or NaN ``mu``; non-positive ``lr``; negative ``steps``;
            ``batch_size``/``patience``/``eval_every`` < 1; negative ``min_delta``; empty or mis-shaped
            ``measurements``; ``references`` of another length or shape; a bad ``estimate``, ``noise_weighting`` or
            ``noise_energy``.

    Example:
        >>> adapted, report = adapt(net, A1, y_new, mu=1e-3, steps=300, lr=1e-4)           # doctest: +SKIP
        >>> adapted, report = adapt(net, A1, y_new, estimate=[GeometryParameter("detector_shift", (-3, 3))])  # doctest: +SKIP
        >>> report.to_json("adapt.json"); report.plot("adapt.png")                          # doctest: +SKIP
    """
    started = time.perf_counter()
    _check_arguments(net, mu, steps, lr, batch_size, patience, min_delta, metric_protocol, eval_every)
    estimator = _estimator(estimate)
    y_all, ops = prepare_samples(measurements, operator)
    n, device = y_all.shape[0], ops[0].device
    check_weighting(noise_weighting, y_all)
    level = noise_level(noise_energy, y_all)
    refs = None if references is None else stack_samples(references, "references").to(device)
    if refs is not None and refs.shape[0] != n:
        raise ValueError(f"references: expected {n} samples (one per measurement), got {refs.shape[0]}.")
    batch_size = min(int(batch_size), n)
    eval_every = int(eval_every) if eval_every is not None else math.ceil(n / batch_size)

    # the copy that is optimised (a learned data-consistency weight kept as trained), its report, and the state with
    # the lowest full data term
    model = copy.deepcopy(net).to(device).eval()
    kept = freeze_data_consistency_weights(model)
    if kept:
        logger.info("adapt: learned data-consistency weights kept as trained: %s", ", ".join(kept))
    objective = AdaptationObjective(model, ops, y_all, mu, noise_weighting, estimator)
    report = AdaptationReport(method="R&R+" if estimator is not None else "R&R", mu=float(mu), num_samples=n)
    report.config = {
        "steps": int(steps), "lr": float(lr), "batch_size": batch_size, "patience": patience,
        "min_delta": float(min_delta), "eval_every": eval_every, "seed": int(seed),
        "noise_weighting": None if noise_weighting is None else type(noise_weighting).__name__,
        "noise_energy": level, "estimate": None if estimator is None else repr(estimator),
    }
    best = KeepBestState(objective.snapshot)
    evaluation = _Evaluation(objective, report, best, batch_size, refs, metric_protocol)

    # before: θ₀ with the operator as given; then re-estimated operator parameters and the optimiser
    before = evaluation(0)["data_term"]
    _record_before(report, best, objective, level)
    if level is not None and before <= NOISE_WARNING_FACTOR * level:
        warnings.warn(
            f"adapt: the data term before adaptation ({before:.4g}) is already within {NOISE_WARNING_FACTOR:g}x the "
            f"noise energy ({level:.4g}): the network explains the measurements to about the noise level, so "
            "R&R has little to fit but noise (see docs/adaptation.md, Evidence).",
            stacklevel=2,
        )
    if estimator is not None and estimator.reestimated_parameters:
        objective.reestimate()
        evaluation(0)
    objective.build_optimizer(lr)
    if level is None or before > level:  # at the noise level already: nothing left to fit
        _optimize(objective, evaluation, best, report, int(steps), batch_size, eval_every, patience, min_delta,
                  level, progress, seed)

    # the best state, scored
    objective.restore(best.state)
    report.best_step = best.step
    report.data_term_after = best.value
    report.relative_residual_after = best.metrics["relative_residual"]
    report.parameters_final = objective.parameter_values()
    if refs is not None:
        recon = reconstruct(objective.net, objective.ops, y_all, batch_size)
        report.psnr_after, report.ssim_after, _ = reference_quality(recon, refs, metric_protocol)
    report.operator = objective.ops[0] if len(objective.ops) == 1 else objective.ops
    report.config["per_sample_operators"] = len(objective.ops) > 1
    report.wall_time_s = time.perf_counter() - started
    return objective.net, report


def _check_arguments(net: Any, mu: Any, steps: Any, lr: Any, batch_size: Any, patience: Any, min_delta: Any,
                     metric_protocol: Any, eval_every: Any) -> None:
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"net: expected a torch.nn.Module called as net(y, A), got {type(net).__name__}.")
    check_mu(mu)
    check_positive(steps, "steps", integer=True, allow_zero=True)
    check_positive(lr, "lr")
    check_positive(batch_size, "batch_size", integer=True)
    if patience is not None:
        check_positive(patience, "patience", integer=True)
    check_positive(min_delta, "min_delta", allow_zero=True)
    check_protocol(metric_protocol)
    if eval_every is not None:
        check_positive(eval_every, "eval_every", integer=True)


def _estimator(estimate: Any) -> ParameterEstimator | None:
    estimator = ParameterEstimator.wrap(estimate)
    if estimator is not None and estimator.gradient_parameters and estimator.search_parameters:
        raise ValueError(
            "estimate: OperatorParameter and GeometryParameter on one operator are not supported together "
            "(replace() would discard the learned parameters); estimate them in two adapt() calls."
        )
    return estimator


class _Evaluation:
    """The full evaluation of a run: data term (and PSNR/SSIM with references) into the report and the best state."""

    def __init__(self, objective: AdaptationObjective, report: AdaptationReport, best: KeepBestState,
                 batch_size: int, references: torch.Tensor | None, protocol: str) -> None:
        self.objective, self.report, self.best = objective, report, best
        self.batch_size, self.references, self.protocol = batch_size, references, protocol

    def __call__(self, step: int) -> dict[str, float]:
        report = self.report
        outputs: list[torch.Tensor] | None = None if self.references is None else []
        value, rel = self.objective.evaluate(self.batch_size, outputs=outputs)
        if outputs is not None:
            psnr_value, ssim_value, report.metric_protocol = reference_quality(
                torch.cat(outputs), self.references, self.protocol
            )
            report.psnr.append(psnr_value)
            report.ssim.append(ssim_value)
        report.eval_steps.append(step)
        report.data_term.append(value)
        report.penalty.append(self.objective.penalty())
        for name, v in self.objective.parameter_values().items():
            report.parameters.setdefault(name, []).append(v)
        metrics = {"data_term": value, "relative_residual": rel}
        self.best.update(metrics, step)
        return metrics


def _record_before(report: AdaptationReport, best: KeepBestState, objective: AdaptationObjective,
                   level: float | None) -> None:
    """The report's "before" fields, from the first evaluation (θ₀ with the operator as given)."""
    report.data_term_before = report.data_term[0]
    report.noise_energy = level
    report.relative_residual_before = best.metrics["relative_residual"]
    report.parameters_before = objective.parameter_values()
    if report.psnr:
        report.psnr_before, report.ssim_before = report.psnr[0], report.ssim[0]


class _SearchRound:
    """The outer search of every geometry parameter at the start of a round (an epoch), then an evaluation."""

    def __init__(self, objective: AdaptationObjective, evaluation: _Evaluation, report: AdaptationReport,
                 batch_size: int) -> None:
        self.objective, self.evaluation, self.report, self.batch_size = objective, evaluation, report, batch_size

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._on_epoch)

    def _on_epoch(self, engine: Engine) -> None:
        self(engine.state.epoch - 1, engine.state.iteration)

    def __call__(self, round_index: int, step: int) -> None:
        estimator = self.objective.estimator
        for spec in estimator.search_parameters:
            self.report.search_evaluations += self.objective.search(
                spec, round_index, self.batch_size, estimator.search_samples
            )
        self.evaluation(step)


def _optimize(objective: AdaptationObjective, evaluation: _Evaluation, best: KeepBestState,
              report: AdaptationReport, steps: int, batch_size: int, eval_every: int, patience: int | None,
              min_delta: float, level: float | None, progress: bool, seed: int) -> None:
    """The rounds of the run: each an outer search (R&R+ with geometry parameters) then a block of Adam steps.

    One round is one epoch of the training engine: no improvement for ``patience`` evaluations ends the round,
    reaching the noise ``level`` ends the run. Rounds without steps (none to take, or nothing to optimise by
    gradient) are the search alone.
    """
    estimator = objective.estimator
    searches = estimator.search_parameters if estimator is not None else []
    blocks = _split(steps, estimator.search_rounds) if searches else [steps]
    search_round = _SearchRound(objective, evaluation, report, batch_size) if searches else None
    active = [b for b in blocks if b > 0] if objective.optimizer is not None else []
    at_level = StopAtLevel(level) if level is not None else None
    plateau = StopOnPlateau(int(patience), min_delta, reference=best) if patience is not None else None
    history = LossHistory()
    if active:
        handlers = [search_round, PeriodicEvaluation(evaluation, eval_every, last=steps), at_level, plateau,
                    history, EpochLengths(active) if len(set(active)) > 1 else None]
        engine = step_engine(objective.step, [h for h in handlers if h is not None], progress, report.method)
        batches = ShuffledBatches(objective.y_all.shape[0], batch_size, seed, objective.y_all.device)
        report.steps_run = engine.run(batches, max_epochs=len(active), epoch_length=max(active)).iteration
    at_noise_level = at_level is not None and at_level.stopped
    for r in range(len(active), len(blocks) if search_round is not None else 0):  # rounds without steps: search
        if at_noise_level:
            break
        search_round(r, report.steps_run)
    report.batch_loss = history.values
    report.stopped_early = at_noise_level or (plateau is not None and plateau.stopped)
    if report.stopped_early:
        report.stop_reason = "noise level" if at_noise_level else "no improvement"

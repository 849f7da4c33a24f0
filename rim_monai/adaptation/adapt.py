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
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from rim_monai.adaptation import _common as C
from rim_monai.adaptation.losses import proximity_penalty
from rim_monai.adaptation.parameters import GeometryParameter, ParameterEstimator, ParameterSpec
from rim_monai.adaptation.report import AdaptationReport
from rim_monai.adaptation.search import grid_golden_search
from rim_monai.operators.base import LinearOperator

__all__ = ["adapt", "NOISE_WARNING_FACTOR"]

#: ``adapt`` warns when the data term before adaptation is within this factor of ``noise_energy``. In the measured
#: evidence (docs/adaptation.md) R&R lost PSNR on every case at a ratio of 2.1 or less and gained on every case at 12
#: or more; 4 sits between them.
NOISE_WARNING_FACTOR = 4.0


def _split(total: int, parts: int) -> list[int]:
    """``total`` steps in ``parts`` nearly equal blocks."""
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
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"net: expected a torch.nn.Module called as net(y, A), got {type(net).__name__}.")
    if not (isinstance(mu, (int, float)) and not isinstance(mu, bool)) or math.isnan(mu) or mu < 0:
        raise ValueError(f"mu: expected a number >= 0 (math.inf freezes the weights), got {mu!r}.")
    C.check_positive(steps, "steps", integer=True, allow_zero=True)
    C.check_positive(lr, "lr")
    C.check_positive(batch_size, "batch_size", integer=True)
    if patience is not None:
        C.check_positive(patience, "patience", integer=True)
    C.check_positive(min_delta, "min_delta", allow_zero=True)
    C.check_protocol(metric_protocol)
    if eval_every is not None:
        C.check_positive(eval_every, "eval_every", integer=True)
    estimator = ParameterEstimator.wrap(estimate)
    if estimator is not None and estimator.gradient_parameters and estimator.search_parameters:
        raise ValueError(
            "estimate: OperatorParameter and GeometryParameter on one operator are not supported together "
            "(replace() would discard the learned parameters); estimate them in two adapt() calls."
        )

    y_all, ops = C.prepare_samples(measurements, operator)
    n, device = y_all.shape[0], ops[0].device
    C.check_weighting(noise_weighting, y_all)
    noise_level = C.noise_level(noise_energy, y_all)
    refs = None if references is None else C.stack_samples(references, "references").to(device)
    if refs is not None and refs.shape[0] != n:
        raise ValueError(f"references: expected {n} samples (one per measurement), got {refs.shape[0]}.")
    batch_size = min(int(batch_size), n)
    eval_every = int(eval_every) if eval_every is not None else math.ceil(n / batch_size)

    # ---------------------------------------------------------------- the copies that are optimised
    adapted = copy.deepcopy(net).to(device).eval()
    theta = [p for p in adapted.parameters() if p.requires_grad]
    theta0 = [p.detach().clone() for p in theta]
    frozen = math.isinf(mu)
    if frozen:
        for p in theta:
            p.requires_grad_(False)
    if estimator is not None:
        ops = [estimator.prepare(op) for op in ops]

    method = "R&R+" if estimator is not None else "R&R"
    report = AdaptationReport(method=method, mu=float(mu), num_samples=n)
    report.config = {
        "steps": int(steps), "lr": float(lr), "batch_size": batch_size, "patience": patience,
        "min_delta": float(min_delta), "eval_every": eval_every, "seed": int(seed),
        "noise_weighting": None if noise_weighting is None else type(noise_weighting).__name__,
        "noise_energy": noise_level,
        "estimate": None if estimator is None else repr(estimator),
    }

    def penalty_value() -> float:
        if frozen or mu == 0 or not theta:
            return 0.0
        with torch.no_grad():
            return float(mu * proximity_penalty(theta, theta0))

    def param_values() -> dict[str, Any]:
        return {} if estimator is None else estimator.values(ops)

    def snapshot() -> dict[str, Any]:
        keep = [copy.deepcopy(op) for op in ops] if estimator is not None and estimator.gradient_parameters else list(ops)
        return {"state": copy.deepcopy(adapted.state_dict()), "ops": keep}

    best: dict[str, Any] = {"value": math.inf, "step": 0}

    def record(step: int) -> float:
        outputs: list[torch.Tensor] | None = None if refs is None else []
        value, rel = C.evaluate(adapted, ops, y_all, noise_weighting, batch_size, outputs=outputs)
        if outputs is not None:
            psnr_value, ssim_value, report.metric_protocol = C.image_quality(torch.cat(outputs), refs, metric_protocol)
            report.psnr.append(psnr_value)
            report.ssim.append(ssim_value)
        report.eval_steps.append(step)
        report.data_term.append(value)
        report.penalty.append(penalty_value())
        for name, v in param_values().items():
            report.parameters.setdefault(name, []).append(v)
        if value < best["value"]:
            best.update(value=value, step=step, rel=rel, snapshot=snapshot())
        return value

    # ---------------------------------------------------------------- before: θ₀ with the operator as given
    before = record(0)
    report.data_term_before = before
    report.noise_energy = noise_level
    if noise_level is not None and before <= NOISE_WARNING_FACTOR * noise_level:
        warnings.warn(
            f"adapt: the data term before adaptation ({before:.4g}) is already within {NOISE_WARNING_FACTOR:g}x the "
            f"noise energy ({noise_level:.4g}): the network explains the measurements to about the noise level, so "
            "R&R has little to fit but noise (see docs/adaptation.md, Evidence).",
            stacklevel=2,
        )
    report.relative_residual_before = best["rel"]
    report.parameters_before = param_values()
    if refs is not None:
        report.psnr_before, report.ssim_before = report.psnr[0], report.ssim[0]

    # ---------------------------------------------------------------- re-estimated parameters, then the optimiser
    if estimator is not None and estimator.reestimated_parameters:
        for spec in estimator.reestimated_parameters:
            if len(ops) == 1 and not spec.per_sample:
                ops = [spec.apply(ops[0], y_all)]
            else:
                shared = ops * n if len(ops) == 1 else ops
                ops = [spec.apply(op, y_all[i : i + 1]) for i, op in enumerate(shared)]
        for op in ops:
            for spec in estimator.parameters:
                spec.bind(op)
        record(0)
    groups: list[dict[str, Any]] = [] if frozen or not theta else [{"params": theta, "lr": lr}]
    if estimator is not None:
        for spec in estimator.gradient_parameters:
            groups.append({"params": [spec.bind(op) for op in ops], "lr": spec.lr or lr})
    optimizer = torch.optim.Adam(groups) if groups else None

    # ---------------------------------------------------------------- search rounds and θ blocks
    search = estimator.search_parameters if estimator is not None else []
    blocks = _split(int(steps), estimator.search_rounds) if search else [int(steps)]
    search_count = estimator.search_samples if estimator is not None else None
    generator = torch.Generator().manual_seed(int(seed))
    order: list[int] = []
    step = 0
    bar = tqdm(total=int(steps) if optimizer is not None else 0, desc=method, disable=not progress, leave=False)
    at_noise_level = noise_level is not None and before <= noise_level
    try:
        for r, block in enumerate(blocks):
            if at_noise_level:
                break
            if search:
                for spec in search:
                    ops = _search(spec, r, adapted, ops, y_all, noise_weighting, batch_size, search_count, report)
                record(step)
            if optimizer is None:
                continue
            last_best, waited = best["value"], 0
            for _ in range(block):
                if not order:
                    order = torch.randperm(n, generator=generator).tolist()
                idx = torch.tensor([order.pop() for _ in range(min(batch_size, len(order)))], device=device)
                optimizer.zero_grad(set_to_none=True)
                loss = C.data_terms(adapted, ops, y_all, idx, noise_weighting).mean()
                if not frozen and mu > 0 and theta:
                    loss = loss + mu * proximity_penalty(theta, theta0)
                loss.backward()
                optimizer.step()
                if estimator is not None:
                    for spec in estimator.gradient_parameters:
                        for op in ops:
                            spec.constrain(op)
                step += 1
                report.batch_loss.append(float(loss.detach()))
                bar.update(1)
                if step % eval_every == 0 or step == int(steps):
                    value = record(step)
                    bar.set_postfix(D=f"{value:.4g}")
                    if value < last_best * (1.0 - min_delta):
                        last_best, waited = value, 0
                    else:
                        waited += 1
                    at_noise_level = noise_level is not None and value <= noise_level
                    if at_noise_level or (patience is not None and waited >= patience):
                        report.stopped_early = True
                        report.stop_reason = "noise level" if at_noise_level else "no improvement"
                        bar.update(block - (step - sum(blocks[:r])))
                        break
    finally:
        bar.close()

    # ---------------------------------------------------------------- restore the best state
    adapted.load_state_dict(best["snapshot"]["state"])
    adapted.zero_grad(set_to_none=True)
    ops = best["snapshot"]["ops"]
    if frozen:
        for p in theta:
            p.requires_grad_(True)
    report.steps_run = step
    report.best_step = best["step"]
    report.data_term_after = best["value"]
    report.relative_residual_after = best["rel"]
    report.parameters_final = param_values()
    if refs is not None:
        report.psnr_after, report.ssim_after, _ = C.image_quality(
            C.reconstruct(adapted, ops, y_all, batch_size), refs, metric_protocol
        )
    report.operator = ops[0] if len(ops) == 1 else ops
    report.config["per_sample_operators"] = len(ops) > 1
    report.wall_time_s = time.perf_counter() - started
    return adapted, report


def _search(
    spec: GeometryParameter,
    round_index: int,
    net: torch.nn.Module,
    ops: list[LinearOperator],
    y_all: torch.Tensor,
    weighting: Any,
    batch_size: int,
    count: int | None,
    report: AdaptationReport,
) -> list[LinearOperator]:
    """One coarse-to-fine search of ``spec`` with the network fixed; returns the operators at the best value."""
    lo, hi = spec.bounds
    current = spec.value(ops[0])
    if round_index > 0:  # refine around the current estimate: two grid cells either side
        cell = (hi - lo) / (spec.grid_points - 1)
        lo, hi = max(lo, current - 2 * cell), min(hi, current + 2 * cell)
    if hi - lo < spec.tol:
        return ops

    def objective(value: float) -> float:
        candidate = [spec.apply(op, value) for op in ops]
        return C.evaluate(net, candidate, y_all, weighting, batch_size, count)[0]

    found = grid_golden_search(objective, lo, hi, grid_points=spec.grid_points, tol=spec.tol)
    report.search_evaluations += found.evaluations + 1
    # keep the current value unless the search found a better one
    if found.fx < C.evaluate(net, ops, y_all, weighting, batch_size, count)[0]:
        return [spec.apply(op, found.x) for op in ops]
    return ops

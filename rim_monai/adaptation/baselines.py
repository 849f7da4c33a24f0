r"""The references an adaptation is measured against (Gilton, Ongie & Willett 2021, Fig. "model drift").

* :func:`swap_operator` — no adaptation beyond handing the new operator to the trained network: for the model-based
  networks (RIM, learned gradient descent, learned primal-dual, deep equilibrium) this is the call
  ``net(y, A1)``; for FBPConvNet only its FBP changes (the post-processing U-Net still expects :math:`A_0` artefacts).
* :func:`retrain_supervised` — the upper reference "trained on :math:`A_1` with ground truth": the same network
  fine-tuned (or retrained from scratch) with pairs :math:`(y_i, x_i)` of the new operator.

The lower reference "no adaptation" is the trained network evaluated with the *old* operator on the new data,
``swap_operator(net, A0, y_new)``, where the shapes allow it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from rim_monai.adaptation.batched import full_data_term, net_output, reconstruct
from rim_monai.adaptation.checks import check_positive, check_protocol
from rim_monai.adaptation.report import AdaptationReport
from rim_monai.adaptation.samples import prepare_samples, stack_samples
from rim_monai.adaptation.scoring import reference_quality
from rim_monai.operators.base import LinearOperator
from rim_monai.training import LossHistory, PeriodicEvaluation, ShuffledBatches, step_engine

__all__ = ["swap_operator", "retrain_supervised"]


def swap_operator(
    net: torch.nn.Module,
    operator: LinearOperator | Sequence[LinearOperator],
    measurements: Any,
    batch_size: int = 8,
) -> torch.Tensor:
    """Reconstruct new measurements with the trained weights and the new operator: ``net(y_i, A1)`` for all ``i``.

    The network is run in eval mode without gradients (its training flag is restored afterwards); nothing is
    copied or changed.

    Args:
        net: the trained network, called as ``net(y, A)``.
        operator: the new operator (shared), or one operator per sample.
        measurements: ``(N, *range)`` tensor, list or ``Dataset`` of tensors.
        batch_size: samples per forward call.

    Returns:
        The reconstructions ``(N, *domain)``.

    Raises:
        ValueError: naming ``measurements``, ``operator`` or ``batch_size``.

    Example:
        >>> x_swap = swap_operator(net, A1, y_new)      # doctest: +SKIP
    """
    check_positive(batch_size, "batch_size", integer=True)
    y_all, ops = prepare_samples(measurements, operator)
    was_training = net.training
    net.eval()
    try:
        return reconstruct(net, ops, y_all, int(batch_size))
    finally:
        net.train(was_training)


def _squared_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    diff = x - target
    return (diff.real**2 + diff.imag**2 if diff.is_complex() else diff**2).mean()


def _reinitialize(net: torch.nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.modules():
            if module is not net and callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()


def retrain_supervised(
    net: torch.nn.Module,
    operator: LinearOperator | Sequence[LinearOperator],
    measurements: Any,
    targets: Any,
    steps: int = 500,
    lr: float = 1e-4,
    batch_size: int = 4,
    reinitialize: bool = False,
    metric_protocol: str = "per_image",
    progress: bool = True,
    seed: int = 0,
) -> tuple[torch.nn.Module, AdaptationReport]:
    r"""Supervised upper reference: fit a copy of ``net`` to ground-truth pairs of the new operator.

    Minimises :math:`\frac{1}{N}\sum_i \|f_\theta(y_i, A_1) - x_i\|^2` (mean squared error, complex by modulus) with
    Adam on mini-batches, starting from the trained weights (``reinitialize=False``: fine-tuning, the cheaper upper
    reference) or from a fresh initialisation (every submodule's ``reset_parameters``, seeded: "trained on
    :math:`A_1`"). The input ``net`` is not modified. The network is trained in train mode and returned in eval mode.

    Args:
        net: the network, called as ``net(y, A)``.
        operator: the new operator :math:`A_1` (shared) or one per sample.
        measurements: ``N`` measurements ``(N, *range)`` (tensor, list or ``Dataset``).
        targets: the ground-truth images ``(N, *)``, shaped like ``net(y, A)``.
        steps: Adam steps.
        lr: learning rate.
        batch_size: mini-batch size (capped at ``N``).
        reinitialize: retrain from scratch instead of fine-tuning.
        metric_protocol: data-range protocol of the reported PSNR/SSIM (see :func:`~rim_monai.adaptation.adapt`).
        progress: show a tqdm progress bar.
        seed: seed of the mini-batch order and of the re-initialisation.

    Returns:
        ``(trained_net, report)``; ``report.method == "supervised"``, ``batch_loss`` holds the image loss per step,
        the data term and PSNR/SSIM (against ``targets``, i.e. on the training pairs) are given before and after.

    Raises:
        ValueError: naming the argument (``targets`` of another length, non-positive ``steps``/``lr``...).

    Example:
        >>> upper, rep = retrain_supervised(net, A1, y_train, x_train, steps=2000)      # doctest: +SKIP
    """
    started = time.perf_counter()
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"net: expected a torch.nn.Module called as net(y, A), got {type(net).__name__}.")
    check_positive(steps, "steps", integer=True)
    check_positive(lr, "lr")
    check_positive(batch_size, "batch_size", integer=True)
    check_protocol(metric_protocol)
    y_all, ops = prepare_samples(measurements, operator)
    n, device = y_all.shape[0], ops[0].device
    x_all = stack_samples(targets, "targets").to(device)
    if x_all.shape[0] != n:
        raise ValueError(f"targets: expected {n} samples (one per measurement), got {x_all.shape[0]}.")
    batch_size = min(int(batch_size), n)

    model = copy.deepcopy(net).to(device)
    if reinitialize:
        _reinitialize(model, seed)
    report = AdaptationReport(method="supervised", mu=0.0, num_samples=n)
    report.config = {"steps": int(steps), "lr": float(lr), "batch_size": batch_size, "reinitialize": bool(reinitialize),
                     "seed": int(seed), "per_sample_operators": len(ops) > 1}
    evaluation = _DataTermRecord(model, ops, y_all, batch_size, report)
    before = evaluation(0)
    report.data_term_before, report.relative_residual_before = before["data_term"], before["relative_residual"]
    report.psnr_before, report.ssim_before, report.metric_protocol = reference_quality(
        reconstruct(model, ops, y_all, batch_size), x_all, metric_protocol, "targets"
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("net: has no trainable parameters.")
    step = _SupervisedStep(model, ops, y_all, x_all, torch.optim.Adam(params, lr=lr))
    history = LossHistory()
    # about ten evaluations of the full data term, and one after the last step
    periodic = PeriodicEvaluation(evaluation, every=max(1, int(steps) // 10), last=int(steps))
    engine = step_engine(step, [periodic, history], progress, desc="supervised")
    engine.run(ShuffledBatches(n, batch_size, seed, device), epoch_length=int(steps))
    report.batch_loss = history.values
    report.data_term_after, report.relative_residual_after = report.data_term[-1], evaluation.relative_residual
    report.steps_run = report.best_step = int(steps)
    model.eval()
    report.psnr_after, report.ssim_after, _ = reference_quality(
        reconstruct(model, ops, y_all, batch_size), x_all, metric_protocol, "targets"
    )
    report.operator = ops[0] if len(ops) == 1 else ops
    report.wall_time_s = time.perf_counter() - started
    return model, report


class _DataTermRecord:
    """The full data term of the model in eval mode, appended to the report (no penalty: supervised)."""

    def __init__(self, model: torch.nn.Module, ops: Sequence[LinearOperator], y_all: torch.Tensor, batch_size: int,
                 report: AdaptationReport) -> None:
        self.model, self.ops, self.y_all, self.batch_size, self.report = model, ops, y_all, batch_size, report
        self.relative_residual = math.nan

    def __call__(self, step: int) -> dict[str, float]:
        self.model.eval()
        value, self.relative_residual = full_data_term(self.model, self.ops, self.y_all, None, self.batch_size)
        self.report.eval_steps.append(step)
        self.report.data_term.append(value)
        self.report.penalty.append(0.0)
        return {"data_term": value, "relative_residual": self.relative_residual}


class _SupervisedStep:
    """One Adam step on the mean squared error of a mini-batch, the model in train mode."""

    def __init__(self, model: torch.nn.Module, ops: Sequence[LinearOperator], y_all: torch.Tensor,
                 x_all: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.ops, self.y_all, self.x_all, self.optimizer = model, ops, y_all, x_all, optimizer

    def __call__(self, idx: torch.Tensor) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        if len(self.ops) == 1:
            loss = _squared_error(net_output(self.model, self.y_all[idx], self.ops[0]), self.x_all[idx])
        else:
            loss = torch.stack([
                _squared_error(net_output(self.model, self.y_all[i : i + 1], self.ops[i]), self.x_all[i : i + 1])
                for i in idx.tolist()
            ]).mean()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

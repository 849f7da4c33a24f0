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
import time
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from rim_monai.adaptation import _common as C
from rim_monai.adaptation.report import AdaptationReport
from rim_monai.operators.base import LinearOperator

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
    C.check_positive(batch_size, "batch_size", integer=True)
    y_all = C.stack_samples(measurements, "measurements")
    ops = C.operator_list(operator, y_all.shape[0])
    y_all = y_all.to(ops[0].device)
    C.check_measurements(y_all, ops)
    was_training = net.training
    net.eval()
    try:
        return C.reconstruct(net, ops, y_all, int(batch_size))
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
    C.check_positive(steps, "steps", integer=True)
    C.check_positive(lr, "lr")
    C.check_positive(batch_size, "batch_size", integer=True)
    C.check_protocol(metric_protocol)
    y_all, ops = C.prepare_samples(measurements, operator)
    n, device = y_all.shape[0], ops[0].device
    x_all = C.stack_samples(targets, "targets").to(device)
    if x_all.shape[0] != n:
        raise ValueError(f"targets: expected {n} samples (one per measurement), got {x_all.shape[0]}.")
    batch_size = min(int(batch_size), n)

    model = copy.deepcopy(net).to(device)
    if reinitialize:
        _reinitialize(model, seed)
    report = AdaptationReport(method="supervised", mu=0.0, num_samples=n)
    report.config = {"steps": int(steps), "lr": float(lr), "batch_size": batch_size, "reinitialize": bool(reinitialize),
                     "seed": int(seed), "per_sample_operators": len(ops) > 1}

    def record(step: int) -> tuple[float, float]:
        model.eval()
        value, rel = C.evaluate(model, ops, y_all, None, batch_size)
        report.eval_steps.append(step)
        report.data_term.append(value)
        report.penalty.append(0.0)
        return value, rel

    report.data_term_before, report.relative_residual_before = record(0)
    report.psnr_before, report.ssim_before, report.metric_protocol = C.image_quality(
        C.reconstruct(model, ops, y_all, batch_size), x_all, metric_protocol, "targets"
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("net: has no trainable parameters.")
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(int(seed))
    order: list[int] = []
    eval_every = max(1, int(steps) // 10)  # about ten evaluations of the full data term
    for step in tqdm(range(1, int(steps) + 1), desc="supervised", disable=not progress, leave=False):
        model.train()
        if not order:
            order = torch.randperm(n, generator=generator).tolist()
        idx = [order.pop() for _ in range(min(batch_size, len(order)))]
        optimizer.zero_grad(set_to_none=True)
        if len(ops) == 1:
            sel = torch.tensor(idx, device=device)
            loss = _squared_error(C.net_output(model, y_all[sel], ops[0]), x_all[sel])
        else:
            loss = torch.stack(
                [_squared_error(C.net_output(model, y_all[i : i + 1], ops[i]), x_all[i : i + 1]) for i in idx]
            ).mean()
        loss.backward()
        optimizer.step()
        report.batch_loss.append(float(loss.detach()))
        if step % eval_every == 0 and step != int(steps):
            record(step)
    report.data_term_after, report.relative_residual_after = record(int(steps))
    report.steps_run = report.best_step = int(steps)
    model.eval()
    report.psnr_after, report.ssim_after, _ = C.image_quality(
        C.reconstruct(model, ops, y_all, batch_size), x_all, metric_protocol, "targets"
    )
    report.operator = ops[0] if len(ops) == 1 else ops
    report.wall_time_s = time.perf_counter() - started
    return model, report

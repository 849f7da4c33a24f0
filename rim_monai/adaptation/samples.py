"""The ``N`` measurement-only samples of an adaptation, their operators and the weights of their data terms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from rim_monai.operators.base import LinearOperator, check_tensor

__all__ = ["stack_samples", "operator_list", "check_measurements", "prepare_samples", "check_weighting",
           "noise_level", "batch_weights"]


def stack_samples(samples: Any, name: str) -> torch.Tensor:
    """``(N, *)`` tensor from a tensor, a list/tuple of ``(*)`` tensors or a ``Dataset`` of tensors.

    Raises:
        ValueError: naming ``name`` for no samples, a non-tensor item or samples of different shapes.

    Example:
        >>> stack_samples([torch.zeros(1, 4), torch.ones(1, 4)], "measurements").shape
        torch.Size([2, 1, 4])
    """
    if isinstance(samples, torch.Tensor):
        out = samples.as_tensor() if hasattr(samples, "as_tensor") else samples
        if out.ndim == 0 or out.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one sample (a tensor (N, ...) with N >= 1), got shape {tuple(out.shape)}.")
        return out
    try:
        n = len(samples)
    except TypeError:
        raise ValueError(
            f"{name}: expected a tensor (N, ...), a list of tensors or a Dataset of tensors, got {type(samples).__name__}."
        ) from None
    if n == 0:
        raise ValueError(f"{name}: expected at least one sample, got an empty {type(samples).__name__}.")
    items = [samples[i] for i in range(n)]
    for i, item in enumerate(items):
        if not isinstance(item, torch.Tensor):
            raise ValueError(f"{name}: item {i} is a {type(item).__name__}, expected a torch.Tensor.")
    shapes = {tuple(item.shape) for item in items}
    if len(shapes) != 1:
        raise ValueError(f"{name}: all samples must have the same shape, got {sorted(shapes)}.")
    return torch.stack([item.as_tensor() if hasattr(item, "as_tensor") else item for item in items])


def operator_list(operator: Any, n: int, name: str = "operator") -> list[LinearOperator]:
    """One shared operator as ``[A]``, or ``N`` per-sample operators as a list (checked).

    Raises:
        ValueError: naming ``name`` for something that is not a :class:`LinearOperator` or a sequence of ``n`` of them.
    """
    if isinstance(operator, LinearOperator):
        return [operator]
    if isinstance(operator, Sequence) and not isinstance(operator, str):
        ops = list(operator)
        if len(ops) != n:
            raise ValueError(f"{name}: expected one LinearOperator or {n} (one per sample), got a sequence of {len(ops)}.")
        for i, op in enumerate(ops):
            if not isinstance(op, LinearOperator):
                raise ValueError(f"{name}: item {i} is a {type(op).__name__}, expected a LinearOperator.")
        return ops
    raise ValueError(f"{name}: expected a LinearOperator or a sequence of them, got {type(operator).__name__}.")


def check_measurements(y: torch.Tensor, ops: Sequence[LinearOperator], name: str = "measurements") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``y`` is ``(N, *range)`` of the first operator (dtype, device)."""
    op = ops[0]
    check_tensor(y, name, op.range_shape, op.range_is_complex)
    if y.ndim == len(op.range_shape):
        raise ValueError(
            f"{name}: expected a leading sample dimension, shape (N, ..., {', '.join(map(str, op.range_shape))}), "
            f"got {tuple(y.shape)}."
        )


def prepare_samples(measurements: Any, operator: Any) -> tuple[torch.Tensor, list[LinearOperator]]:
    """Measurements stacked to ``(N, *range)`` on the operators' device, and the ``N`` operators (checked)."""
    y_all = stack_samples(measurements, "measurements")
    ops = operator_list(operator, y_all.shape[0])
    y_all = y_all.to(ops[0].device)
    check_measurements(y_all, ops)
    return y_all, ops


def check_weighting(weighting: Any, y: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``noise_weighting`` unless it is ``None``, a callable or non-negative weights
    broadcastable to the measurements ``y``."""
    if weighting is None or callable(weighting) and not isinstance(weighting, torch.Tensor):
        return
    if not isinstance(weighting, torch.Tensor):
        raise ValueError(
            f"noise_weighting: expected None, a tensor of weights or a callable y -> weights, got {type(weighting).__name__}."
        )
    try:
        torch.broadcast_shapes(tuple(weighting.shape), tuple(y.shape))
    except RuntimeError:
        raise ValueError(
            f"noise_weighting: shape {tuple(weighting.shape)} does not broadcast to the measurements {tuple(y.shape)}."
        ) from None
    if weighting.is_complex() or not bool(torch.isfinite(weighting).all()) or bool((weighting < 0).any()):
        raise ValueError("noise_weighting: expected finite, real, non-negative weights.")


def noise_level(noise_energy: Any, y_all: torch.Tensor) -> float | None:
    """The mean expected noise energy per sample from a number, an ``(N,)`` tensor or a callable ``y_all -> (N,)``.

    Raises:
        ValueError: naming ``noise_energy`` when it is not one of those or not a finite number ``>= 0``.
    """
    if noise_energy is None:
        return None
    value = noise_energy(y_all) if callable(noise_energy) else noise_energy
    if isinstance(value, torch.Tensor):
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] not in (1, y_all.shape[0])):
            raise ValueError(
                f"noise_energy: expected a number or {y_all.shape[0]} values (one per sample), got shape "
                f"{tuple(value.shape)}."
            )
        value = float(value.double().mean())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) < math.inf:
        raise ValueError(f"noise_energy: expected a finite number >= 0, got {value!r}.")
    return float(value)


def batch_weights(weighting: Any, y_all: torch.Tensor, idx: torch.Tensor) -> torch.Tensor | None:
    """Weights of the samples ``idx`` (per-sample rows of an ``(N, *)`` tensor are indexed, others broadcast)."""
    if weighting is None:
        return None
    if not isinstance(weighting, torch.Tensor):
        w = weighting(y_all[idx])
        return w.to(y_all.device)
    w = weighting.to(y_all.device)
    if w.ndim == y_all.ndim and w.shape[0] == y_all.shape[0] and y_all.shape[0] > 1:
        return w[idx]
    return w

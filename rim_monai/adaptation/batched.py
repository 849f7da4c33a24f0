r"""Running a network ``net(y, A)`` over ``N`` samples in chunks: reconstructions and data terms.

One operator shared by all samples runs a chunk of samples as one batch; ``N`` per-sample operators run sample by
sample. A network that returns all its iterates (a list) is scored on the last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rim_monai.adaptation.losses import data_consistency
from rim_monai.adaptation.samples import batch_weights
from rim_monai.operators.base import LinearOperator

__all__ = ["net_output", "index_chunks", "sample_data_terms", "full_data_term", "reconstruct", "reconstruct_each"]


def net_output(net: Callable[..., Any], y: torch.Tensor, op: LinearOperator) -> torch.Tensor:
    """``net(y, op)``, or its last element when the network returns all iterates."""
    out = net(y, op)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    return out


def index_chunks(n: int, size: int, device: torch.device | None = None) -> list[torch.Tensor]:
    """``[0, size), [size, 2 size), ...`` up to ``n`` as index tensors.

    Example:
        >>> [c.tolist() for c in index_chunks(5, 2)]
        [[0, 1], [2, 3], [4]]
    """
    return [torch.arange(s, min(s + size, n), device=device) for s in range(0, n, size)]


def sample_data_terms(
    net: torch.nn.Module, ops: Sequence[LinearOperator], y_all: torch.Tensor, idx: torch.Tensor, weighting: Any
) -> torch.Tensor:
    r"""Per-sample data terms :math:`\|W^{1/2}(A f(y_i, A) - y_i)\|^2` of the samples ``idx``, shape ``(len(idx),)``.

    Computed with the autograd graph (the mini-batch objective of :func:`~rim_monai.adaptation.adapt`).
    """
    if len(ops) == 1:
        y = y_all[idx]
        return data_consistency(net_output(net, y, ops[0]), ops[0], y, batch_weights(weighting, y_all, idx))
    terms = []
    for i in idx.tolist():
        sel = torch.tensor([i], device=idx.device)
        y = y_all[sel]
        terms.append(data_consistency(net_output(net, y, ops[i]), ops[i], y, batch_weights(weighting, y_all, sel)))
    return torch.cat(terms)


@torch.no_grad()
def full_data_term(
    net: torch.nn.Module,
    ops: Sequence[LinearOperator],
    y_all: torch.Tensor,
    weighting: Any,
    batch_size: int,
    count: int | None = None,
    outputs: list[torch.Tensor] | None = None,
) -> tuple[float, float]:
    r"""Mean data term over the samples and the relative residual :math:`\sqrt{\sum\|Af - y\|^2 / \sum\|y\|^2}`.

    Args:
        net: the network.
        ops: one shared operator or one per sample.
        y_all: measurements ``(N, *range)``.
        weighting: ``None``, weights or a callable (see :func:`~rim_monai.adaptation.samples.batch_weights`); the
            relative residual is always unweighted.
        batch_size: samples per forward call.
        count: only the first ``count`` samples.
        outputs: a list the reconstructions are appended to in sample order, so a caller can score them without
            running the network again.

    Returns:
        ``(mean data term, relative residual)``.
    """
    n = y_all.shape[0] if count is None else min(count, y_all.shape[0])
    weighted = plain = norm = 0.0
    for idx in index_chunks(n, batch_size, y_all.device):
        groups = [(ops[0], idx)] if len(ops) == 1 else [(ops[i], idx[k : k + 1]) for k, i in enumerate(idx.tolist())]
        for op, sel in groups:
            y = y_all[sel]
            x = net_output(net, y, op)
            if outputs is not None:
                outputs.append(x)
            weighted += float(data_consistency(x, op, y, batch_weights(weighting, y_all, sel)).sum())
            plain += float(data_consistency(x, op, y).sum()) if weighting is not None else 0.0
            norm += float((y.abs() ** 2).sum())
    if weighting is None:
        plain = weighted
    return weighted / n, math.sqrt(plain / norm) if norm > 0 else math.inf


@torch.no_grad()
def reconstruct(net: torch.nn.Module, ops: Sequence[LinearOperator], y_all: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``net(y, A)`` for all samples ``(N, *range)``, in chunks, without gradients: ``(N, *domain)``."""
    outs = []
    for idx in index_chunks(y_all.shape[0], batch_size, y_all.device):
        if len(ops) == 1:
            outs.append(net_output(net, y_all[idx], ops[0]))
        else:
            outs.extend(net_output(net, y_all[i : i + 1], ops[i]) for i in idx.tolist())
    return torch.cat(outs)


@torch.no_grad()
def reconstruct_each(
    method: Callable[[torch.Tensor, Any], Any], measurements: Sequence[torch.Tensor], operators: Sequence[Any]
) -> torch.Tensor:
    """``method(y_i[None], A_i)`` for each sample on its own, without gradients, stacked to ``(N, *domain)``.

    ``method`` is any reconstructor called as ``method(y, A)``: a network, :func:`rim_monai.classical.fbp`, ... The
    measurements may differ in shape (e.g. scans with different numbers of views), the reconstructions may not.

    Raises:
        ValueError: naming ``operators`` when there is not one per measurement.

    Example:
        >>> from rim_monai.operators import Identity
        >>> reconstruct_each(lambda y, A: 2 * y, [torch.ones(1, 2, 2)] * 3, [Identity((2, 2))] * 3).shape
        torch.Size([3, 1, 2, 2])
    """
    if len(operators) != len(measurements):
        raise ValueError(f"operators: expected one per measurement ({len(measurements)}), got {len(operators)}.")
    return torch.stack([net_output(method, y[None], op)[0] for y, op in zip(measurements, operators)])

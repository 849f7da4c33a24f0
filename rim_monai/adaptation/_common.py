"""Shared plumbing of :mod:`rim_monai.adaptation`: argument checks, batched evaluation and image quality."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from rim_monai.adaptation.losses import data_consistency
from rim_monai.operators.base import LinearOperator, check_tensor

__all__: list[str] = []  # private module

def stack_samples(samples: Any, name: str) -> torch.Tensor:
    """``(N, *)`` tensor from a tensor, a list/tuple of ``(*)`` tensors or a ``Dataset`` of tensors."""
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
    """One shared operator as ``[A]``, or ``N`` per-sample operators as a list (checked)."""
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

def check_positive(value: Any, name: str, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        kind = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite {kind} {bound}, got {value!r}.")


def check_protocol(protocol: Any) -> None:
    if protocol not in ("per_image", "volume", "8bit"):
        raise ValueError(f"metric_protocol: expected 'per_image', 'volume' or '8bit', got {protocol!r}.")


def check_weighting(weighting: Any, y: torch.Tensor) -> None:
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
    """The mean expected noise energy per sample from a number, an ``(N,)`` tensor or a callable ``y_all -> (N,)``."""
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


def net_output(net: torch.nn.Module, y: torch.Tensor, op: LinearOperator) -> torch.Tensor:
    out = net(y, op)
    if isinstance(out, (list, tuple)):  # a network that returns all iterates: the last is the estimate
        out = out[-1]
    return out


def data_terms(
    net: torch.nn.Module, ops: Sequence[LinearOperator], y_all: torch.Tensor, idx: torch.Tensor, weighting: Any
) -> torch.Tensor:
    """Per-sample data terms ``(len(idx),)`` of the samples ``idx`` (with the autograd graph)."""
    if len(ops) == 1:
        y = y_all[idx]
        return data_consistency(net_output(net, y, ops[0]), ops[0], y, batch_weights(weighting, y_all, idx))
    terms = []
    for i in idx.tolist():
        sel = torch.tensor([i], device=idx.device)
        y = y_all[sel]
        terms.append(data_consistency(net_output(net, y, ops[i]), ops[i], y, batch_weights(weighting, y_all, sel)))
    return torch.cat(terms)


def chunks(n: int, size: int, device: torch.device | None = None) -> list[torch.Tensor]:
    return [torch.arange(s, min(s + size, n), device=device) for s in range(0, n, size)]


@torch.no_grad()
def evaluate(
    net: torch.nn.Module,
    ops: Sequence[LinearOperator],
    y_all: torch.Tensor,
    weighting: Any,
    batch_size: int,
    count: int | None = None,
    outputs: list[torch.Tensor] | None = None,
) -> tuple[float, float]:
    """Full data term (mean over samples) and relative residual ``sqrt(sum ||Af - y||^2 / sum ||y||^2)``.

    With ``outputs`` (a list), the reconstructions are appended to it in sample order, so a caller can score them
    without running the network a second time.
    """
    n = y_all.shape[0] if count is None else min(count, y_all.shape[0])
    weighted = plain = norm = 0.0
    for idx in chunks(n, batch_size, y_all.device):
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
    """``net(y, A)`` for all samples, in chunks, without gradients: ``(N, *)``."""
    outs = []
    for idx in chunks(y_all.shape[0], batch_size, y_all.device):
        if len(ops) == 1:
            outs.append(net_output(net, y_all[idx], ops[0]))
        else:
            outs.extend(net_output(net, y_all[i : i + 1], ops[i]) for i in idx.tolist())
    return torch.cat(outs)


def _local_psnr(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean PSNR with the data range of each reference sample (``max - min``), in dB."""
    flat = ref.reshape(ref.shape[0], -1)
    data_range = (flat.amax(dim=1) - flat.amin(dim=1)).clamp_min(1e-12)
    mse = ((pred - ref) ** 2).reshape(pred.shape[0], -1).mean(dim=1)
    return float((10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-30))).mean())


def image_quality(
    pred: torch.Tensor, ref: torch.Tensor, protocol: str = "per_image", name: str = "references"
) -> tuple[float | None, float | None, str]:
    """Mean PSNR (dB) and SSIM over the samples, and a sentence saying how they were computed.

    Complex images are compared by magnitude. PSNR and SSIM are :func:`rim_monai.metrics.psnr` /
    :func:`rim_monai.metrics.ssim` with the given ``protocol`` (``"per_image"``: data range max - min of each
    reference; ``"volume"``: max of each reference volume; 7x7 uniform SSIM window); SSIM is ``None`` where it is not
    defined (images smaller than the window). Without :mod:`rim_monai.metrics`, PSNR uses the per-image data range
    and SSIM is ``None``. Reference samples without a data range (e.g. a background patch of zeros) have no PSNR:
    they are left out of the mean and the sentence says how many; with none left both values are ``None``.
    Under the fastMRI ``"volume"`` protocol, reconstructions larger than the references in the last two dimensions (on
    the oversampled k-space grid, against a 320x320 ``reconstruction_rss``) are centre-cropped to them first, as
    fastMRI does; other protocols require equal shapes.
    """
    pred = pred.detach().abs() if pred.is_complex() else pred.detach()
    ref = ref.detach().abs() if ref.is_complex() else ref.detach()
    cropped = ""
    larger = pred.ndim >= 2 and pred.shape[:-2] == ref.shape[:-2] and pred.shape[-2:] != ref.shape[-2:]
    if protocol == "volume" and larger and all(p >= r for p, r in zip(pred.shape[-2:], ref.shape[-2:])):
        # fastMRI: a reconstruction on the (oversampled) k-space grid is centre-cropped to the reference
        from rim_monai.data.fastmri import center_crop

        pred = center_crop(pred, ref.shape[-2:])
        cropped = f"; reconstructions centre-cropped to the references' {tuple(ref.shape[-2:])} (fastMRI)"
    if pred.shape != ref.shape:
        raise ValueError(f"{name}: expected the shape of the reconstructions {tuple(pred.shape)}, got {tuple(ref.shape)}.")
    pred, ref = pred.double().cpu(), ref.double().cpu()
    flat = ref.reshape(ref.shape[0], -1)
    scored = flat.amax(dim=1) - (0.0 if protocol == "volume" else flat.amin(dim=1)) > 0
    left_out = "" if bool(scored.all()) else f"; {int((~scored).sum())} reference sample(s) without a data range left out"
    left_out += cropped
    if not bool(scored.any()):
        return None, None, f"no reference sample has a data range under protocol {protocol!r}{left_out}"
    pred, ref = pred[scored], ref[scored]
    try:
        from rim_monai.metrics import psnr, ssim
    except ImportError:  # the metrics layer is optional for adaptation
        return (_local_psnr(pred, ref), None,
                f"PSNR with data range = max - min of each reference (magnitude); no SSIM{left_out}")
    described = f"rim_monai.metrics psnr/ssim, protocol {protocol!r} (magnitude for complex images){left_out}"
    psnr_value = float(psnr(pred, ref, protocol=protocol))
    try:
        ssim_value: float | None = float(ssim(pred, ref, protocol=protocol))
    except ValueError:  # e.g. images smaller than the SSIM window
        ssim_value = None
    return psnr_value, ssim_value, described

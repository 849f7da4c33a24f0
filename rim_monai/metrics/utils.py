"""Input checks, border shaving and data-range protocols shared by the image-quality metrics."""

from __future__ import annotations

import torch

__all__ = ["PROTOCOLS", "REDUCTIONS", "check_pair", "shave_border", "data_range_for", "has_data_range", "reduce"]

#: How the data range :math:`R` of PSNR and SSIM is chosen (``data_range=`` overrides all of them):
#: ``"per_image"`` — :math:`\max - \min` of each reference sample (the CT protocol);
#: ``"volume"`` — :math:`\max` of each reference volume (the fastMRI protocol);
#: ``"8bit"`` — 255, for images on the 8-bit scale [0, 255] (natural-image denoising and super-resolution).
PROTOCOLS = ("per_image", "volume", "8bit")
REDUCTIONS = ("mean", "none")


def check_pair(pred: torch.Tensor, target: torch.Tensor, allow_complex: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a prediction/reference pair and return both as ``(B, ...)`` float64 (complex128) tensors.

    A 2D pair is one image (``B = 1``); otherwise dimension 0 indexes the samples (images or volumes).

    Raises:
        ValueError: naming ``pred`` or ``target`` for a non-tensor, a shape mismatch, fewer than 2 dimensions, a
            non-floating dtype, a complex tensor where only real ones make sense, or NaN/Inf values.
    """
    for name, value in (("pred", pred), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}.")
        if value.ndim < 2:
            raise ValueError(f"{name}: expected at least 2 dimensions (H, W) or (B, ..., H, W), got {tuple(value.shape)}.")
        if value.dtype.is_complex and not allow_complex:
            raise ValueError(
                f"{name}: expected a real tensor, got dtype {value.dtype}; score magnitude images (pass x.abs(), "
                f"as the fastMRI protocol does) or use nmse, which accepts complex images."
            )
        if not (value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.uint8):
            raise ValueError(f"{name}: expected a floating-point (or uint8) tensor, got dtype {value.dtype}.")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: contains NaN or Inf values.")
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"pred: expected the shape of target {tuple(target.shape)}, got {tuple(pred.shape)} "
            f"(pred and target must match)."
        )
    if pred.device != target.device:
        raise ValueError(f"pred: expected the device of target ({target.device}), got {pred.device}.")
    wide = torch.complex128 if (pred.dtype.is_complex or target.dtype.is_complex) else torch.float64
    pred, target = pred.to(wide), target.to(wide)
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    return pred, target


def shave_border(img: torch.Tensor, shave: int) -> torch.Tensor:
    """Crop ``shave`` pixels from every side of the last two dimensions (the SR evaluation protocol).

    Args:
        img: ``(..., H, W)``.
        shave: border width in pixels (``>= 0``; typically the SR scale factor).

    Returns:
        ``(..., H - 2 shave, W - 2 shave)`` (a view).

    Raises:
        ValueError: naming ``shave`` when negative or when nothing would remain.

    Example:
        >>> shave_border(torch.zeros(1, 1, 10, 12), 2).shape
        torch.Size([1, 1, 6, 8])
    """
    if isinstance(shave, bool) or not isinstance(shave, int) or shave < 0:
        raise ValueError(f"shave: expected a non-negative integer, got {shave!r}.")
    if shave == 0:
        return img
    if 2 * shave >= min(img.shape[-2:]):
        raise ValueError(f"shave: {shave} pixels from each side leaves nothing of an image of size {tuple(img.shape[-2:])}.")
    return img[..., shave:-shave, shave:-shave]


def data_range_for(
    target: torch.Tensor, protocol: str, data_range: float | torch.Tensor | None = None
) -> torch.Tensor:
    """The per-sample data range :math:`R`, shape ``(B,)``, for ``target`` of shape ``(B, ...)``.

    Args:
        target: the reference batch (already shaved if the protocol shaves).
        protocol: one of :data:`PROTOCOLS`.
        data_range: a number or a ``(B,)`` tensor that overrides the protocol.

    Raises:
        ValueError: naming ``protocol`` or ``data_range`` when invalid, or ``target`` when its range is zero.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}.")
    batch = target.shape[0]
    real = target.real.dtype if target.dtype.is_complex else target.dtype
    if data_range is not None:
        r = torch.as_tensor(data_range, dtype=real, device=target.device)
        if r.ndim > 1 or (r.ndim == 1 and r.shape[0] not in (1, batch)):
            raise ValueError(f"data_range: expected a number or a tensor of shape ({batch},), got shape {tuple(r.shape)}.")
        r = r.reshape(-1).expand(batch)
        if not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
            raise ValueError(f"data_range: expected positive finite values, got {data_range!r}.")
        return r
    if protocol == "8bit":
        return torch.full((batch,), 255.0, dtype=real, device=target.device)
    flat = target.abs().reshape(batch, -1) if target.dtype.is_complex else target.reshape(batch, -1)
    r = flat.amax(dim=1) if protocol == "volume" else flat.amax(dim=1) - flat.amin(dim=1)
    if bool((r <= 0).any()):
        what = "maximum" if protocol == "volume" else "max - min"
        raise ValueError(
            f"target: the {what} of a reference sample is {float(r.min())} under protocol {protocol!r}, so PSNR/SSIM "
            f"are undefined; pass data_range explicitly."
        )
    return r


def has_data_range(target: torch.Tensor, protocol: str) -> torch.Tensor:
    """Which reference samples have a positive data range under ``protocol``, a ``(B,)`` bool tensor.

    PSNR and SSIM are defined for these samples only (:func:`data_range_for` raises for the others): under
    ``"per_image"`` a constant sample (e.g. a background patch of zeros) has none, under ``"volume"`` an all-zero
    volume; under ``"8bit"`` every sample has the fixed range 255. Complex references are taken by magnitude.

    Raises:
        ValueError: naming ``protocol`` when it is not one of :data:`PROTOCOLS`.

    Example:
        >>> has_data_range(torch.stack([torch.zeros(4, 4), torch.eye(4)]), "per_image")
        tensor([False,  True])
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}.")
    flat = target.abs() if target.dtype.is_complex else target
    flat = flat.reshape(flat.shape[0], -1) if flat.ndim > 2 else flat.reshape(1, -1)
    if protocol == "8bit":
        return torch.ones(flat.shape[0], dtype=torch.bool, device=flat.device)
    low = 0.0 if protocol == "volume" else flat.amin(dim=1)
    return flat.amax(dim=1) - low > 0


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"mean"`` over the batch (a 0-dim tensor) or ``"none"`` (shape ``(B,)``)."""
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}.")

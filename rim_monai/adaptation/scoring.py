"""PSNR and SSIM of an adaptation's reconstructions against optional references, as its report states them."""

from __future__ import annotations

import torch

from rim_monai.data.fastmri import center_crop
from rim_monai.metrics import has_data_range, image_quality, magnitude

__all__ = ["reference_quality"]


def reference_quality(
    pred: torch.Tensor, ref: torch.Tensor, protocol: str = "per_image", name: str = "references"
) -> tuple[float | None, float | None, str]:
    """Mean PSNR (dB) and SSIM over the samples, and a sentence saying how they were computed.

    The numbers are :func:`rim_monai.metrics.image_quality` of the magnitudes (on the CPU, in float64) with the
    data-range ``protocol`` (``"per_image"``: max − min of each reference; ``"volume"``: max of each reference
    volume; 7x7 uniform SSIM window). SSIM is ``None`` where it is not defined (images smaller than the window).
    Reference samples without a data range (e.g. a background patch of zeros) have no PSNR: they are left out of the
    mean and the sentence says how many; with none left both values are ``None``. Under the fastMRI ``"volume"``
    protocol, reconstructions larger than the references in the last two dimensions (on the oversampled k-space grid,
    against a 320x320 ``reconstruction_rss``) are centre-cropped to them first, as fastMRI does; other protocols
    require equal shapes.

    Args:
        pred: reconstructions ``(N, ...)``.
        ref: references ``(N, ...)``.
        protocol: the data-range protocol.
        name: the argument named in errors.

    Raises:
        ValueError: naming ``name`` when the shapes do not match.
    """
    pred, ref = magnitude(pred), magnitude(ref)
    cropped = ""
    larger = pred.ndim >= 2 and pred.shape[:-2] == ref.shape[:-2] and pred.shape[-2:] != ref.shape[-2:]
    if protocol == "volume" and larger and all(p >= r for p, r in zip(pred.shape[-2:], ref.shape[-2:])):
        pred = center_crop(pred, ref.shape[-2:])
        cropped = f"; reconstructions centre-cropped to the references' {tuple(ref.shape[-2:])} (fastMRI)"
    if pred.shape != ref.shape:
        raise ValueError(f"{name}: expected the shape of the reconstructions {tuple(pred.shape)}, got {tuple(ref.shape)}.")
    pred, ref = pred.double().cpu(), ref.double().cpu()
    scored = has_data_range(ref, protocol)
    left_out = "" if bool(scored.all()) else f"; {int((~scored).sum())} reference sample(s) without a data range left out"
    left_out += cropped
    if not bool(scored.any()):
        return None, None, f"no reference sample has a data range under protocol {protocol!r}{left_out}"
    pred, ref = pred[scored], ref[scored]
    described = f"rim_monai.metrics psnr/ssim, protocol {protocol!r} (magnitude for complex images){left_out}"
    psnr_value = float(image_quality(pred, ref, protocol, ("psnr",))["psnr"])
    try:
        ssim_value: float | None = float(image_quality(pred, ref, protocol, ("ssim",))["ssim"])
    except ValueError:  # e.g. images smaller than the SSIM window
        ssim_value = None
    return psnr_value, ssim_value, described

"""Colour conversion for the super-resolution protocol: the luma (Y) channel of ITU-R BT.601."""

from __future__ import annotations

import torch

__all__ = ["rgb_to_y"]

# MATLAB rgb2ycbcr: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B on [0, 255]
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(img: torch.Tensor, channel_dim: int = -3, quantize: bool = False) -> torch.Tensor:
    r"""Luma of ITU-R BT.601 in studio swing, MATLAB ``rgb2ycbcr`` semantics, for RGB on [0, 255].

    .. math::
        Y = 16 + \frac{65.481\,R + 128.553\,G + 24.966\,B}{255} \in [16, 235].

    This is the channel SR papers score on (Huang et al. 2015 and the RIM paper), after shaving ``scale`` border
    pixels: ``psnr(rgb_to_y(sr), rgb_to_y(hr), protocol="8bit", shave=scale)``.

    Args:
        img: RGB images on [0, 255] (float or uint8) with the 3 colour channels in ``channel_dim``, e.g.
            ``(B, 3, H, W)``.
        channel_dim: the colour axis.
        quantize: round to the nearest integer (halves away from zero) as MATLAB does for ``uint8`` input; leave
            ``False`` for images that are floating point in MATLAB too.

    Returns:
        float tensor with ``channel_dim`` of size 1 (``(B, 1, H, W)``), float64 for uint8/float64 input, else the
        input's dtype.

    Raises:
        ValueError: naming ``img`` when it is not a real tensor with 3 channels in ``channel_dim``, or
            ``channel_dim`` when out of range.

    Example:
        >>> rgb_to_y(torch.tensor([255.0, 255.0, 255.0]).reshape(3, 1, 1)).flatten()  # white -> 235
        tensor([235.])
    """
    if not isinstance(img, torch.Tensor):
        raise ValueError(f"img: expected a torch.Tensor, got {type(img).__name__}.")
    if img.dtype.is_complex or not (img.dtype.is_floating_point or img.dtype == torch.uint8):
        raise ValueError(f"img: expected a real floating-point or uint8 tensor, got dtype {img.dtype}.")
    if not -img.ndim <= channel_dim < img.ndim:
        raise ValueError(f"channel_dim: {channel_dim} is out of range for a tensor of shape {tuple(img.shape)}.")
    if img.shape[channel_dim] != 3:
        raise ValueError(
            f"img: expected 3 (RGB) channels in dimension {channel_dim}, got shape {tuple(img.shape)}."
        )
    x = img.to(torch.float64) if img.dtype in (torch.uint8, torch.float64) else img
    weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64).to(dtype=x.dtype, device=x.device) / 255.0
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    y = 16.0 + (x * weights.reshape(shape)).sum(dim=channel_dim, keepdim=True)
    if quantize:
        y = torch.floor(y + 0.5)
    return y

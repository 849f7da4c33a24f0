"""FBPConvNet (Jin, McCann, Froustey & Unser 2017): a U-Net that cleans the FBP / zero-filled image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import UNet

from rim_monai.networks.base import ReconstructionNetwork
from rim_monai.networks.utils import from_channels, initial_estimate, to_channels
from rim_monai.operators.base import LinearOperator

__all__ = ["FBPConvNet"]


class FBPConvNet(ReconstructionNetwork):
    r"""Post-processing network: :math:`\hat x = x_0 + U_\theta(x_0)` with :math:`x_0` the classical reconstruction.

    :math:`x_0` is ``A.fbp(y)`` when the operator supports ``"fbp"`` (CT), else
    :math:`A^H y / \|A\|^2` (the zero-filled image for MRI, the noisy image for denoising). :math:`U_\theta` is a
    MONAI :class:`~monai.networks.nets.UNet` (batch norm, ReLU, as in Jin et al.); the image is zero-padded to a
    multiple of the total stride and cropped back, so any size works.

    Args:
        in_channels: image channels ``C``.
        complex_: complex images (the U-Net sees ``2C`` real channels).
        channels: U-Net widths per level (Jin et al.: ``(64, 128, 256, 512, 1024)``).
        strides: U-Net strides between levels (one fewer than ``channels``).
        num_res_units: residual units per U-Net block (0 = plain convolutions).
        norm: U-Net normalisation (MONAI name).
        act: U-Net activation (MONAI name).

    Shapes:
        ``y``: ``(B, ..., *A.range_shape)``; returns images shaped like ``A.adjoint(y)``; ``return_all=True`` gives
        the one-element list ``[x_hat]`` (the network is not iterative).

    Example:
        >>> from rim_monai.operators import Identity
        >>> post = FBPConvNet(channels=(4, 8), strides=(2,))       # any image size: 9 is padded to 10 and cropped
        >>> post(torch.rand(1, 1, 9, 9), Identity((9, 9))).shape
        torch.Size([1, 1, 9, 9])
    """

    def __init__(
        self,
        in_channels: int = 1,
        complex_: bool = False,
        channels: Sequence[int] = (64, 128, 256, 512, 1024),
        strides: Sequence[int] = (2, 2, 2, 2),
        num_res_units: int = 0,
        norm: str = "batch",
        act: str = "relu",
    ) -> None:
        super().__init__(in_channels, complex_)
        if len(strides) != len(channels) - 1:
            raise ValueError(f"strides: expected {len(channels) - 1} strides for channels={tuple(channels)}, got {tuple(strides)}.")
        c = self.real_channels
        self.multiple = int(math.prod(int(s) for s in strides))
        self.unet = UNet(
            spatial_dims=2,
            in_channels=c,
            out_channels=c,
            channels=tuple(channels),
            strides=tuple(strides),
            num_res_units=num_res_units,
            norm=norm,
            act=act,
        )

    def forward(self, y: torch.Tensor, A: LinearOperator, return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Reconstruct: ``x0 = fbp(y)``, ``x = x0 + unet(x0)``.

        Raises:
            ValueError: bad ``y`` or ``A``.
        """
        adjoint = self.check(y, A)
        x0 = to_channels(initial_estimate(y, A, "fbp", adjoint))
        h, w = x0.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        padded = F.pad(x0, (0, pw, 0, ph)) if ph or pw else x0
        out = x0 + self.unet(padded)[..., :h, :w]
        out = from_channels(out, self.complex_)
        return [out] if return_all else out

"""Building blocks of the reconstruction networks: a convolutional GRU cell and small convolutional stacks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["BoundaryConv2d", "ConvGRUCell", "ConvStack", "circular_pad", "same_padding", "PADDING_MODES"]

#: boundary conditions of the "same"-padded convolutions (``torch.nn.Conv2d``'s ``padding_mode``): ``"circular"``
#: matches the periodic image of a discrete Fourier transform, so Cartesian MRI aliasing that wraps across the field
#: of view is seen next to its source
PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Zero padding that keeps the spatial size of a stride-1 convolution with an odd kernel."""
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size: expected an odd size, got {kernel_size}.")
    return dilation * (kernel_size - 1) // 2


class _CircularPad(torch.autograd.Function):
    """Periodic padding by concatenation; the backward folds the halo's gradient back onto the opposite edges (the
    default backward of the slices would add four full-size zero-filled gradients per padding)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:  # type: ignore[override]
        ctx.pads = (pad_h, pad_w)
        if pad_h:
            x = torch.cat([x[..., -pad_h:, :], x, x[..., :pad_h, :]], dim=-2)
        if pad_w:
            x = torch.cat([x[..., -pad_w:], x, x[..., :pad_w]], dim=-1)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        pad_h, pad_w = ctx.pads
        if pad_w:
            width = grad.shape[-1] - 2 * pad_w
            folded = grad[..., pad_w:pad_w + width].clone()
            folded[..., -pad_w:] += grad[..., :pad_w]
            folded[..., :pad_w] += grad[..., pad_w + width:]
            grad = folded
        if pad_h:
            height = grad.shape[-2] - 2 * pad_h
            folded = grad[..., pad_h:pad_h + height, :].clone()
            folded[..., -pad_h:, :] += grad[..., :pad_h, :]
            folded[..., :pad_h, :] += grad[..., pad_h + height:, :]
            grad = folded
        return grad, None, None


def circular_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Periodic padding of the last two axes by concatenation, ``(..., H, W) -> (..., H + 2 pad_h, W + 2 pad_w)``.

    The same numbers and gradients as ``F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="circular")``, but the result keeps
    a ``channels_last`` input's memory format (``F.pad`` returns a contiguous tensor, and the convolution after it then
    runs about 2x slower on CPU), and the backward folds only the halo back (``pad_h, pad_w <= H, W``).
    """
    return _CircularPad.apply(x, int(pad_h), int(pad_w))


class BoundaryConv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` whose non-zero ``padding_mode`` keeps the input's memory format (circular padding by
    :func:`circular_pad`); the parameters and the function are those of ``nn.Conv2d``, so state dicts load both ways.

    Raises:
        ValueError: naming ``padding_mode`` when it is not one of :data:`PADDING_MODES`.
    """

    def __init__(self, *args, padding_mode: str = "zeros", **kwargs) -> None:
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {padding_mode!r}.")
        super().__init__(*args, padding_mode=padding_mode, **kwargs)

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode == "zeros":
            return super()._conv_forward(input, weight, bias)
        pad_w, _, pad_h, _ = self._reversed_padding_repeated_twice  # odd kernels: symmetric
        if self.padding_mode == "circular":
            padded = circular_pad(input, pad_h, pad_w)
        else:
            padded = F.pad(input, (pad_w, pad_w, pad_h, pad_h), mode=self.padding_mode)
            if input.is_contiguous(memory_format=torch.channels_last):
                padded = padded.contiguous(memory_format=torch.channels_last)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)


class ConvGRUCell(nn.Module):
    r"""A convolutional gated recurrent unit (Chung et al. 2014, with convolutions in place of matrix products).

    .. math::
        r &= \sigma(W_r * u + U_r * s + b_r), \qquad z = \sigma(W_z * u + U_z * s + b_z) \\
        n &= \tanh(W_n * u + r \odot (U_n * s) + b_n), \qquad s' = (1 - z) \odot n + z \odot s

    Args:
        input_channels: channels of the input ``u``.
        hidden_channels: channels of the state ``s``.
        kernel_size: odd convolution size.
        dilation: dilation of both convolutions (same padding).
        padding_mode: boundary condition of both convolutions, one of :data:`PADDING_MODES`.

    Shapes:
        ``u``: ``(B, input_channels, H, W)``, ``s``: ``(B, hidden_channels, H, W)`` or ``None`` (zeros: then
        :math:`s' = (1 - z) \odot \tanh(W_n * u + b_n)` without evaluating :math:`U * 0`); returns the new state,
        ``(B, hidden_channels, H, W)``.

    Example:
        >>> cell = ConvGRUCell(4, 8)
        >>> cell(torch.randn(2, 4, 6, 6), None).shape
        torch.Size([2, 8, 6, 6])
    """

    def __init__(
        self, input_channels: int, hidden_channels: int, kernel_size: int = 3, dilation: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        pad = same_padding(kernel_size, dilation)
        self.hidden_channels = int(hidden_channels)
        self.input_conv = BoundaryConv2d(input_channels, 3 * hidden_channels, kernel_size, padding=pad,
                                         dilation=dilation, padding_mode=padding_mode)
        self.hidden_conv = BoundaryConv2d(hidden_channels, 3 * hidden_channels, kernel_size, padding=pad,
                                          dilation=dilation, bias=False, padding_mode=padding_mode)

    def forward(self, u: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        xr, xz, xn = self.input_conv(u).chunk(3, dim=1)
        if s is None:
            # a zero state: U * 0 = 0 (the hidden convolution has no bias), so skip that convolution
            z = torch.sigmoid(xz)
            return (1 - z) * torch.tanh(xn)
        hr, hz, hn = self.hidden_conv(s).chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * s


class ConvStack(nn.Sequential):
    """``len(features)`` 3x3 convolutions with PReLU between them and none after the last (a residual-update CNN).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        features: widths of the hidden layers, e.g. ``(32, 32)`` gives the three-convolution blocks of learned
            primal-dual (in -> 32 -> 32 -> out).
        kernel_size: odd convolution size.
        zero_last: initialise the last convolution with zeros, so the block starts as the zero update.

    Example:
        >>> ConvStack(6, 5, (32, 32))(torch.randn(1, 6, 8, 8)).shape
        torch.Size([1, 5, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features: Sequence[int] = (32, 32),
        kernel_size: int = 3,
        zero_last: bool = False,
    ) -> None:
        layers: list[nn.Module] = []
        pad = same_padding(kernel_size)
        width = in_channels
        for f in features:
            layers += [nn.Conv2d(width, f, kernel_size, padding=pad), nn.PReLU()]
            width = f
        last = nn.Conv2d(width, out_channels, kernel_size, padding=pad)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)

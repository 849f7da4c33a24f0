r"""Centred orthonormal 2D Fourier transforms and the (multi-coil) undersampled MRI forward model.

Conventions follow fastMRI: images and k-space are stored with the zero frequency / image centre in the middle of
the array, the transform acts on the last two dimensions, and it is unitary (``norm="ortho"``), so
``ifft2c(fft2c(x)) == x`` and :math:`\|F x\| = \|x\|`.

The forward model of parallel MRI is

.. math::
    y_c = M \odot P_d \odot F(S_c\, x), \qquad c = 1, \dots, C,

with the sampling mask :math:`M`, an optional k-space phase ramp :math:`P_d` (a sub-pixel image shift by
:math:`d = (d_y, d_x)`), the centred unitary DFT :math:`F` and the coil sensitivities :math:`S_c`; its adjoint is
:math:`x = \sum_c \bar S_c\, F^H(\bar P_d \odot M \odot y_c)`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch

from rim_monai.operators.base import LinearOperator, all_finite

__all__ = [
    "fft2c",
    "ifft2c",
    "MaskedFourier",
    "complex_to_channels",
    "channels_to_complex",
    "rss",
    "coil_combine",
]

_DIMS = (-2, -1)
# relative weight of the random part of MaskedFourier's power-iteration start
_POWER_START_NOISE = 0.01


@functools.lru_cache(maxsize=16)
def _checkerboard_tensors(height: int, width: int, dtype: torch.dtype,
                          device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, s * c)`` with ``c[i, j] = (-1)**(i + j)`` and ``s = (-1)**(height/2 + width/2)``, complex ``dtype``."""
    parity = (torch.arange(height)[:, None] + torch.arange(width)[None, :]) % 2
    inner = (1 - 2 * parity).to(dtype=dtype, device=device)
    sign = -1 if (height // 2 + width // 2) % 2 else 1
    return inner, inner * sign


def _checkerboard(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    r"""The modulations that make a plain DFT centred, or ``None`` (odd sizes, real input: use the shifts).

    For even :math:`N`, ``ifftshift`` of the input multiplies the DFT by :math:`(-1)^k` and ``fftshift`` of the
    output equals the DFT of the input modulated by :math:`(-1)^n` times :math:`(-1)^{k - N/2}`; together
    :math:`\mathrm{fftshift}(\mathrm{DFT}(\mathrm{ifftshift}(x)))_k = (-1)^{N/2} (-1)^k \mathrm{DFT}((-1)^n x)_k`,
    and the same holds for the inverse DFT.
    """
    if not x.is_complex() or x.ndim < 2 or x.shape[-2] % 2 or x.shape[-1] % 2:
        return None
    return _checkerboard_tensors(int(x.shape[-2]), int(x.shape[-1]), x.dtype, x.device)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    r"""Centred unitary 2D DFT over the last two dimensions: ``fftshift(fft2(ifftshift(x), norm="ortho"))``.

    For complex input with even ``H`` and ``W`` the shifts are replaced by the equivalent checkerboard modulation
    :math:`\hat x_k = (-1)^{H/2 + W/2} (-1)^{k_y + k_x}\, \mathrm{DFT}\big((-1)^{n_y + n_x} x_n\big)_k` (two
    multiplications by :math:`\pm 1` instead of four ``torch.roll`` copies; same numbers to float rounding).

    Args:
        x: complex tensor ``(..., H, W)`` with the image centre at index ``(H // 2, W // 2)``.

    Returns:
        k-space ``(..., H, W)`` with the zero frequency at ``(H // 2, W // 2)``.

    Example:
        >>> x = torch.zeros(4, 4, dtype=torch.complex64); x[2, 2] = 1
        >>> torch.allclose(fft2c(x), torch.full((4, 4), 0.25, dtype=torch.complex64))
        True
    """
    return _centred(torch.fft.fft2, x)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    r"""Centred unitary inverse 2D DFT over the last two dimensions, the inverse (and adjoint) of :func:`fft2c`.

    ``fftshift(ifft2(ifftshift(k), norm="ortho"))``, with the same checkerboard form as :func:`fft2c` for complex
    input of even size.

    Args:
        k: complex tensor ``(..., H, W)`` with the zero frequency at ``(H // 2, W // 2)``.

    Returns:
        the image ``(..., H, W)``.
    """
    return _centred(torch.fft.ifft2, k)


def _centred(transform, x: torch.Tensor) -> torch.Tensor:
    """``fftshift(transform(ifftshift(x)))`` of an orthonormal 2D ``transform`` over the last two dimensions, by the
    checkerboard modulations where :func:`_checkerboard` provides them (no shifted copies)."""
    modulation = _checkerboard(x)
    if modulation is not None:
        inner, outer = modulation
        return transform(x * inner, dim=_DIMS, norm="ortho").mul_(outer)
    return torch.fft.fftshift(transform(torch.fft.ifftshift(x, dim=_DIMS), dim=_DIMS, norm="ortho"), dim=_DIMS)


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """Split a complex image batch into real channels: ``(B, C, H, W)`` complex -> ``(B, 2C, H, W)`` real.

    Channel ``2c`` holds the real part and channel ``2c + 1`` the imaginary part of input channel ``c``.

    Raises:
        ValueError: if ``x`` is not a complex tensor with at least 3 dimensions.

    Example:
        >>> complex_to_channels(torch.ones(2, 3, 8, 8, dtype=torch.complex64)).shape
        torch.Size([2, 6, 8, 8])
    """
    if not isinstance(x, torch.Tensor) or not x.is_complex() or x.ndim < 3:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a complex tensor (B, C, H, W), got {got}.")
    parts = torch.view_as_real(x)  # (..., C, H, W, 2)
    parts = parts.movedim(-1, -3)  # (..., C, 2, H, W)
    return parts.reshape(*x.shape[:-3], 2 * x.shape[-3], *x.shape[-2:])


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`complex_to_channels`: ``(B, 2C, H, W)`` real -> ``(B, C, H, W)`` complex.

    Raises:
        ValueError: if ``x`` is not real or its channel count is odd.
    """
    if not isinstance(x, torch.Tensor) or x.is_complex() or not x.is_floating_point() or x.ndim < 3:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a real floating tensor (B, 2C, H, W), got {got}.")
    if x.shape[-3] % 2:
        raise ValueError(f"x: expected an even number of channels (real/imaginary pairs), got {x.shape[-3]}.")
    parts = x.reshape(*x.shape[:-3], x.shape[-3] // 2, 2, *x.shape[-2:]).movedim(-3, -1)
    return torch.view_as_complex(parts.contiguous())


def rss(coil_images: torch.Tensor, dim: int = 1, keepdim: bool = False) -> torch.Tensor:
    r"""Root sum of squares over the coil dimension, :math:`\sqrt{\sum_c |x_c|^2}` (real output).

    Example:
        >>> rss(torch.ones(1, 4, 2, 2, dtype=torch.complex64))[0, 0, 0]
        tensor(2.)
    """
    return torch.sqrt((coil_images.abs() ** 2).sum(dim=dim, keepdim=keepdim))


def coil_combine(coil_images: torch.Tensor, sens: torch.Tensor, dim: int = 1) -> torch.Tensor:
    r"""Sensitivity-weighted coil combination :math:`\sum_c \bar S_c x_c`, keeping a singleton coil dimension.

    Args:
        coil_images: complex ``(B, C, H, W)``.
        sens: complex sensitivities broadcastable to ``coil_images`` (``(B, C, H, W)`` or ``(C, H, W)``).
        dim: the coil dimension.

    Returns:
        complex ``(B, 1, H, W)``.
    """
    return (sens.conj() * coil_images).sum(dim=dim, keepdim=True)


def _centred_frequencies(n: int) -> torch.Tensor:
    """Integer frequencies of a centred (fftshifted) DFT of length ``n``: ``arange(n) - n // 2``."""
    return torch.arange(n, dtype=torch.float64) - n // 2


class MaskedFourier(LinearOperator):
    r"""Undersampled Cartesian MRI, single- or multi-coil: :math:`y_c = M \odot P_d \odot F(S_c x)`.

    The adjoint is :math:`A^H y = \sum_c \bar S_c F^H(\bar P_d \odot M \odot y_c)`; :math:`F` is :func:`fft2c`,
    :math:`P_d(k) = \exp(-2\pi i (k_y d_y / H + k_x d_x / W))` shifts the image by :math:`d` pixels (a circular,
    band-limited shift: integer shifts equal ``torch.roll``). Measurements are zero off the mask.

    Shapes:
        - single coil (``sens=None``): ``domain_shape = range_shape = (H, W)``, any leading dimensions, e.g.
          ``x (B, 1, H, W) -> y (B, 1, H, W)``.
        - multi-coil: ``domain_shape = (1, H, W)``, ``range_shape = (C, H, W)``: ``x (B, 1, H, W) -> y (B, C, H, W)``.
          With per-sample ``sens (B, C, H, W)`` the batch dimension of ``x`` must be ``B`` (or 1).

    Args:
        mask: real (or bool) sampling mask: ``(H, W)``, broadcastable ``(1, W)`` / ``(H, 1)`` (then give ``shape``
            or ``sens``), or per-sample ``(B, 1, H, W)`` (``(B, C, H, W)`` for per-coil masks). Any real weights are
            allowed; 0/1 masks give the usual model.
        sens: complex coil sensitivities ``(C, H, W)`` or per-sample ``(B, C, H, W)``; ``None`` for single coil.
        shift: optional image shift ``(dy, dx)`` in pixels, shape ``(2,)`` or per-sample ``(B, 2)``.
        shape: the image shape ``(H, W)`` when neither ``mask`` nor ``sens`` fixes it.
        learnable_shift: make ``shift`` an ``nn.Parameter`` (initialised to ``shift`` or zeros); gradients then
            reach it through native autograd (used for model adaptation).

    Raises:
        ValueError: naming ``mask``, ``sens``, ``shift`` or ``shape`` when shapes or dtypes do not fit.

    Example:
        >>> from rim_monai.operators import random_mask
        >>> mask = random_mask((64, 64), acceleration=4, center_fraction=0.08, seed=0)
        >>> sens = torch.ones(4, 64, 64, dtype=torch.complex64) / 2
        >>> M = MaskedFourier(mask, sens)
        >>> M(torch.randn(3, 1, 64, 64, dtype=torch.complex64)).shape
        torch.Size([3, 4, 64, 64])
        >>> M8 = M.replace(sens=torch.ones(8, 64, 64, dtype=torch.complex64) / 8**0.5)   # same mask, 8 coils
    """

    abilities = frozenset({"replace"})
    PARAMETERS = ("mask", "sens", "shift", "shape", "learnable_shift")

    def __init__(
        self,
        mask: torch.Tensor,
        sens: torch.Tensor | None = None,
        shift: Sequence[float] | torch.Tensor | None = None,
        shape: Sequence[int] | None = None,
        learnable_shift: bool = False,
    ) -> None:
        super().__init__()
        mask = self._check_mask(mask)
        if sens is not None:
            if not isinstance(sens, torch.Tensor) or not sens.is_complex() or sens.ndim not in (3, 4):
                got = f"{tuple(sens.shape)} {sens.dtype}" if isinstance(sens, torch.Tensor) else type(sens).__name__
                raise ValueError(f"sens: expected a complex tensor (C, H, W) or (B, C, H, W), got {got}.")
            if not all_finite(sens):
                raise ValueError("sens: contains NaN or Inf values.")
        spatial = self._spatial_shape(mask, sens, shape)
        for axis, (m, n) in enumerate(zip(mask.shape[-2:], spatial)):
            if m not in (1, n):
                raise ValueError(
                    f"mask: dimension {mask.ndim - 2 + axis} has size {m}, expected 1 or {n} to match the image "
                    f"shape {tuple(spatial)}" + (" of sens." if sens is not None else ".")
                )
        if sens is not None:
            if tuple(sens.shape[-2:]) != spatial:
                raise ValueError(f"sens: expected spatial shape {spatial}, got {tuple(sens.shape[-2:])}.")
            coils = sens.shape[-3]
            if mask.ndim == 4:
                if mask.shape[1] not in (1, coils):
                    raise ValueError(f"mask: expected 1 or {coils} (the coils of sens) in dimension 1, got {mask.shape[1]}.")
                if sens.ndim == 4 and mask.shape[0] not in (1, sens.shape[0]) and sens.shape[0] != 1:
                    raise ValueError(
                        f"mask: batch size {mask.shape[0]} does not match the batch size {sens.shape[0]} of sens "
                        f"(expected equal sizes or 1)."
                    )
            self.register_buffer("sens", sens.detach().clone())
            self.domain_shape = (1, *spatial)
            self.range_shape = (coils, *spatial)
        else:
            if mask.ndim == 4 and mask.shape[1] != 1:
                raise ValueError(f"mask: expected 1 in dimension 1 for single-coil data, got {tuple(mask.shape)}.")
            self.register_buffer("sens", None)
            self.domain_shape = self.range_shape = spatial
        self.register_buffer("mask", mask)
        self.domain_is_complex = self.range_is_complex = True
        self.register_buffer("freq_y", _centred_frequencies(spatial[0]) / spatial[0], persistent=False)
        self.register_buffer("freq_x", _centred_frequencies(spatial[1]) / spatial[1], persistent=False)
        self._set_shift(shift, learnable_shift)

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _check_mask(mask: torch.Tensor) -> torch.Tensor:
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"mask: expected a torch.Tensor, got {type(mask).__name__}.")
        if mask.is_complex():
            raise ValueError(f"mask: expected a real or bool tensor, got dtype {mask.dtype}.")
        if mask.ndim not in (2, 4):
            raise ValueError(
                f"mask: expected shape (H, W), a broadcastable (1, W) / (H, 1), or per-sample (B, 1, H, W); "
                f"got {tuple(mask.shape)}."
            )
        mask = mask.detach().to(torch.float64 if mask.dtype == torch.float64 else torch.float32).clone()
        if not all_finite(mask):
            raise ValueError("mask: contains NaN or Inf values.")
        return mask

    @staticmethod
    def _spatial_shape(mask: torch.Tensor, sens: torch.Tensor | None, shape: Sequence[int] | None) -> tuple[int, int]:
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            if len(shape) != 2 or min(shape) < 1:
                raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape}.")
            if sens is not None and tuple(sens.shape[-2:]) != shape:
                raise ValueError(f"sens: expected spatial shape {shape} (from shape), got {tuple(sens.shape[-2:])}.")
            return shape  # type: ignore[return-value]
        if sens is not None:
            return (int(sens.shape[-2]), int(sens.shape[-1]))
        if mask.shape[-2] == 1 or mask.shape[-1] == 1:
            # a broadcastable mask cannot tell the image size on its own
            raise ValueError(
                f"mask: shape {tuple(mask.shape)} is broadcastable and does not fix the image size; "
                f"pass shape=(H, W) or sens."
            )
        return (int(mask.shape[-2]), int(mask.shape[-1]))

    def _set_shift(self, shift: Sequence[float] | torch.Tensor | None, learnable: bool) -> None:
        if shift is None:
            value = torch.zeros(2, dtype=torch.float32) if learnable else None
        else:
            value = torch.as_tensor(shift).detach().clone()
            if value.is_complex() or not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
                raise ValueError(f"shift: expected real numbers (dy, dx), got dtype {value.dtype}.")
            if value.ndim not in (1, 2) or value.shape[-1] != 2:
                raise ValueError(f"shift: expected shape (2,) or (B, 2), got {tuple(value.shape)}.")
            value = value.to(torch.float64 if value.dtype == torch.float64 else torch.float32)
        if value is not None and value.ndim == 2 and value.shape[0] != 1:
            batch = value.shape[0]
            for name, other in (("mask", self.mask), ("sens", self.sens)):
                if other is not None and other.ndim == 4 and other.shape[0] not in (1, batch):
                    raise ValueError(
                        f"shift: batch size {batch} does not match the batch size {other.shape[0]} of {name}."
                    )
        if learnable:
            self.shift = torch.nn.Parameter(value)
            self.native_autograd = True
        elif value is None:
            self.register_buffer("shift", None)
        else:
            self.register_buffer("shift", value)

    def params(self) -> dict[str, Any]:
        """``{"mask", "sens", "shift", "shape", "learnable_shift"}``: the arguments that rebuild this operator, with the
        current value of a learnable shift (so ``replace(sens=...)`` keeps an estimated shift)."""
        shift = None if self.shift is None else self.shift.detach().clone()
        return {"mask": self.mask, "sens": self.sens, "shift": shift, "shape": tuple(self.range_shape[-2:]),
                "learnable_shift": isinstance(self.shift, torch.nn.Parameter)}

    # ------------------------------------------------------------------ operator
    def _weights(self, dtype: torch.dtype) -> torch.Tensor:
        """``M * P_d`` (complex, broadcastable to the k-space) or the real mask when there is no shift."""
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        mask = self.mask.to(real)
        if self.shift is None:
            return mask
        shift = self.shift.to(real)
        dy, dx = shift[..., 0, None, None], shift[..., 1, None, None]
        phase = -2 * math.pi * (dy * self.freq_y.to(real)[:, None] + dx * self.freq_x.to(real)[None, :])
        ramp = torch.polar(torch.ones_like(phase), phase)
        if shift.ndim == 2:  # per-sample shift (B, 2) -> (B, 1, H, W)
            ramp = ramp[:, None]
        return mask * ramp

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        if self.sens is not None:
            x = x * self.sens.to(x.dtype)
        return self._weights(x.dtype) * fft2c(x)

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        x = ifft2c(self._weights(y.dtype).conj() * y)
        if self.sens is None:
            return x
        return (self.sens.to(y.dtype).conj() * x).sum(dim=-3, keepdim=True)

    def _power_start(self, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
        """Where every mask samples the 3 x 3 k-space centre (calibration masks do), a constant image with 1 % random
        noise: its spectrum is that centre, near the top singular vectors, so :meth:`opnorm`'s power iteration
        settles in about 5 iterations instead of running into its cap of 50 from noise alone (320² slice, 8 coils,
        4x: 0.99996 after 5 iterations against 0.99927 after 50). Other masks keep the random start."""
        noise = super()._power_start(dtype, generator)
        height, width = self.range_shape[-2:]
        mask = torch.broadcast_to(self.mask, tuple(self.mask.shape[:-2]) + (height, width))
        centre = mask[..., height // 2 - 1 : height // 2 + 2, width // 2 - 1 : width // 2 + 2]
        if not bool((centre != 0).all()):
            return noise
        flat = torch.ones(self.domain_shape, dtype=dtype)
        return flat / torch.linalg.vector_norm(flat) + _POWER_START_NOISE * noise / torch.linalg.vector_norm(noise)

    def extra_repr(self) -> str:
        coils = "single-coil" if self.sens is None else f"coils={self.range_shape[0]}"
        return f"{coils}, shape={tuple(self.range_shape[-2:])}, mask={tuple(self.mask.shape)}, shift={self.shift is not None}"

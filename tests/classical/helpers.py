"""Small generic operators and phantoms for the classical-solver tests (no tomography module needed), and noisy
multi-coil k-space for the noise estimators and the networks that use them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rim_monai.operators import MaskedFourier, birdcage_maps
from rim_monai.operators.base import LinearOperator

__all__ = ["DenseMatrix", "Convolution", "random_tensor", "squares_phantom", "noisy_kspace"]


class DenseMatrix(LinearOperator):
    """``y = M x`` for a dense ``(m, n)`` matrix, over any leading dimensions (real or complex)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("matrix", matrix)
        self.domain_shape = (matrix.shape[1],)
        self.range_shape = (matrix.shape[0],)
        self.domain_is_complex = self.range_is_complex = matrix.dtype.is_complex

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.matrix.dtype) @ self.matrix.transpose(0, 1)

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return y.to(self.matrix.dtype) @ self.matrix.conj()


class Convolution(LinearOperator):
    """Zero-padded 'same' 2D convolution with an odd kernel, ``(*lead, H, W) -> (*lead, H, W)``, real."""

    def __init__(self, shape: tuple[int, int], kernel: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("kernel", kernel[None, None])
        self.domain_shape = self.range_shape = tuple(shape)
        self.pad = kernel.shape[-1] // 2

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, 1, *self.domain_shape)
        return F.conv2d(flat, self.kernel.to(x.dtype), padding=self.pad).reshape(x.shape)

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        flat = y.reshape(-1, 1, *self.range_shape)
        return F.conv_transpose2d(flat, self.kernel.to(y.dtype), padding=self.pad).reshape(y.shape)


def random_tensor(shape, complex_: bool = False, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype)
    if complex_:
        x = torch.complex(x, torch.randn(shape, generator=g, dtype=dtype))
    return x


def squares_phantom(n: int = 32, dtype=torch.float32) -> torch.Tensor:
    """A piecewise-constant test image ``(n, n)`` in [0, 1]: two overlapping rectangles and a disc."""
    img = torch.zeros(n, n, dtype=dtype)
    img[n // 8 : n // 2, n // 8 : 3 * n // 4] = 0.5
    img[n // 3 : 7 * n // 8, n // 2 : 7 * n // 8] = 1.0
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    img[((yy - 0.7 * n) ** 2 + (xx - 0.3 * n) ** 2) < (0.15 * n) ** 2] = 0.75
    return img


def noisy_kspace(mask: torch.Tensor, sigma: float, n: int = 128, coils: int = 4, seed: int = 0):
    """``(y, A)``: k-space ``(1, coils, n, n)`` of :func:`squares_phantom` with background around it, birdcage maps,
    and complex Gaussian noise with :math:`E|n|^2 = \\sigma^2` on the entries of ``mask`` ``(n, n)``."""
    g = torch.Generator().manual_seed(seed)
    image = torch.zeros(n, n)
    image[n // 6 : 5 * n // 6, n // 6 : 5 * n // 6] = squares_phantom(2 * n // 3)  # background around the object
    A = MaskedFourier(mask, birdcage_maps(coils, (n, n)))
    k = A(image.to(torch.complex64)[None, None])
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)) * sigma / math.sqrt(2)
    return k + noise * (mask != 0), A

r"""Image-domain forward models of the RIM paper: denoising, deblurring, super-resolution, random projections.

- :class:`Identity`: :math:`A x = x` (denoising).
- :class:`Downsample`: MATLAB ``imresize(x, 1/s, 'bicubic')`` with antialiasing, as two 1D matrices applied
  separably, :math:`A x = R_H\, x\, R_W^T` (super-resolution).
- :class:`Blur`: convolution with a kernel, circular or zero boundary (deblurring); adjoint = correlation.
- :class:`RandomProjection`: :math:`y = \Phi\, \mathrm{vec}(x)` with a Gaussian, Bernoulli or partial-Fourier
  matrix (the RIM paper's multi-task random projections, Sec. 4.4).

All adjoints are exact (transposes of the same matrices / the correlation matching the convolution), and all four
have the ``"replace"`` ability: ``A.replace(**changes)`` rebuilds them with some constructor arguments changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rim_monai.operators.base import LinearOperator

__all__ = [
    "Identity",
    "Downsample",
    "imresize_matrix",
    "Blur",
    "gaussian_kernel",
    "RandomProjection",
]


class Identity(LinearOperator):
    r"""The identity :math:`A x = x` (denoising: :math:`y = x + n`).

    Args:
        shape: the image shape ``(H, W)`` (trailing dimensions; leading batch/channel dimensions are free).
        complex_: whether the images are complex.

    Example:
        >>> A = Identity((32, 32))
        >>> A(torch.ones(4, 3, 32, 32)).shape
        torch.Size([4, 3, 32, 32])
    """

    abilities = frozenset({"replace"})
    PARAMETERS = ("shape", "complex_")

    def __init__(self, shape: Sequence[int], complex_: bool = False) -> None:
        super().__init__()
        self.domain_shape = self.range_shape = tuple(int(s) for s in shape)
        self.domain_is_complex = self.range_is_complex = bool(complex_)

    def params(self) -> dict[str, Any]:
        """``{"shape", "complex_"}``: the arguments that rebuild this operator."""
        return {"shape": self.domain_shape, "complex_": self.domain_is_complex}

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return y.clone()


# ---------------------------------------------------------------------------------------------- super-resolution
def _cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (the one MATLAB's ``imresize`` uses)."""
    t = np.abs(t)
    near = (1.5 * t**3 - 2.5 * t**2 + 1) * (t <= 1)
    far = (-0.5 * t**3 + 2.5 * t**2 - 4 * t + 2) * ((t > 1) & (t <= 2))
    return near + far


def imresize_matrix(length: int, factor: int, antialias: bool = True) -> torch.Tensor:
    r"""The 1D matrix of MATLAB ``imresize(., 1/factor, 'bicubic')`` along one dimension, float64.

    Output sample :math:`i = 1..\lceil n / s \rceil` sits at input coordinate :math:`u_i = s\,i + (1 - s)/2`
    (1-based). With antialiasing the cubic kernel is stretched by :math:`s`, :math:`h(t) = s^{-1} k(t / s)`, and covers
    the :math:`\lceil 4 s \rceil + 2` input samples from :math:`\lfloor u_i - 2 s \rfloor`; the weights of a row are
    normalised to sum to 1, and indices outside ``1..n`` are mirrored symmetrically (``n, n-1, ...`` after the end,
    ``1, 2, ...`` before the start), as MATLAB does.

    Args:
        length: input length :math:`n`.
        factor: integer downsampling factor :math:`s \ge 1`.
        antialias: stretch the kernel (MATLAB's default when shrinking).

    Returns:
        ``(ceil(n / s), n)`` float64 matrix.

    Example:
        >>> R = imresize_matrix(9, 3)
        >>> R.shape, bool(torch.allclose(R.sum(1), torch.ones(3, dtype=torch.float64)))
        (torch.Size([3, 9]), True)
    """
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length: expected a positive integer, got {length!r}.")
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"factor: expected a positive integer, got {factor!r}.")
    scale = 1.0 / factor
    out = math.ceil(length * scale)
    width = 4.0 / scale if antialias and scale < 1 else 4.0
    centre = np.arange(1, out + 1) / scale + 0.5 * (1 - 1 / scale)
    first = np.floor(centre - width / 2)
    taps = int(math.ceil(width)) + 2
    index = first[:, None] + np.arange(taps)[None, :]
    distance = centre[:, None] - index
    if antialias and scale < 1:
        weights = scale * _cubic(scale * distance)
    else:
        weights = _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    columns = mirror[np.mod(index.astype(np.int64) - 1, 2 * length)]
    matrix = np.zeros((out, length))
    np.add.at(matrix, (np.repeat(np.arange(out), taps), columns.reshape(-1)), weights.reshape(-1))
    return torch.from_numpy(matrix)


class Downsample(LinearOperator):
    r"""Bicubic downsampling as MATLAB ``imresize(x, 1/s)`` (antialiased): :math:`A x = R_H\, x\, R_W^T`.

    :math:`R_H, R_W` are the 1D resampling matrices of :func:`imresize_matrix`; the adjoint is
    :math:`A^T y = R_H^T\, y\, R_W`. MATLAB resizes a ``uint8`` image one dimension at a time and rounds in between;
    this operator is the exact linear (float) map, so it matches MATLAB's output up to 8-bit rounding.

    Shapes:
        ``domain_shape = (H, W)``, ``range_shape = (ceil(H / s), ceil(W / s))``; any leading dimensions
        (``(B, C, H, W)``, colour channels included).

    Args:
        shape: high-resolution image shape ``(H, W)``.
        factor: integer downsampling factor ``s`` (the SR benchmarks use 2, 3, 4).
        antialias: stretch the kernel by ``s`` (MATLAB's default).

    Example:
        >>> A = Downsample((33, 32), 3)
        >>> A(torch.rand(2, 1, 33, 32)).shape
        torch.Size([2, 1, 11, 11])
        >>> A.replace(factor=2).range_shape
        (17, 16)
    """

    abilities = frozenset({"replace"})
    PARAMETERS = ("shape", "factor", "antialias")

    def __init__(self, shape: Sequence[int], factor: int, antialias: bool = True) -> None:
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape}.")
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
            raise ValueError(f"factor: expected an integer >= 2, got {factor!r}.")
        self.factor, self.antialias = factor, bool(antialias)
        self.register_buffer("rows", imresize_matrix(shape[0], factor, antialias))
        self.register_buffer("cols", imresize_matrix(shape[1], factor, antialias))
        self.domain_shape = shape
        self.range_shape = (self.rows.shape[0], self.cols.shape[0])

    def params(self) -> dict[str, Any]:
        """``{"shape", "factor", "antialias"}``: the arguments that rebuild this operator."""
        return {"shape": self.domain_shape, "factor": self.factor, "antialias": self.antialias}

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = self.rows.to(x.dtype), self.cols.to(x.dtype)
        return rows @ x @ cols.T

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        rows, cols = self.rows.to(y.dtype), self.cols.to(y.dtype)
        return rows.T @ y @ cols

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, factor={self.factor}"


# ---------------------------------------------------------------------------------------------- deblurring
def gaussian_kernel(
    size: int | Sequence[int], sigma: float | Sequence[float], dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""Normalised 2D Gaussian :math:`k(i, j) \propto \exp(-(i - c_y)^2 / 2\sigma_y^2 - (j - c_x)^2 / 2\sigma_x^2)`.

    The centre is :math:`c = (\text{size} - 1) / 2`; the kernel sums to 1.

    Args:
        size: kernel size ``k`` or ``(kh, kw)``.
        sigma: standard deviation in pixels, or ``(sigma_y, sigma_x)``; must be > 0.
        dtype: floating dtype of the result.

    Returns:
        ``(kh, kw)`` tensor.

    Example:
        >>> k = gaussian_kernel(5, 1.0)
        >>> k.shape, round(float(k.sum()), 6)
        (torch.Size([5, 5]), 1.0)
    """
    sizes = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    sigmas = (sigma, sigma) if isinstance(sigma, (int, float)) else tuple(float(s) for s in sigma)
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(f"size: expected a positive int or (kh, kw), got {size!r}.")
    if len(sigmas) != 2 or not min(sigmas) > 0:
        raise ValueError(f"sigma: expected a positive number or (sigma_y, sigma_x), got {sigma!r}.")
    axes = [
        torch.exp(-0.5 * ((torch.arange(n, dtype=torch.float64) - (n - 1) / 2) / s) ** 2) for n, s in zip(sizes, sigmas)
    ]
    kernel = axes[0][:, None] * axes[1][None, :]
    return (kernel / kernel.sum()).to(dtype)


class Blur(LinearOperator):
    r"""Convolution with a 2D kernel, :math:`(A x)[i] = \sum_m k[m]\, x[i + c - m]`, same size as the input.

    The kernel centre is :math:`c = (\lfloor k_h / 2 \rfloor, \lfloor k_w / 2 \rfloor)` (as ``scipy.ndimage.convolve``);
    outside the image, ``x`` is periodic (``boundary="circular"``) or zero (``"zero"``). The adjoint is the correlation
    :math:`(A^T y)[j] = \sum_m k[m]\, y[j - c + m]` with the same boundary (periodic, or zero outside the image).

    Shapes:
        ``domain_shape = range_shape = (H, W)``; any leading dimensions (each channel blurred alike).

    Args:
        kernel: real ``(kh, kw)`` kernel (each side at most the image side for ``"circular"``).
        shape: image shape ``(H, W)``.
        boundary: ``"circular"`` or ``"zero"``.
        learnable_kernel: make the kernel an ``nn.Parameter``; calls then use native autograd so gradients reach
            it (blind deblurring, model adaptation).

    Raises:
        ValueError: for a bad ``kernel``, ``shape`` or ``boundary``.

    Example:
        >>> A = Blur(gaussian_kernel(7, 1.5), (32, 32), boundary="circular")
        >>> x = torch.ones(1, 1, 32, 32)
        >>> torch.allclose(A(x), x)  # the kernel sums to 1 and the boundary is periodic
        True
        >>> wider = A.replace(kernel=gaussian_kernel(9, 3.0))
    """

    abilities = frozenset({"replace"})
    PARAMETERS = ("kernel", "shape", "boundary", "learnable_kernel")

    def __init__(
        self,
        kernel: torch.Tensor,
        shape: Sequence[int],
        boundary: str = "circular",
        learnable_kernel: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(kernel, torch.Tensor) or kernel.ndim != 2 or not kernel.is_floating_point():
            got = f"{tuple(kernel.shape)} {kernel.dtype}" if isinstance(kernel, torch.Tensor) else type(kernel).__name__
            raise ValueError(f"kernel: expected a real floating tensor (kh, kw), got {got}.")
        if not bool(torch.isfinite(kernel).all()):
            raise ValueError("kernel: contains NaN or Inf values.")
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape}.")
        if boundary not in ("circular", "zero"):
            raise ValueError(f"boundary: expected 'circular' or 'zero', got {boundary!r}.")
        if boundary == "circular" and (kernel.shape[0] > shape[0] or kernel.shape[1] > shape[1]):
            raise ValueError(f"kernel: shape {tuple(kernel.shape)} exceeds the image shape {shape} (circular boundary).")
        kernel = kernel.detach().clone()
        if learnable_kernel:
            self.kernel = torch.nn.Parameter(kernel)
            self.native_autograd = True
        else:
            self.register_buffer("kernel", kernel)
        self.boundary = boundary
        self.domain_shape = self.range_shape = shape
        kh, kw = kernel.shape
        ch, cw = kh // 2, kw // 2
        # F.pad order: (left, right, top, bottom)
        self._pad_forward = (kw - 1 - cw, cw, kh - 1 - ch, ch)
        self._pad_adjoint = (cw, kw - 1 - cw, ch, kh - 1 - ch)

    def params(self) -> dict[str, Any]:
        """``{"kernel", "shape", "boundary", "learnable_kernel"}``: the arguments that rebuild this operator (the
        kernel's current value, a learnable one included)."""
        return {"kernel": self.kernel.detach().clone(), "shape": self.domain_shape, "boundary": self.boundary,
                "learnable_kernel": isinstance(self.kernel, torch.nn.Parameter)}

    def _correlate(self, x: torch.Tensor, weight: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
        lead = x.shape[:-2]
        flat = x.reshape(-1, 1, *x.shape[-2:])
        mode = "circular" if self.boundary == "circular" else "constant"
        flat = F.pad(flat, pad, mode=mode)
        return F.conv2d(flat, weight[None, None]).reshape(*lead, *self.range_shape)

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return self._correlate(x, torch.flip(self.kernel.to(x.dtype), (0, 1)), self._pad_forward)

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return self._correlate(y, self.kernel.to(y.dtype), self._pad_adjoint)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel={tuple(self.kernel.shape)}, boundary={self.boundary!r}"


# ---------------------------------------------------------------------------------------------- random projections
class RandomProjection(LinearOperator):
    r"""Random projection of image patches, :math:`y = \Phi\, \mathrm{vec}(x)`, :math:`\Phi \in \mathbb{R}^{m \times d}`
    (or :math:`\mathbb{C}^{m \times d}`), the multi-task problem of the RIM paper (Putzky & Welling 2017, Sec. 4.4).

    :math:`d = p_h p_w` is the patch size and :math:`m = \max(1, \mathrm{round}(\text{reduction} \cdot d))` the number
    of measurements: ``reduction`` is the fraction of dimensions kept (the paper's :math:`p`, "the reduction in
    dimensionality through the random projection"). Ensembles (seeded, so the matrix is reproducible):

    - ``"gaussian"``: i.i.d. :math:`\mathcal N(0, 1)` entries;
    - ``"bernoulli"``: i.i.d. :math:`\pm 1` entries with probability 1/2;
    - ``"fourier"``: :math:`m` distinct rows, drawn uniformly, of the :math:`d \times d` DFT matrix
      :math:`F_{jk} = e^{-2\pi i jk/d}` acting on the row-major flattened patch (Donoho 2006). This operator is complex
      on both sides: pass real patches as complex (``x.to(torch.complex64)``) and take ``.real`` of image estimates.

    Normalisation: by default every entry has unit mean square (as in the paper, so the noise level :math:`\sigma`
    means the same for all three ensembles). With ``normalized=True`` the matrix is divided by :math:`\sqrt d`: the
    Fourier rows are then rows of the unitary DFT (:math:`\Phi \Phi^H = I`) and Gaussian/Bernoulli rows have unit
    expected norm.

    Shapes:
        ``domain_shape = (p_h, p_w)``, ``range_shape = (m,)``; any leading dimensions.

    Args:
        patch_shape: ``(p_h, p_w)``.
        reduction: fraction of measurements kept, in ``(0, 1]``.
        ensemble: ``"gaussian"``, ``"bernoulli"`` or ``"fourier"``.
        seed: seed of the matrix.
        normalized: divide by :math:`\sqrt d` (see above).

    Raises:
        ValueError: for a bad ``patch_shape``, ``reduction`` or ``ensemble``.

    Example:
        >>> A = RandomProjection((32, 32), reduction=0.25, ensemble="bernoulli", seed=0)
        >>> A(torch.rand(8, 1, 32, 32)).shape
        torch.Size([8, 1, 256])
        >>> A.replace(seed=1).range_shape     # another draw of the same ensemble
        (256,)
    """

    abilities = frozenset({"replace"})
    PARAMETERS = ("patch_shape", "reduction", "ensemble", "seed", "normalized")

    def __init__(
        self,
        patch_shape: Sequence[int],
        reduction: float,
        ensemble: str = "gaussian",
        seed: int = 0,
        normalized: bool = False,
    ) -> None:
        super().__init__()
        patch_shape = tuple(int(s) for s in patch_shape)
        if len(patch_shape) != 2 or min(patch_shape) < 1:
            raise ValueError(f"patch_shape: expected (p_h, p_w) with positive sizes, got {patch_shape}.")
        if not isinstance(reduction, (int, float)) or not 0 < reduction <= 1:
            raise ValueError(f"reduction: expected a fraction of kept measurements in (0, 1], got {reduction!r}.")
        if ensemble not in ("gaussian", "bernoulli", "fourier"):
            raise ValueError(f"ensemble: expected 'gaussian', 'bernoulli' or 'fourier', got {ensemble!r}.")
        dim = patch_shape[0] * patch_shape[1]
        rows = max(1, int(round(reduction * dim)))
        generator = torch.Generator().manual_seed(int(seed))
        if ensemble == "gaussian":
            matrix = torch.randn(rows, dim, generator=generator, dtype=torch.float64)
        elif ensemble == "bernoulli":
            matrix = torch.randint(0, 2, (rows, dim), generator=generator).to(torch.float64) * 2 - 1
        else:
            freqs = torch.randperm(dim, generator=generator)[:rows].sort().values.to(torch.float64)
            phase = -2 * math.pi * torch.remainder(freqs[:, None] * torch.arange(dim, dtype=torch.float64)[None], dim) / dim
            matrix = torch.polar(torch.ones_like(phase), phase)
        if normalized:
            matrix = matrix / math.sqrt(dim)
        self.ensemble, self.reduction, self.seed, self.normalized = ensemble, reduction, int(seed), bool(normalized)
        self.register_buffer("matrix", matrix)
        self.domain_shape = patch_shape
        self.range_shape = (rows,)
        self.domain_is_complex = self.range_is_complex = ensemble == "fourier"

    def params(self) -> dict[str, Any]:
        """The arguments that rebuild this operator: ``patch_shape, reduction, ensemble, seed, normalized``."""
        return {"patch_shape": self.domain_shape, "reduction": self.reduction, "ensemble": self.ensemble,
                "seed": self.seed, "normalized": self.normalized}

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        matrix = self.matrix.to(x.dtype)
        return x.reshape(*x.shape[:-2], -1) @ matrix.T

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        matrix = self.matrix.to(y.dtype)
        return (y @ matrix.conj()).reshape(*y.shape[:-1], *self.domain_shape)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ensemble={self.ensemble!r}"

"""Small reconstruction problems (operator, measurements, ground truth) the network contract test runs on.

CT and MRI problems need ``rim_monai.operators.RayTransform`` / ``MaskedFourier``; they skip when those do not import.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from rim_monai.operators import Identity, LinearOperator

__all__ = ["DenseOperator", "Problem", "PROBLEMS", "make_problem", "smooth_images"]


class DenseOperator(LinearOperator):
    """``y = M vec(x)`` for a dense real matrix ``M`` (m, H*W): images ``(..., H, W)`` -> measurements ``(..., m)``."""

    def __init__(self, matrix: torch.Tensor, image_shape: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("matrix", matrix)
        self.domain_shape = tuple(image_shape)
        self.range_shape = (matrix.shape[0],)

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-2) @ self.matrix.to(x.dtype).T

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return (y @ self.matrix.to(y.dtype)).unflatten(-1, self.domain_shape)


def smooth_images(shape: tuple[int, ...], seed: int = 0, complex_: bool = False) -> torch.Tensor:
    """Random smooth images in [0, 1] (blurred noise plus a disc), ``shape = (B, C, H, W)``."""
    g = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    noise = torch.rand(b * c, 1, h, w, generator=g)
    kernel = torch.ones(1, 1, 5, 5) / 25
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(noise, (2, 2, 2, 2), mode="circular"), kernel)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    disc = (yy**2 + xx**2 < 0.4).float()
    x = (x - x.amin()) / (x.amax() - x.amin() + 1e-8) * 0.5 + 0.5 * disc
    x = x.reshape(b, c, h, w)
    if complex_:
        phase = torch.exp(1j * torch.pi / 4 * (yy + xx)).to(torch.complex64)
        x = x.to(torch.complex64) * phase
    return x


@dataclass
class Problem:
    """A named operator with ground truth ``x`` and measurements ``y = A x + noise``."""

    name: str
    A: LinearOperator
    x: torch.Tensor
    y: torch.Tensor

    @property
    def channels(self) -> int:
        return self.x.shape[1]

    @property
    def complex_(self) -> bool:
        return self.x.is_complex()


def _noisy(A: LinearOperator, x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    clean = A(x)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=g, dtype=clean.real.dtype if clean.is_complex() else clean.dtype)
    if clean.is_complex():
        noise = torch.complex(noise, torch.randn(noise.shape, generator=g)) / 2**0.5
    scale = level * float(clean.abs().mean())
    y = clean + scale * noise
    if isinstance(A, _fourier_class()):
        y = A(A.adjoint(y))  # keep the measurements on the mask (zero elsewhere)
    return y


def _fourier_class():
    try:
        return importlib.import_module("rim_monai.operators").MaskedFourier
    except AttributeError:
        return ()


def _operators(name: str):
    module = importlib.import_module("rim_monai.operators")
    if not hasattr(module, name):
        pytest.skip(f"rim_monai.operators.{name} is not available yet")
    return getattr(module, name)


def _denoise(batch: int = 2, channels: int = 1, size: int = 16) -> Problem:
    A = Identity((size, size))
    x = smooth_images((batch, channels, size, size), seed=1)
    return Problem(f"denoise-c{channels}", A, x, _noisy(A, x, 0.2, seed=2))


def _dense(batch: int = 2) -> Problem:
    g = torch.Generator().manual_seed(3)
    A = DenseOperator(torch.randn(40, 64, generator=g) / 8, (8, 8))
    x = smooth_images((batch, 1, 8, 8), seed=4)
    return Problem("dense-projection", A, x, _noisy(A, x, 0.05, seed=5))


def _ct(batch: int = 2) -> Problem:
    RayTransform = _operators("RayTransform")
    A = RayTransform((32, 32), num_angles=16)
    x = smooth_images((batch, 1, 32, 32), seed=6)
    return Problem("ct-parallel", A, x, _noisy(A, x, 0.02, seed=7))


def _mri(coils: int, batch: int = 2) -> Problem:
    MaskedFourier = _operators("MaskedFourier")
    size = 16
    mask = torch.zeros(size, size)
    mask[:, ::2] = 1
    mask[:, size // 2 - 2 : size // 2 + 2] = 1
    if coils > 1:
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
        angles = torch.arange(coils) * 2 * torch.pi / coils
        centres = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        maps = torch.stack([torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)) for cy, cx in centres.tolist()])
        sens = (maps * torch.exp(1j * angles[:, None, None])).to(torch.complex64)
        sens = sens / torch.sqrt((sens.abs() ** 2).sum(0, keepdim=True))
        A = MaskedFourier(mask, sens)
    else:
        A = MaskedFourier(mask)
    x = smooth_images((batch, 1, size, size), seed=8, complex_=True)
    return Problem(f"mri-{coils}coil", A, x, _noisy(A, x, 0.02, seed=9))


#: the problems every network runs on (name -> factory)
PROBLEMS: dict[str, Callable[[], Problem]] = {
    "denoise": lambda: _denoise(),
    "denoise-rgb": lambda: _denoise(channels=3),
    "dense-projection": lambda: _dense(),
    "ct-parallel": lambda: _ct(),
    "mri-1coil": lambda: _mri(1),
    "mri-8coil": lambda: _mri(8),
}


@functools.lru_cache(maxsize=None)
def _cached(name: str) -> Problem:
    return PROBLEMS[name]()


def make_problem(name: str) -> Problem:
    """A problem by name, built once per session (skips the test when its operator is not available).

    The tensors are cloned on every call, so a test may modify them.
    """
    p = _cached(name)
    return Problem(p.name, p.A, p.x.clone(), p.y.clone())

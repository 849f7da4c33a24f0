"""Small operators, networks and data for the adaptation tests (fast on one CPU thread)."""

from __future__ import annotations

import math

import torch

from rim_monai.operators.base import LinearOperator


def _roll_interp(x: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Circular shift along the last axis by a real ``shift`` (linear interpolation, differentiable in shift)."""
    s = torch.as_tensor(shift, dtype=x.dtype)
    k = int(math.floor(float(s.detach())))
    frac = s - k
    return (1 - frac) * torch.roll(x, k, dims=-1) + frac * torch.roll(x, k + 1, dims=-1)


class ShiftPair(LinearOperator):
    """``A(s) x = [x ; T_s x]``: the image and a copy shifted by ``s`` pixels along W (circular, linear interp.).

    ``(B, C, H, W) -> (B, C, 2, H, W)``. With ``learnable=True`` the shift is an ``nn.Parameter`` reached by native
    autograd; otherwise it is a float changed only through :meth:`replace` (a stand-in for a CT geometry).
    """

    abilities = frozenset({"replace"})

    def __init__(self, shape=(12, 12), shift: float = 0.0, learnable: bool = False) -> None:
        super().__init__()
        self.domain_shape = tuple(shape)
        self.range_shape = (2, *shape)
        if learnable:
            self.shift = torch.nn.Parameter(torch.tensor(float(shift)))
            self.native_autograd = True
        else:
            self.shift = float(shift)

    def replace(self, **changes) -> "ShiftPair":
        unknown = set(changes) - {"shift"}
        if unknown:
            raise ValueError(f"changes: unknown {sorted(unknown)}")
        return ShiftPair(self.domain_shape, shift=float(changes.get("shift", self.shift))).to(self.device)

    def _forward_impl(self, x):
        return torch.stack([x, _roll_interp(x, self.shift)], dim=-3)

    def _adjoint_impl(self, y):
        return y[..., 0, :, :] + _roll_interp_adjoint(y[..., 1, :, :], self.shift)


def _roll_interp_adjoint(y: torch.Tensor, shift) -> torch.Tensor:
    s = torch.as_tensor(shift, dtype=y.dtype)
    k = int(math.floor(float(s.detach())))
    frac = s - k
    return (1 - frac) * torch.roll(y, -k, dims=-1) + frac * torch.roll(y, -(k + 1), dims=-1)


class GaussBlur(LinearOperator):
    """Zero-padded 'same' convolution with a normalised Gaussian of width ``sigma`` (symmetric kernel: adjoint = A)."""

    def __init__(self, shape=(16, 16), sigma: float = 1.0, size: int = 7) -> None:
        super().__init__()
        self.domain_shape = self.range_shape = tuple(shape)
        r = torch.arange(size, dtype=torch.float32) - size // 2
        g = torch.exp(-(r**2) / (2 * sigma**2))
        k = torch.outer(g, g)
        self.register_buffer("kernel", (k / k.sum())[None, None])
        self.sigma = float(sigma)

    def _conv(self, x):
        lead = x.shape[:-2]
        out = torch.nn.functional.conv2d(x.reshape(-1, 1, *x.shape[-2:]), self.kernel.to(x.dtype), padding="same")
        return out.reshape(*lead, *x.shape[-2:])

    def _forward_impl(self, x):
        return self._conv(x)

    def _adjoint_impl(self, y):
        return self._conv(y)


class TinyNet(torch.nn.Module):
    """``net(y, A) = z + CNN(z)`` with ``z = A^H y`` (a post-processing network with a residual CNN)."""

    def __init__(self, width: int = 8, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.cnn = torch.nn.Sequential(
                torch.nn.Conv2d(1, width, 3, padding=1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(width, width, 3, padding=1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(width, 1, 3, padding=1),
            )

    def forward(self, y, A):
        z = A.adjoint(y)
        return z + self.cnn(z)


class StepNet(torch.nn.Module):
    """Two learned gradient steps on ``||Ax - y||^2`` from ``x = 0`` plus a residual CNN (a tiny unrolled network)."""

    def __init__(self, width: int = 6, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.steps = torch.nn.Parameter(torch.tensor([0.3, 0.3]))
            self.cnn = torch.nn.Sequential(
                torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(width, 1, 3, padding=1)
            )

    def forward(self, y, A):
        x = torch.zeros(y.shape[: y.ndim - len(A.range_shape)] + A.domain_shape, dtype=y.dtype)
        for step in self.steps:
            x = x - step * A.adjoint(A(x) - y)
        return x + self.cnn(x)


def phantoms(n: int, shape=(16, 16), seed: int = 0) -> torch.Tensor:
    """``(n, 1, H, W)`` random piecewise-constant images: 1-3 axis-aligned rectangles of random intensity."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    out = torch.zeros(n, 1, h, w)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            y0, x0 = (int(v) for v in torch.randint(1, h // 2, (2,), generator=g))
            dy, dx = (int(v) for v in torch.randint(3, h // 2, (2,), generator=g))
            out[i, 0, y0 : y0 + dy, x0 : x0 + dx] += float(torch.rand(1, generator=g)) * 0.8 + 0.2
    return out


def smooth_images(n: int, shape=(12, 12), seed: int = 0) -> torch.Tensor:
    """``(n, 1, H, W)`` smooth random images (sums of a few periodic Gaussian bumps), for the shift toys."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    out = torch.zeros(n, 1, h, w)
    for i in range(n):
        for _ in range(3):
            cy, cx = float(torch.rand(1, generator=g)) * h, float(torch.rand(1, generator=g)) * w
            dx = torch.remainder(xx - cx + w / 2, w) - w / 2
            out[i, 0] += torch.exp(-((yy - cy) ** 2 + dx**2) / (2 * 1.8**2)) * (0.5 + float(torch.rand(1, generator=g)))
    return out


def train(net: torch.nn.Module, op: LinearOperator, images: torch.Tensor, steps: int = 150, lr: float = 3e-3,
          noise: float = 0.0, seed: int = 0) -> torch.nn.Module:
    """Supervised training of ``net`` on ``(A x + noise, x)`` pairs (a few seconds on one thread)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    with torch.no_grad():
        y = op(images)
        y = y + noise * torch.randn(y.shape, generator=g)
    for _ in range(steps):
        idx = torch.randint(0, images.shape[0], (16,), generator=g)
        opt.zero_grad()
        loss = ((net(y[idx], op) - images[idx]) ** 2).mean()
        loss.backward()
        opt.step()
    return net.eval()

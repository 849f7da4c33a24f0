"""Deep equilibrium reconstruction (Gilton, Ongie & Willett 2021) with Anderson acceleration and implicit backward."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from rim_monai.networks.base import IterativeNetwork, renamed_argument
from rim_monai.networks.blocks import ConvStack
from rim_monai.networks.utils import from_channels, initial_estimate, step_scale, to_channels
from rim_monai.operators.base import LinearOperator

__all__ = ["DeepEquilibrium", "anderson"]


def anderson(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    memory: int = 5,
    max_iter: int = 50,
    tol: float = 1e-4,
    beta: float = 1.0,
    lam: float = 1e-4,
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""Solve :math:`z = f(z)` by Anderson acceleration, per sample of a batch.

    With residuals :math:`g_k = f(z_k) - z_k` and the differences :math:`\Delta Z, \Delta G` of the last ``memory``
    iterates and residuals,

    .. math::
        \gamma_k = (\Delta G^T \Delta G + \lambda I)^{-1} \Delta G^T g_k, \qquad
        z_{k+1} = z_k + \beta g_k - (\Delta Z + \beta \Delta G)\,\gamma_k

    (:math:`\beta` the mixing, :math:`\lambda` a small Tikhonov term; with no history this is the damped step
    :math:`z + \beta g`). Stops when the largest per-sample relative residual
    :math:`\|f(z) - z\| / \|f(z)\|` falls below ``tol``.

    Args:
        f: the map (a batch ``(B, ...)`` to the same shape); called without gradient tracking by the caller.
        z0: the start ``(B, ...)``.
        memory: the number :math:`m` of differences kept.
        max_iter: maximum number of evaluations of ``f``.
        tol: relative residual to reach.
        beta: mixing parameter.
        lam: regularisation of the least-squares problem (relative to its scale).

    Returns:
        The last iterate and ``{"iterations", "residual"}`` (the relative residual of that iterate).
    """
    shape, batch = z0.shape, z0.shape[0]
    z = z0.reshape(batch, -1)
    g = f(z.reshape(shape)).reshape(batch, -1) - z
    dz: list[torch.Tensor] = []
    dg: list[torch.Tensor] = []
    residual = float("inf")
    iterations = 1
    for iterations in range(1, max_iter + 1):
        fz = z + g
        residual = float((g.norm(dim=1) / (fz.norm(dim=1) + 1e-12)).max())
        if residual < tol or not torch.isfinite(g).all() or iterations == max_iter:
            break
        if dz:
            DZ, DG = torch.stack(dz, dim=2), torch.stack(dg, dim=2)  # (B, n, m)
            gram = DG.transpose(1, 2) @ DG
            reg = lam * gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(1e-30)
            gram = gram + reg[:, None, None] * torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
            gamma = torch.linalg.solve(gram, DG.transpose(1, 2) @ g.unsqueeze(2))  # (B, m, 1)
            z_new = z + beta * g - ((DZ + beta * DG) @ gamma).squeeze(2)
        else:
            z_new = z + beta * g
        g_new = f(z_new.reshape(shape)).reshape(batch, -1) - z_new
        dz.append(z_new - z)
        dg.append(g_new - g)
        if len(dz) > memory:
            dz.pop(0)
            dg.pop(0)
        z, g = z_new, g_new
    return z.reshape(shape), {"iterations": iterations, "residual": residual}


class DeepEquilibrium(IterativeNetwork):
    r"""Deep equilibrium network (Gilton, Ongie & Willett, *IEEE TCI* 2021): the fixed point :math:`z^* = f_\theta(z^*; y, A)`.

    With :math:`c = 1/\|A\|^2`, a learnable step :math:`\eta = \mathrm{softplus}(\phi_\eta)` and a learnable
    weight :math:`\alpha = \mathrm{softplus}(\phi_\alpha)` of a Tikhonov term:

    * ``mode="gradient"``: :math:`f_\theta(z) = z - \eta\, c\, A^H(Az - y) - R_\theta(z)` with
      :math:`R_\theta(z) = \eta\,(\alpha z + D_\theta(z))`, a learned gradient of a regulariser;
    * ``mode="prox"``: :math:`f_\theta(z) = R_\theta\big(z - \eta\, c\, A^H(Az - y)\big)` with the learned proximal map
      :math:`R_\theta(u) = (u - D_\theta(u)) / (1 + \eta\alpha)`,

    where :math:`D_\theta` is a CNN whose last layer starts at zero, so the untrained network is Tikhonov-regularised
    Landweber iteration, a contraction for :math:`\eta < 2/(1+\alpha)` whatever the null space of :math:`A`.
    Forward: Anderson acceleration without gradient tracking, from :math:`z_0` = ``init``, then one more
    application of :math:`f_\theta` with gradients. Backward
    (``backward="implicit"``): the incoming gradient :math:`v` is replaced by the solution of
    :math:`g = v + J_f(z^*)^T g` (implicit function theorem), found by Anderson iteration on vector-Jacobian products;
    if that solve does not converge the Jacobian-free gradient is used and ``last_stats["backward_fallback"]`` is set.
    ``backward="jacobian_free"`` uses :math:`g = v` (Fung et al. 2022: one step of backpropagation through
    :math:`f_\theta` at the fixed point). Convergence needs :math:`f_\theta` to stay contractive.

    After each call ``last_stats`` holds ``forward_iterations`` and ``forward_residual`` (relative
    :math:`\|f(z) - z\|/\|f(z)\|`, largest over the batch), and after a backward pass ``backward_iterations``,
    ``backward_residual`` and ``backward_fallback``.

    Args:
        in_channels: image channels ``C``.
        complex_: complex images (processed as ``2C`` real channels).
        mode: ``"gradient"`` or ``"prox"``.
        features: hidden widths of the CNN.
        step: initial :math:`\eta`.
        weight: initial :math:`\alpha`.
        init: start of the fixed-point iteration: ``"adjoint"``, ``"fbp"`` or ``"zeros"``.
        iterations: the most forward iterations (``iterations`` at call time overrides).
        tol: forward relative residual tolerance.
        backward: ``"implicit"`` or ``"jacobian_free"``.
        backward_iterations: the most iterations of the adjoint fixed-point solve.
        backward_tol: its relative residual tolerance.
        memory: Anderson memory.
        regularizer: a module to use as :math:`D_\theta` instead of the default CNN (channels in = channels out =
            ``C``, or ``2C`` for complex images).
        max_iter: deprecated name of ``iterations`` (``DeprecationWarning``).
        backward_max_iter: deprecated name of ``backward_iterations``.

    Shapes:
        ``y``: ``(B, ..., *A.range_shape)``; returns images shaped like ``A.adjoint(y)``; ``return_all=True`` gives
        ``[x_hat]`` (an equilibrium has no steps to report).

    Example:
        >>> from rim_monai.operators import Identity
        >>> net = DeepEquilibrium(features=(8,), tol=1e-5)
        >>> x = net(torch.rand(1, 1, 8, 8), Identity((8, 8)))
        >>> net.last_stats["forward_residual"] < 1e-5
        True
    """

    def __init__(
        self,
        in_channels: int = 1,
        complex_: bool = False,
        mode: str = "gradient",
        features: Sequence[int] = (32, 32),
        step: float = 0.5,
        weight: float = 0.1,
        init: str = "adjoint",
        iterations: int = 50,
        tol: float = 1e-4,
        backward: str = "implicit",
        backward_iterations: int = 50,
        backward_tol: float = 1e-5,
        memory: int = 5,
        regularizer: nn.Module | None = None,
        *,
        max_iter: int | None = None,
        backward_max_iter: int | None = None,
    ) -> None:
        iterations = renamed_argument("DeepEquilibrium", "iterations", iterations, "max_iter", max_iter, default=50)
        backward_iterations = renamed_argument("DeepEquilibrium", "backward_iterations", backward_iterations,
                                               "backward_max_iter", backward_max_iter, default=50)
        super().__init__(in_channels, complex_, iterations, init, share_weights=True)
        if mode not in ("gradient", "prox"):
            raise ValueError(f"mode: expected 'gradient' or 'prox', got {mode!r}.")
        if backward not in ("implicit", "jacobian_free"):
            raise ValueError(f"backward: expected 'implicit' or 'jacobian_free', got {backward!r}.")
        if step <= 0:
            raise ValueError(f"step: expected a positive step size, got {step}.")
        if weight <= 0:
            raise ValueError(f"weight: expected a positive Tikhonov weight, got {weight}.")
        self.mode, self.tol, self.backward, self.memory = mode, float(tol), backward, int(memory)
        self.backward_iterations, self.backward_tol = int(backward_iterations), float(backward_tol)
        c = self.real_channels
        self.regularizer = regularizer if regularizer is not None else ConvStack(c, c, features, zero_last=True)
        self.raw_step = nn.Parameter(torch.tensor(float(step)).expm1().log())
        self.raw_weight = nn.Parameter(torch.tensor(float(weight)).expm1().log())
        self.last_stats: dict[str, float] = {}

    @property
    def max_iter(self) -> int:
        """Deprecated name of :attr:`iterations`."""
        warnings.warn("DeepEquilibrium: 'max_iter' is deprecated, use 'iterations'.", DeprecationWarning, stacklevel=2)
        return self.iterations

    @property
    def backward_max_iter(self) -> int:
        """Deprecated name of :attr:`backward_iterations`."""
        warnings.warn("DeepEquilibrium: 'backward_max_iter' is deprecated, use 'backward_iterations'.",
                      DeprecationWarning, stacklevel=2)
        return self.backward_iterations

    @property
    def step(self) -> torch.Tensor:
        """:math:`\\eta = \\mathrm{softplus}(\\phi_\\eta)`."""
        return F.softplus(self.raw_step)

    @property
    def weight(self) -> torch.Tensor:
        """:math:`\alpha = \mathrm{softplus}(\phi_\alpha)`."""
        return F.softplus(self.raw_weight)

    def iteration(self, z: torch.Tensor, y: torch.Tensor, A: LinearOperator, scale: float) -> torch.Tensor:
        """One application of :math:`f_\\theta` to ``z`` (real channel layout ``(B, C', H, W)``)."""
        image = from_channels(z, self.complex_)
        grad = to_channels(A.adjoint(A(image, check=False) - y, check=False)) * scale
        step = self.step
        if self.mode == "gradient":
            return z - step * (grad + self.weight * z + self.regularizer(z))
        u = z - step * grad
        return (u - self.regularizer(u)) / (1 + step * self.weight)

    def iterate(self, y: torch.Tensor, A: LinearOperator, adjoint: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        """``[x_hat]``: the equilibrium for ``(y, A)``, found in at most ``iterations`` forward iterations."""
        scale = step_scale(A)
        z0 = to_channels(initial_estimate(y, A, self.init, adjoint))

        def f(z: torch.Tensor) -> torch.Tensor:
            return self.iteration(z, y, A, scale)

        with torch.no_grad():
            z_star, stats = anderson(f, z0.detach(), self.memory, iterations, self.tol)
        self.last_stats = {"forward_iterations": stats["iterations"], "forward_residual": stats["residual"]}
        z = f(z_star)
        if z.requires_grad and self.backward == "implicit":
            z_in = z_star.detach().requires_grad_(True)
            with torch.enable_grad():
                f_in = f(z_in)

            def implicit(grad: torch.Tensor) -> torch.Tensor:
                def adjoint_map(g: torch.Tensor) -> torch.Tensor:
                    vjp = torch.autograd.grad(f_in, z_in, g, retain_graph=True)[0]
                    return vjp + grad

                with torch.no_grad():
                    g, bstats = anderson(adjoint_map, grad, self.memory, self.backward_iterations, self.backward_tol)
                ok = bool(torch.isfinite(g).all()) and bstats["residual"] < 1e-2
                self.last_stats.update(
                    backward_iterations=bstats["iterations"], backward_residual=bstats["residual"], backward_fallback=not ok
                )
                return g if ok else grad

            z.register_hook(implicit)
        return [from_channels(z, self.complex_)]

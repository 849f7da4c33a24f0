r"""Batched-solver bookkeeping: argument checks, per-sample scalars, norms and inner products, operator norms.

Every classical solver (:func:`~rim_monai.classical.cg_normal`, :func:`~rim_monai.classical.landweber`,
:func:`~rim_monai.classical.tv_pdhg`) treats each leading index of :math:`x = A^H y` — the dimensions in front of
``operator.domain_shape`` — as an independent problem: inner products, step sizes and stopping rules are computed per
sample by reducing over the trailing ``domain_shape`` dimensions only, so a batched call equals a loop of
single-sample calls. This module holds those pieces, for the solvers here and for new ones:

- :func:`check_solver_inputs` (or its parts :func:`check_measurements`, :func:`check_iterations`, :func:`check_tol`)
  and :func:`check_initial` validate the arguments with ``ValueError`` naming the argument;
- :func:`per_sample` turns a number or a per-sample tensor (a weight, a step size) into one value per sample, and
  :func:`expand` broadcasts it against ``(*batch, *domain_shape)``;
- :func:`sqnorm` and :func:`rdot` are the per-sample :math:`\|a\|^2` and :math:`\mathrm{Re}\langle a, b\rangle`;
- :func:`operator_norm` is :math:`\|A\|_2` per sample (shared operators use the cached ``A.opnorm()``).

Example:
    >>> from rim_monai.operators import Identity
    >>> y = torch.ones(3, 1, 4, 4)
    >>> check_solver_inputs(y, Identity((4, 4)), iterations=10, tol=1e-6)
    (10, 1e-06)
    >>> sqnorm(y, ndim=2)                      # one value per leading index (3, 1)
    tensor([[16.],
            [16.],
            [16.]])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rim_monai.operators.base import LinearOperator, check_tensor

__all__ = [
    "Callback",
    "check_solver_inputs",
    "check_measurements",
    "check_initial",
    "check_iterations",
    "check_tol",
    "per_sample",
    "expand",
    "sqnorm",
    "rdot",
    "operator_norm",
    "format_per_sample",
]

#: ``callback(k, x_k)``, called by the solvers after iteration ``k = 1, 2, ...`` (it must not change ``x_k`` in place)
Callback = Callable[[int, torch.Tensor], None]


def check_solver_inputs(
    y: torch.Tensor, operator: LinearOperator, iterations: int, tol: float | None = None
) -> tuple[int, float | None]:
    """Validate the arguments every iterative solver takes, in this order: ``operator`` and ``y``, ``iterations``,
    ``tol`` (skipped when ``None``).

    Returns:
        ``(iterations, tol)`` as ``int`` and ``float`` (``tol`` stays ``None`` when not given).

    Raises:
        ValueError: naming ``operator``, ``y``, ``iterations`` or ``tol``.
    """
    check_measurements(y, operator)
    return check_iterations(iterations), (None if tol is None else check_tol(tol))


def check_measurements(y: torch.Tensor, operator: LinearOperator) -> None:
    """Validate ``operator`` and ``y`` (``ValueError`` naming the argument)."""
    if not isinstance(operator, LinearOperator):
        raise ValueError(
            f"operator: expected a rim_monai.operators.LinearOperator, got {type(operator).__name__}."
        )
    check_tensor(y, "y", operator.range_shape, operator.range_is_complex, operator.device)


def check_initial(x0: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Validate an initial estimate ``x0`` against ``like = A^H y`` and return it in ``like``'s dtype."""
    if not isinstance(x0, torch.Tensor):
        raise ValueError(f"x0: expected a torch.Tensor of shape {tuple(like.shape)}, got {type(x0).__name__}.")
    if tuple(x0.shape) != tuple(like.shape):
        raise ValueError(f"x0: expected shape {tuple(like.shape)} (that of A^H y), got {tuple(x0.shape)}.")
    if x0.dtype.is_complex != like.dtype.is_complex:
        kind = "complex" if like.dtype.is_complex else "real"
        raise ValueError(f"x0: expected a {kind} tensor like A^H y ({like.dtype}), got dtype {x0.dtype}.")
    if x0.device != like.device:
        raise ValueError(f"x0: expected a tensor on device {like.device}, got one on {x0.device}.")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0: contains NaN or Inf values.")
    return x0.to(like.dtype)


def check_iterations(iterations: int) -> int:
    """``iterations`` must be a positive integer."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations: expected a positive integer, got {iterations!r}.")
    return iterations


def check_tol(tol: float) -> float:
    """``tol`` must be a non-negative finite number (0 runs all iterations)."""
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not (0.0 <= float(tol) < float("inf")):
        raise ValueError(f"tol: expected a non-negative number, got {tol!r}.")
    return float(tol)


def per_sample(
    value: float | torch.Tensor, name: str, batch_shape: tuple[int, ...], like: torch.Tensor, positive: bool = False,
    detach: bool = True,
) -> torch.Tensor:
    """Turn a scalar or per-sample tensor into a real tensor of shape ``batch_shape``.

    A tensor with fewer dimensions than ``batch_shape`` is aligned to the *leading* dimensions (so a ``(B,)`` tensor
    serves a batch ``(B, C)``). ``detach=False`` keeps a tensor's autograd graph (a weight learned through a solver).

    Raises:
        ValueError: naming ``name`` for a complex, non-finite, negative (or non-positive when ``positive``) value or
            a shape that does not broadcast to ``batch_shape``.
    """
    real = like.real.dtype if like.dtype.is_complex else like.dtype
    if isinstance(value, torch.Tensor):
        if value.dtype.is_complex:
            raise ValueError(f"{name}: expected a real value, got a complex tensor.")
        t = (value.detach() if detach else value).to(device=like.device, dtype=real)
        if t.ndim > len(batch_shape):
            raise ValueError(
                f"{name}: expected a scalar or a per-sample tensor of shape {batch_shape}, got {tuple(t.shape)}."
            )
        t = t.reshape(tuple(t.shape) + (1,) * (len(batch_shape) - t.ndim))
        try:
            t = torch.broadcast_to(t, batch_shape)
        except RuntimeError:
            raise ValueError(
                f"{name}: expected a scalar or a per-sample tensor of shape {batch_shape}, got {tuple(value.shape)}."
            ) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.full(batch_shape, float(value), dtype=real, device=like.device)
    else:
        raise ValueError(f"{name}: expected a number or a tensor, got {type(value).__name__}.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: must be finite, got {value!r}.")
    if positive and bool((t <= 0).any()):
        raise ValueError(f"{name}: expected a positive value, got {value!r}.")
    if bool((t < 0).any()):
        raise ValueError(f"{name}: expected a non-negative value, got {value!r}.")
    return t


def expand(s: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append ``ndim`` singleton dimensions so a per-sample scalar broadcasts against ``(*batch, *domain_shape)``."""
    return s.reshape(tuple(s.shape) + (1,) * ndim)


def sqnorm(a: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-sample squared norm :math:`\\|a\\|^2` over the trailing ``ndim`` dimensions (real result)."""
    dims = tuple(range(a.ndim - ndim, a.ndim))
    if a.dtype.is_complex:
        a = torch.view_as_real(a)
        dims = dims + (a.ndim - 1,)
    return (a * a).sum(dim=dims)


def rdot(a: torch.Tensor, b: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-sample real inner product :math:`\\mathrm{Re}\\,\\langle a, b\\rangle` over the trailing ``ndim`` dims."""
    dims = tuple(range(a.ndim - ndim, a.ndim))
    if a.dtype.is_complex:
        return (a.conj() * b).real.sum(dim=dims)
    return (a * b).sum(dim=dims)


def operator_norm(operator: LinearOperator, like: torch.Tensor, iterations: int = 100, tol: float = 1e-6) -> torch.Tensor:
    """:math:`\\|A\\|_2` per sample, shape ``like.shape[:-len(domain_shape)]``.

    An operator whose buffers are shared by the whole batch (``A^H A`` of a single ``domain_shape`` image is again a
    single image, possibly with leading dimensions of size 1) uses the cached :meth:`LinearOperator.opnorm`; an
    operator with per-sample buffers (masks or coil maps with a batch dimension > 1) gets a batched power iteration,
    one estimate per sample.
    """
    nd = len(operator.domain_shape)
    batch = tuple(like.shape[: like.ndim - nd])
    with torch.no_grad():
        real = like.real.dtype if like.dtype.is_complex else like.dtype
        probe = torch.zeros(operator.domain_shape, dtype=like.dtype, device=like.device)
        try:
            out = tuple(operator.normal(probe).shape)
            # buffers with a batch dimension of size 1 (e.g. a mask (1, 1, H, W)) are shared by the batch too
            shared = out[len(out) - nd:] == tuple(operator.domain_shape) and all(s == 1 for s in out[: len(out) - nd])
        except (ValueError, RuntimeError):
            shared = False
        if shared:
            return torch.full(batch, float(operator.opnorm()), dtype=real, device=like.device)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(like.shape, generator=g, dtype=like.dtype).to(like.device)
        x = x / expand(sqnorm(x, nd).sqrt(), nd)
        estimate = torch.zeros(batch, dtype=real, device=like.device)
        for _ in range(iterations):
            z = operator.normal(x)
            norm = sqnorm(z, nd).sqrt()
            new = norm.sqrt()
            x = z / expand(torch.where(norm > 0, norm, torch.ones_like(norm)), nd)
            done = bool(((new - estimate).abs() <= tol * new).all())
            estimate = new
            if done:
                break
    return estimate


def format_per_sample(values: torch.Tensor, shown: int = 4) -> str:
    """Per-sample values for a log line: the first ``shown`` as ``[a, b, ...]`` with 4 significant digits."""
    head = values.detach().flatten()[:shown].tolist()
    return "[" + ", ".join(f"{v:.4g}" for v in head) + (", ..." if values.numel() > shown else "") + "]"

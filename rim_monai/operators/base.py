"""The linear operator contract every forward model in rim_monai follows.

A :class:`LinearOperator` is a ``torch.nn.Module`` mapping a batch of images ``x`` of shape
``(*batch, *domain_shape)`` to measurements ``y`` of shape ``(*batch, *range_shape)``. Leading (batch, channel)
dimensions are broadcast: subclasses implement :meth:`LinearOperator._forward_impl` and
:meth:`LinearOperator._adjoint_impl` on tensors whose leading dimensions are arbitrary, without a per-sample loop.

Calling the operator (``A(x)``) and :meth:`LinearOperator.adjoint` go through a custom autograd function whose
backward is the *other* map, so ``x.grad`` of ``<A x, g>`` is exactly ``A.adjoint(g)`` — not a numerical
approximation, and valid for backends (ASTRA, sparse matrices) that autograd cannot see through. The backward itself
calls the autograd-enabled counterpart, so double backward (Hessian-vector products, implicit differentiation) works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["LinearOperator", "AdjointOperator", "check_tensor", "all_finite"]


def _kind(dtype: torch.dtype) -> str:
    return "complex" if dtype.is_complex else "real"


def check_tensor(
    value: torch.Tensor,
    name: str,
    trailing_shape: Sequence[int],
    complex_: bool,
    device: torch.device | None = None,
    check_finite: bool = True,
) -> None:
    """Validate a tensor at an operator or network boundary.

    Args:
        value: the tensor to check.
        name: the argument name used in the error message (``"x"``, ``"y"``, ``"mask"``...).
        trailing_shape: the expected trailing dimensions; any leading (batch, channel) dimensions are allowed.
        complex_: whether a complex dtype is expected (``torch.complex64``/``complex128``) or a real floating one.
        device: the expected device; ``None`` skips the device check.
        check_finite: also reject NaN and Inf values.

    Raises:
        ValueError: naming ``name``, what was found and what was expected.
    """
    trailing_shape = tuple(int(s) for s in trailing_shape)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape (..., {_fmt(trailing_shape)}), got {type(value).__name__}.")
    if value.ndim < len(trailing_shape) or tuple(value.shape[value.ndim - len(trailing_shape) :]) != trailing_shape:
        raise ValueError(
            f"{name}: expected shape (..., {_fmt(trailing_shape)}), got {tuple(value.shape)}."
        )
    want = "complex" if complex_ else "real"
    if value.dtype.is_complex != complex_ or not (value.dtype.is_floating_point or value.dtype.is_complex):
        expected = "torch.complex64 or torch.complex128" if complex_ else "torch.float32 or torch.float64"
        raise ValueError(f"{name}: expected a {want} tensor ({expected}), got dtype {value.dtype}.")
    if device is not None and value.device != device:
        raise ValueError(f"{name}: expected a tensor on device {device}, got one on {value.device}; move it with .to().")
    if check_finite and not all_finite(value):
        raise ValueError(f"{name}: contains NaN or Inf values.")


def all_finite(value: torch.Tensor) -> bool:
    r"""Whether every element of ``value`` is finite (no NaN, no ±Inf), exactly, in about one read.

    A sum is finite only if every term is (NaN and Inf propagate through addition), so a finite
    ``value.sum()`` proves the tensor finite with one reduction and no temporaries; only when the sum is not
    finite — a NaN/Inf, or finite values whose sum overflows — is the element-wise ``torch.isfinite`` scan run to
    decide. On CPU this is 20-60x cheaper than ``torch.isfinite(value).all()`` for complex tensors, which builds
    boolean temporaries for both parts (see ``docs/operators.md``).

    Args:
        value: a floating or complex tensor (integer and bool tensors are always finite).

    Returns:
        ``True`` if all elements are finite (also for an empty tensor).

    Example:
        >>> all_finite(torch.tensor([1.0, 3e38, 3e38]))   # the sum overflows, the values do not
        True
        >>> all_finite(torch.tensor([1.0, float("nan")]))
        False
    """
    if not (value.dtype.is_floating_point or value.dtype.is_complex):
        return True
    if value.numel() == 0:
        return True
    if bool(torch.isfinite(value.sum())):
        return True
    return bool(torch.isfinite(value).all())


def _fmt(shape: Sequence[int]) -> str:
    return ", ".join(str(s) for s in shape)


class _Apply(torch.autograd.Function):
    """``y = A x`` with backward ``A^H g``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, op: "LinearOperator") -> torch.Tensor:  # type: ignore[override]
        ctx.op = op
        return op._forward_impl(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return ctx.op.adjoint(grad, check=False), None


class _ApplyAdjoint(torch.autograd.Function):
    """``x = A^H y`` with backward ``A g``."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, op: "LinearOperator") -> torch.Tensor:  # type: ignore[override]
        ctx.op = op
        return op._adjoint_impl(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return ctx.op.forward(grad, check=False), None


class LinearOperator(torch.nn.Module):
    r"""A batched linear forward model :math:`A: X \to Y` with an exact adjoint :math:`A^H`.

    Shapes: ``x`` is ``(*batch, *domain_shape)`` and ``y = A(x)`` is ``(*batch, *range_shape)``; for images the
    batch part is ``(B, C)``. Real operators take ``torch.float32`` (or ``float64``), complex ones ``torch.complex64``
    (or ``complex128``).

    Subclasses set ``domain_shape``, ``range_shape``, ``domain_is_complex`` and ``range_is_complex`` (in
    ``__init__``, after ``super().__init__()``) and implement :meth:`_forward_impl` and :meth:`_adjoint_impl`, which receive
    already validated tensors and must broadcast over leading dimensions.

    Set the class attribute ``native_autograd = True`` when :meth:`_forward_impl` is made of differentiable torch ops and the
    operator has parameters that must receive gradients (for example an estimated k-space shift): calls then bypass
    the custom autograd function so that gradients also flow to the operator's parameters.

    Example:
        >>> from rim_monai.operators import Identity
        >>> A = Identity((4, 4))
        >>> x = torch.randn(2, 1, 4, 4)
        >>> torch.allclose(A.adjoint(A(x)), x)
        True
    """

    native_autograd: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.domain_shape: tuple[int, ...] = ()
        self.range_shape: tuple[int, ...] = ()
        self.domain_is_complex: bool = False
        self.range_is_complex: bool = False
        # an empty buffer that follows .to(device), so the operator always knows where it lives
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        self._opnorm_cache: dict[tuple[str, torch.dtype], float] = {}

    # ------------------------------------------------------------------ to implement
    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` on a validated tensor of shape ``(*batch, *domain_shape)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward_impl")

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        """``A^H y`` on a validated tensor of shape ``(*batch, *range_shape)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _adjoint_impl")

    # ------------------------------------------------------------------ public API
    @property
    def device(self) -> torch.device:
        """The device the operator's buffers live on."""
        return self._device_anchor.device

    def forward(self, x: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Apply :math:`A`: ``(*batch, *domain_shape) -> (*batch, *range_shape)``.

        Args:
            x: the image batch.
            check: validate shape, dtype, device and finiteness (``ValueError`` on mismatch).
        """
        if check:
            check_tensor(x, "x", self.domain_shape, self.domain_is_complex, self.device)
        if self.native_autograd:
            return self._forward_impl(x)
        return _Apply.apply(x, self)

    def adjoint(self, y: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Apply :math:`A^H`: ``(*batch, *range_shape) -> (*batch, *domain_shape)``.

        Args:
            y: the measurement batch.
            check: validate shape, dtype, device and finiteness (``ValueError`` on mismatch).
        """
        if check:
            check_tensor(y, "y", self.range_shape, self.range_is_complex, self.device)
        if self.native_autograd:
            return self._adjoint_impl(y)
        return _ApplyAdjoint.apply(y, self)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the normal operator :math:`A^H A` (same shape as ``x``)."""
        return self.adjoint(self.forward(x), check=False)

    @property
    def H(self) -> "AdjointOperator":
        """The adjoint as an operator of its own (``A.H(y) == A.adjoint(y)``)."""
        return AdjointOperator(self)

    def opnorm(self, iterations: int = 50, tol: float = 1e-5, seed: int = 0, recompute: bool = False) -> float:
        r"""Operator norm :math:`\|A\|_2` by power iteration on :math:`A^H A`, cached per device and dtype.

        Args:
            iterations: maximum number of power iterations.
            tol: stop when the relative change of the estimate falls below this.
            seed: seed of the random start vector (so the result is reproducible).
            recompute: ignore the cache.

        Returns:
            The largest singular value, as a Python float.
        """
        dtype = torch.complex64 if self.domain_is_complex else torch.float32
        key = (str(self.device), dtype)
        if not recompute and key in self._opnorm_cache:
            return self._opnorm_cache[key]
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(self.domain_shape, generator=generator, dtype=dtype).to(self.device)
        x = x / torch.linalg.vector_norm(x)
        estimate = 0.0
        with torch.no_grad():
            for _ in range(iterations):
                z = self.normal(x)
                norm = float(torch.linalg.vector_norm(z))
                if norm == 0.0:
                    break
                x = z / norm
                new = math.sqrt(norm)
                if estimate > 0 and abs(new - estimate) <= tol * new:
                    estimate = new
                    break
                estimate = new
        self._opnorm_cache[key] = estimate
        return estimate

    def extra_repr(self) -> str:
        return f"domain_shape={self.domain_shape}, range_shape={self.range_shape}"


class AdjointOperator(LinearOperator):
    """The adjoint :math:`A^H` of a :class:`LinearOperator`, itself a linear operator (its adjoint is ``A``)."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__()
        self.op = op
        self.domain_shape, self.range_shape = op.range_shape, op.domain_shape
        self.domain_is_complex, self.range_is_complex = op.range_is_complex, op.domain_is_complex

    @property
    def device(self) -> torch.device:
        return self.op.device

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(x, check=False)

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.forward(y, check=False)

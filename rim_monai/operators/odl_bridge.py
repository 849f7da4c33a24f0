"""Any linear ODL operator as a batched :class:`~rim_monai.operators.base.LinearOperator`.

ODL operators act on one space element at a time. :func:`from_odl` wraps one so that it takes torch tensors of
shape ``(*batch, *domain_shape)``: the leading dimensions are flattened and the operator is applied to each element
(the only per-sample loop in the package, and the reason the ray transform also has a sparse-matrix backend).

The adjoint is ODL's own ``op.adjoint``, rescaled so that it is the adjoint for the *plain* tensor inner product
``<a, b> = sum(conj(a) * b)`` every other rim_monai operator uses. ODL spaces carry a weighted inner product
``<a, b>_w = w * sum(conj(a) * b)`` (``w`` the cell volume of a discretised space), so ODL's Hilbert-space adjoint
:math:`A^*` and the Euclidean adjoint :math:`A^H` differ by the constant

.. math::
    A^H = \\frac{w_\\mathrm{domain}}{w_\\mathrm{range}} A^*,

exactly the factor ``odl.contrib.torch.OperatorFunction`` applies in its backward pass. This assumes ``op.adjoint``
is the adjoint for ODL's weighted inner products, as for ODL's ray transform and differential operators; ODL 1.0's
``MatrixOperator.adjoint`` is the plain conjugate transpose whatever the weighting, so wrap matrices on unweighted
spaces (``odl.rn``/``odl.cn`` defaults).
"""

from __future__ import annotations

import numpy as np
import torch

from rim_monai.operators.base import LinearOperator

__all__ = ["from_odl", "OdlOperator"]


def _space_info(space, name: str) -> tuple[tuple[int, ...], bool, float, np.dtype]:
    """Shape, complexness, constant inner-product weight and dtype of an ODL tensor or product space."""
    import odl

    if isinstance(space, odl.ProductSpace):
        if not space.is_power_space:
            raise ValueError(f"{name}: only power spaces (all components alike) are supported, got {space!r}.")
        shape, complex_, inner, dtype = _space_info(space[0], name)
        outer = getattr(space.weighting, "const", None)
        if outer is None:
            raise ValueError(f"{name}: expected a constant product-space weighting, got {space.weighting!r}.")
        return (len(space),) + shape, complex_, float(outer) * inner, dtype
    if not hasattr(space, "shape") or not hasattr(space, "weighting"):
        raise ValueError(f"{name}: expected an ODL TensorSpace, DiscretizedSpace or power ProductSpace, got {space!r}.")
    const = getattr(space.weighting, "const", None)
    if const is None:
        raise ValueError(
            f"{name}: expected a constant (or no) inner-product weighting, got {type(space.weighting).__name__}; "
            "array or matrix weightings have no single Euclidean rescaling."
        )
    return tuple(int(s) for s in space.shape), bool(space.is_complex), float(const), np.dtype(space.dtype)


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


class OdlOperator(LinearOperator):
    r"""A linear ODL operator :math:`A` as a batched torch operator with an exact adjoint.

    Shapes: ``x`` is ``(*batch, *op.domain.shape)`` (a power product space such as the range of ``odl.Gradient``
    counts as ``(n, *component_shape)``) and ``A(x)`` is ``(*batch, *op.range.shape)``. The computation runs in the
    ODL spaces' dtype (usually ``float32``) and the result is cast back to the input dtype.

    Data movement: if the ODL spaces use the ``'pytorch'`` array backend on the input's device, tensors are handed
    to ODL without a copy (for ``astra_cuda`` ray transforms data then stays on the GPU); otherwise each element
    goes through a NumPy array on the CPU.

    Args:
        op: a linear ``odl.Operator`` (``op.is_linear``) whose domain and range are tensor, discretised or power
            product spaces with constant weighting.
        batch_loop_ok: allow more than one element in the leading dimensions (applied one after another). With
            ``False`` a batch larger than one raises ``ValueError``, for callers that must not hide a Python loop.

    Raises:
        ValueError: if ``op`` is not a linear ODL operator or its spaces are not supported.

    Example:
        >>> import odl
        >>> A = from_odl(odl.MatrixOperator(np.array([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])))
        >>> A(torch.ones(4, 2, dtype=torch.float64)).shape
        torch.Size([4, 3])
    """

    def __init__(self, op, batch_loop_ok: bool = True) -> None:
        super().__init__()
        import odl

        if not isinstance(op, odl.Operator):
            raise ValueError(f"op: expected an odl.Operator, got {type(op).__name__}.")
        if not op.is_linear:
            raise ValueError(f"op: expected a linear ODL operator, got a non-linear {type(op).__name__}.")
        self.odl_op = op
        self.batch_loop_ok = bool(batch_loop_ok)
        self.domain_shape, self.domain_is_complex, w_dom, self._dom_dtype = _space_info(op.domain, "op.domain")
        self.range_shape, self.range_is_complex, w_ran, self._ran_dtype = _space_info(op.range, "op.range")
        self._adjoint_scale = w_dom / w_ran
        self._odl_adjoint = None

    # -- element conversion ------------------------------------------------------------------
    @staticmethod
    def _to_element(space, value: torch.Tensor, dtype: np.dtype):
        impl = getattr(space, "impl", None)
        if impl == "pytorch" and str(getattr(space, "device", "cpu")) == str(value.device):
            return space.element(value.to(_torch_dtype(dtype)).contiguous())
        return space.element(value.detach().cpu().numpy().astype(dtype, copy=False))

    @staticmethod
    def _from_element(element, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        data = element.asarray() if hasattr(element, "asarray") else element.data
        if isinstance(data, torch.Tensor):
            out = data
        else:
            out = torch.from_numpy(np.ascontiguousarray(np.asarray(data)))
        return out.reshape(shape).to(device=like.device, dtype=like.dtype)

    def _apply_odl(self, op, value: torch.Tensor, in_shape, out_shape, in_dtype, scale: float) -> torch.Tensor:
        lead = value.shape[: value.ndim - len(in_shape)]
        flat = value.detach().reshape((-1,) + tuple(in_shape))
        if flat.shape[0] > 1 and not self.batch_loop_ok:
            raise ValueError(
                f"x: got {flat.shape[0]} elements in the leading dimensions {tuple(lead)} but batch_loop_ok=False; "
                "pass one element at a time or build the operator with batch_loop_ok=True."
            )
        double = value.dtype in (torch.float64, torch.complex128)
        out_complex = self.range_is_complex if op is self.odl_op else self.domain_is_complex
        if out_complex:
            out_dtype = torch.complex128 if double else torch.complex64
        else:
            out_dtype = torch.float64 if double else torch.float32
        like = torch.empty(0, dtype=out_dtype, device=value.device)
        results = [
            self._from_element(op(self._to_element(op.domain, item, in_dtype)), like, tuple(out_shape)) for item in flat
        ]
        out = torch.stack(results) if results else flat.new_zeros((0,) + tuple(out_shape), dtype=out_dtype)
        if scale != 1.0:
            out = out * scale
        return out.reshape(tuple(lead) + tuple(out_shape))

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_odl(self.odl_op, x, self.domain_shape, self.range_shape, self._dom_dtype, 1.0)

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        if self._odl_adjoint is None:
            self._odl_adjoint = self.odl_op.adjoint
        return self._apply_odl(self._odl_adjoint, y, self.range_shape, self.domain_shape, self._ran_dtype, self._adjoint_scale)

    def extra_repr(self) -> str:
        return f"{type(self.odl_op).__name__}, " + super().extra_repr()


def from_odl(op, batch_loop_ok: bool = True) -> OdlOperator:
    """Wrap any linear ODL *operator* as a batched :class:`LinearOperator` with an exact (Euclidean) adjoint.

    This takes an ``odl.Operator`` (one ODL call per sample). For a ray transform, build it from the ODL *space and
    geometry* with :meth:`RayTransform.from_geometry <rim_monai.operators.RayTransform.from_geometry>` (also named
    ``RayTransform.from_odl``) instead: that one has the batched sparse-matrix backend and ``fbp``.

    Args:
        op: a linear ``odl.Operator``; see :class:`OdlOperator`.
        batch_loop_ok: allow leading dimensions with more than one element (applied one by one).

    Returns:
        An :class:`OdlOperator` mapping ``(*batch, *op.domain.shape)`` to ``(*batch, *op.range.shape)``.

    Example:
        >>> import odl
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), dtype="float32")
        >>> D = from_odl(odl.PartialDerivative(space, axis=0))
        >>> D(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 1, 8, 8])
    """
    return OdlOperator(op, batch_loop_ok=batch_loop_ok)

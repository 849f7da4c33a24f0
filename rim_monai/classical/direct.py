"""Direct (one-shot) reconstructions: the adjoint ("zero-filled") image and filtered back-projection."""

from __future__ import annotations

import torch

from rim_monai.classical.batching import check_measurements
from rim_monai.operators.base import LinearOperator

__all__ = ["zero_filled", "fbp"]


def zero_filled(y: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
    r"""The adjoint reconstruction :math:`\hat x = A^H y`.

    For :class:`~rim_monai.operators.MaskedFourier` this is the zero-filled inverse FFT (coil-combined with the
    conjugate sensitivities when ``sens`` is set); for a ray transform it is the unfiltered back-projection; for the
    identity it returns ``y``.

    Args:
        y: measurements, ``(*batch, *operator.range_shape)``.
        operator: the forward model :math:`A`.

    Returns:
        ``(*batch, *operator.domain_shape)``, the dtype of the operator's domain.

    Raises:
        ValueError: if ``operator`` is not a ``LinearOperator`` or ``y`` has the wrong shape, dtype or device.

    Example:
        >>> from rim_monai.operators import Identity
        >>> zero_filled(torch.ones(2, 1, 8, 8), Identity((8, 8))).shape
        torch.Size([2, 1, 8, 8])
    """
    check_measurements(y, operator)
    return operator.adjoint(y)


def fbp(
    y: torch.Tensor, operator: LinearOperator, filter: str = "hann", frequency_scaling: float = 1.0
) -> torch.Tensor:
    r"""Filtered back-projection :math:`\hat x = A^H (h * y)`, delegated to ``operator.fbp``.

    The ramp filter :math:`|\omega|` is apodised by ``filter`` (``"ram-lak"``, ``"shepp-logan"``, ``"cosine"``,
    ``"hamming"``, ``"hann"``, as the operator supports) and cut off at ``frequency_scaling`` times the Nyquist
    frequency; the operator owns the geometry-dependent weighting.

    Args:
        y: sinograms, ``(*batch, *operator.range_shape)``.
        operator: an operator with the ``"fbp"`` ability (``operator.supports("fbp")``), such as
            :class:`~rim_monai.operators.RayTransform`.
        filter: apodisation window name, passed through.
        frequency_scaling: relative cut-off in ``(0, 1]``, passed through.

    Returns:
        ``(*batch, *operator.domain_shape)``.

    Raises:
        ValueError: if ``y`` does not fit the operator, or ``frequency_scaling`` is outside ``(0, 1]``;
            :class:`~rim_monai.operators.UnsupportedAbilityError` (a ``ValueError`` too, starting ``operator:``)
            when the operator does not support ``"fbp"``.

    Example:
        >>> from rim_monai.operators import RayTransform  # doctest: +SKIP
        >>> A = RayTransform((64, 64), num_angles=30)  # doctest: +SKIP
        >>> x_fbp = fbp(A(torch.rand(1, 1, 64, 64)), A, filter="hann")  # doctest: +SKIP
    """
    check_measurements(y, operator)
    operator.require("fbp", "operator")
    if not (0.0 < float(frequency_scaling) <= 1.0):
        raise ValueError(f"frequency_scaling: expected a value in (0, 1], got {frequency_scaling!r}.")
    return operator.fbp(y, filter=filter, frequency_scaling=frequency_scaling)

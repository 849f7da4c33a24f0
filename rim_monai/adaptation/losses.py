r"""The two terms of the Reuse & Regularize objective (Gilton, Ongie & Willett 2021).

.. math::
    L(\theta, \psi) = \underbrace{\frac{1}{N} \sum_{i=1}^N \big\| W_i^{1/2} \big(A(\psi)\, f_\theta(y_i, A(\psi))
    - y_i\big) \big\|_2^2}_{\text{data term } D} \; + \; \mu\, \|\theta - \theta_0\|_2^2

:func:`data_consistency` is the per-sample data term (``W_i = 1`` unless a noise-aware weighting is given),
:func:`proximity_penalty` the squared distance of the parameters to the trained ones :math:`\theta_0`, and
:func:`transmission_weights` a noise-aware weighting for log-transformed CT data.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import torch

from rim_monai.operators.base import LinearOperator

__all__ = ["data_consistency", "proximity_penalty", "transmission_weights", "transmission_noise_energy"]


def data_consistency(
    x: torch.Tensor, operator: LinearOperator, y: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Per-sample data term :math:`\sum_j w_j |(A x)_j - y_j|^2` (complex residuals by their modulus).

    Args:
        x: images ``(B, *)`` in the operator's domain (``(B, C, H, W)`` for images).
        operator: the forward operator :math:`A`.
        y: measurements ``(B, *)`` in the operator's range.
        weights: non-negative weights broadcastable to ``y`` (inverse noise variances); ``None`` for 1.

    Returns:
        A real tensor of shape ``(B,)``: the weighted squared residual norm of each sample.

    Example:
        >>> from rim_monai.operators import Identity
        >>> data_consistency(torch.ones(2, 1, 4, 4), Identity((4, 4)), torch.zeros(2, 1, 4, 4))
        tensor([16., 16.])
    """
    residual = operator(x) - y
    squared = residual.real**2 + residual.imag**2 if residual.is_complex() else residual**2
    if weights is not None:
        squared = squared * weights
    return squared.reshape(squared.shape[0], -1).sum(dim=1)


def proximity_penalty(parameters: Iterable[torch.Tensor], reference: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Squared distance :math:`\|\theta - \theta_0\|_2^2` summed over all parameter tensors.

    Args:
        parameters: the current parameters :math:`\theta` (in the same order as ``reference``).
        reference: the trained parameters :math:`\theta_0` (detached copies).

    Returns:
        A scalar tensor (0 when there are no parameters).

    Raises:
        ValueError: naming ``reference`` when the numbers or shapes of the tensors differ.
    """
    parameters = list(parameters)
    if len(parameters) != len(reference):
        raise ValueError(f"reference: expected {len(parameters)} tensors (one per parameter), got {len(reference)}.")
    terms = []
    for p, p0 in zip(parameters, reference):
        if p.shape != p0.shape:
            raise ValueError(f"reference: a tensor has shape {tuple(p0.shape)}, expected {tuple(p.shape)}.")
        diff = p - p0
        terms.append((diff.real**2 + diff.imag**2 if diff.is_complex() else diff**2).sum())
    return torch.stack(terms).sum() if terms else torch.zeros(())


def transmission_weights(y: torch.Tensor) -> torch.Tensor:
    r"""Noise-aware weights for log-transformed transmission (CT) data, normalised to mean 1 per sample.

    With :math:`I_0` photons per bin, the count is Poisson with mean :math:`I_0 e^{-y}` and the variance of the
    log-transformed datum is about :math:`1 / (I_0 e^{-y})`, so the inverse-variance weight is proportional to
    :math:`e^{-y}`. Normalising to mean 1 keeps the data term on the scale of the unweighted one.

    Args:
        y: log-transformed sinograms ``(B, *)`` (line integrals, non-negative up to noise).

    Returns:
        Weights of the same shape as ``y``.

    Example:
        >>> w = transmission_weights(torch.tensor([[0.0, 1.0]]))
        >>> float(w.mean())
        1.0
    """
    w = torch.exp(-(y - y.reshape(y.shape[0], -1).amin(dim=1).reshape((-1,) + (1,) * (y.ndim - 1))))
    return w / w.reshape(w.shape[0], -1).mean(dim=1).reshape((-1,) + (1,) * (y.ndim - 1))


def transmission_noise_energy(y: torch.Tensor, photons: float) -> torch.Tensor:
    r"""Expected noise energy :math:`E\|y - A x_{true}\|^2` of each log-transformed transmission (CT) sinogram.

    With :math:`I_0` photons per bin, the variance of :math:`y_j = -\log(n_j / I_0)` is about
    :math:`e^{y_j} / I_0`, so the noise energy of a sample is :math:`\sum_j e^{y_j} / I_0`, computed from the
    measurements alone. It is the level the (unweighted) data term of
    :func:`~rim_monai.adaptation.adapt` reaches when the reconstruction is the true image (Morozov's discrepancy
    principle): when ``report.data_term_before`` is already within a small factor of it, the swapped network explains
    the data to within the noise and R&R has little left to fit but noise.

    Args:
        y: log-transformed sinograms ``(B, *)``.
        photons: :math:`I_0`, the unattenuated photon count per detector bin (the CT bundle's ``photons``).

    Returns:
        ``(B,)`` noise energies, in the units of the data term.

    Raises:
        ValueError: naming ``photons`` when it is not a positive number.

    Example:
        >>> float(transmission_noise_energy(torch.zeros(1, 1, 4, 5), photons=10.0)[0])
        2.0
    """
    if isinstance(photons, bool) or not isinstance(photons, numbers.Real) or not 0 < float(photons) < math.inf:
        raise ValueError(f"photons: expected a positive photon count per bin, got {photons!r}.")
    return torch.exp(y.reshape(y.shape[0], -1).double()).sum(dim=1) / float(photons)

"""Learned primal-dual reconstruction (Adler & Öktem 2018) and the measurement layout of its dual network.

Measurement layout seen by the dual network: a measurement tensor of shape ``(B, *lead, M1, M2)`` (the last two
dimensions of ``A.range_shape``; everything before them is folded into the batch) becomes ``(N, k, M1, M2)`` with
``N = B * prod(lead)`` and ``k = 2`` for complex measurements (real, imaginary) or 1. A one-dimensional range
``(M,)`` becomes ``(N, k, 1, M)``. So:

* CT (``RayTransform``): ``y`` ``(B, C, angles, detectors)`` -> sinograms ``(B*C, 1, angles, detectors)``;
* MRI (``MaskedFourier``): ``y`` ``(B, coils, H, W)`` complex -> ``(B*coils, 2, H, W)``: each coil's k-space is its
  own batch item, so one set of weights serves any number of coils;
* denoising / deblurring / super-resolution: ``(B, C, h, w)`` -> ``(B*C, 1, h, w)``;
* random projections: ``(B, C, M)`` -> ``(B*C, 1, 1, M)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from rim_monai.networks.base import IterativeNetwork
from rim_monai.networks.blocks import ConvStack
from rim_monai.networks.utils import (channels_to_complex, complex_to_channels, from_channels, initial_estimate,
                                     mixed_precision, to_channels)
from rim_monai.networks.utils import autocast_dtype as autocast_dtype_of
from rim_monai.operators.base import LinearOperator

__all__ = ["LearnedPrimalDual", "fold_measurements", "unfold_measurements"]


def fold_measurements(t: torch.Tensor, range_ndim: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Measurement tensor -> ``(N, k, M1, M2)`` real images for the dual network (see the module docstring).

    Args:
        t: ``(*lead, *range_shape)`` measurements.
        range_ndim: ``len(A.range_shape)``.

    Returns:
        The folded real tensor and the original shape (for :func:`unfold_measurements`).
    """
    shape = tuple(t.shape)
    spatial = min(range_ndim, 2)
    folded = t.reshape(-1, 1, *shape[len(shape) - spatial :])
    if spatial == 1:
        folded = folded.unsqueeze(-2)
    return (complex_to_channels(folded) if folded.is_complex() else folded), shape


def unfold_measurements(t: torch.Tensor, shape: Sequence[int], complex_: bool) -> torch.Tensor:
    """Inverse of :func:`fold_measurements`: ``(N, k, M1, M2)`` -> ``shape`` (complex when ``complex_``)."""
    if complex_:
        t = channels_to_complex(t)
    return t.reshape(tuple(shape))


class LearnedPrimalDual(IterativeNetwork):
    r"""Learned primal-dual (Adler & Öktem, *IEEE TMI* 2018).

    With the normalised operator :math:`\tilde A = A/\|A\|` and data :math:`\tilde y = y/\|A\|`, primal memory
    :math:`f = (f^{(1)}, \dots, f^{(N_p)})` and dual memory :math:`h = (h^{(1)}, \dots, h^{(N_d)})`:

    .. math::
        h_{i} &= h_{i-1} + \Gamma_{\theta_i^d}\big(h_{i-1},\; \tilde A f_{i-1}^{(2)},\; \tilde y\big) \\
        f_{i} &= f_{i-1} + \Lambda_{\theta_i^p}\big(f_{i-1},\; \tilde A^H h_{i}^{(1)}\big), \qquad i = 1, \dots, I,

    and the estimate is :math:`f_I^{(1)}`. :math:`\Gamma` and :math:`\Lambda` are blocks of three 3x3 convolutions
    (``features`` hidden channels, PReLU). :math:`h_0 = 0`; :math:`f_0 = 0` (``init="zeros"``) or every primal
    channel set to ``A.fbp(y)`` (``"fbp"``; :math:`A^H y/\|A\|^2` for operators without FBP, the zero-filled image
    for MRI). The dual network sees measurements in the layout of :func:`fold_measurements`.

    Args:
        in_channels: image channels ``C`` (each primal memory slot holds a ``C``-channel image).
        complex_: complex images (processed as real/imaginary channels).
        iterations: :math:`I` (10 in the paper).
        n_primal: primal memory :math:`N_p` (5).
        n_dual: dual memory :math:`N_d` (5).
        features: hidden widths of each block (``(32, 32)``: three convolutions with 32 features).
        init: ``"zeros"`` or ``"fbp"``.
        share_weights: one primal and one dual block for all iterations (then any number of iterations runs).
        complex_measurements: whether the measurements are complex (k-space); defaults to ``complex_``.
        channels_last: run the primal and dual blocks on ``torch.channels_last`` tensors (the same numbers to float
            rounding; faster oneDNN convolutions on CPU).
        autocast_dtype: ``None`` (default) or ``"bfloat16"`` / ``"float16"``: run the blocks under
            ``torch.autocast`` in that dtype (mixed precision for training, as ``RIM(autocast_dtype=...)``); the
            operator, the memories :math:`f, h` and the parameters stay in float32, and a checkpoint trained either
            way loads into the other (the parameters are the same).

    Shapes:
        ``y``: ``(B, ..., *A.range_shape)``; returns images shaped like ``A.adjoint(y)``, or the list of the
        ``iterations`` estimates with ``return_all=True``.

    Example:
        >>> from rim_monai.operators import Identity
        >>> lpd = LearnedPrimalDual(iterations=2, n_primal=3, n_dual=3, features=(8,))
        >>> [tuple(x.shape) for x in lpd(torch.rand(1, 1, 8, 8), Identity((8, 8)), return_all=True)]
        [(1, 1, 8, 8), (1, 1, 8, 8)]
    """

    def __init__(
        self,
        in_channels: int = 1,
        complex_: bool = False,
        iterations: int = 10,
        n_primal: int = 5,
        n_dual: int = 5,
        features: Sequence[int] = (32, 32),
        init: str = "zeros",
        share_weights: bool = False,
        complex_measurements: bool | None = None,
        channels_last: bool = False,
        autocast_dtype: str | None = None,
    ) -> None:
        super().__init__(in_channels, complex_, iterations, init, share_weights, init_modes=("zeros", "fbp"))
        self.channels_last, self.autocast_dtype = bool(channels_last), autocast_dtype_of(autocast_dtype)
        if int(n_primal) < 1 or int(n_dual) < 1:
            raise ValueError(f"n_primal, n_dual: expected positive numbers, got {n_primal}, {n_dual}.")
        self.n_primal, self.n_dual = int(n_primal), int(n_dual)
        self.complex_measurements = self.complex_ if complex_measurements is None else bool(complex_measurements)
        self.features = tuple(features)
        c, k = self.real_channels, (2 if self.complex_measurements else 1)
        self.primal_blocks = nn.ModuleList(
            ConvStack((self.n_primal + 1) * c, self.n_primal * c, self.features) for _ in range(self.num_weight_sets)
        )
        self.dual_blocks = nn.ModuleList(
            ConvStack((self.n_dual + 2) * k, self.n_dual * k, self.features) for _ in range(self.num_weight_sets)
        )

    def block(self, block: nn.Module, u: torch.Tensor) -> torch.Tensor:
        """One primal or dual block on ``u`` ``(N, channels, H, W)``, in ``channels_last`` layout and under
        ``autocast_dtype`` when set (:func:`~rim_monai.networks.utils.mixed_precision`); returns ``u``'s dtype."""
        return mixed_precision(block, u, channels_last=self.channels_last, dtype=self.autocast_dtype).to(u.dtype)

    def iterate(self, y: torch.Tensor, A: LinearOperator, adjoint: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        """The estimates :math:`f_1^{(1)}, \\dots, f_I^{(1)}` (``I = iterations``; see the class docstring).

        Raises:
            ValueError: naming ``A`` when its measurements are not of the kind the dual network was built for.
        """
        if bool(A.range_is_complex) != self.complex_measurements:
            raise ValueError(
                f"A: the dual network was built for {'complex' if self.complex_measurements else 'real'} measurements "
                f"(complex_measurements={self.complex_measurements}), the operator's are "
                f"{'complex' if A.range_is_complex else 'real'}."
            )
        norm = float(A.opnorm()) or 1.0
        k, c = (2 if A.range_is_complex else 1), self.real_channels
        range_ndim = len(A.range_shape)
        y_folded, y_shape = fold_measurements(y / norm, range_ndim)
        if self.init == "fbp":
            f = to_channels(initial_estimate(y, A, "fbp", adjoint)).repeat(1, self.n_primal, 1, 1)
        else:
            f = to_channels(adjoint).new_zeros(adjoint.shape[0], self.n_primal * c, *adjoint.shape[2:])
        h = y_folded.new_zeros(y_folded.shape[0], self.n_dual * k, *y_folded.shape[2:])
        estimates = []
        for i in range(iterations):
            f2 = f[:, c : 2 * c] if self.n_primal > 1 else f[:, :c]
            forward, _ = fold_measurements(A(from_channels(f2, self.complex_), check=False) / norm, range_ndim)
            h = h + self.block(self.dual_blocks[self.weight_index(i)], torch.cat([h, forward, y_folded], dim=1))
            back = A.adjoint(unfold_measurements(h[:, :k], y_shape, A.range_is_complex), check=False) / norm
            f = f + self.block(self.primal_blocks[self.weight_index(i)], torch.cat([f, to_channels(back)], dim=1))
            estimates.append(from_channels(f[:, :c], self.complex_))
        return estimates

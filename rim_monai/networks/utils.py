"""Helpers shared by the reconstruction networks: input checks, real/complex channel layouts, initial estimates.

Every network in :mod:`rim_monai.networks` is called as ``net(y, A)``. The image layout is whatever ``A.adjoint(y)``
returns; the networks require it to be ``(B, C, H, W)`` (2D images with ``C`` image channels). Complex images
(MRI) are processed as ``2C`` real channels, ordered ``(re_1, im_1, re_2, im_2, ...)``
(:func:`rim_monai.operators.fourier.complex_to_channels` and its inverse, re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rim_monai.classical.batching import sqnorm
from rim_monai.classical.cg import cg_normal, cg_normal_shifted
from rim_monai.classical.noise import estimate_gaussian_sigma
from rim_monai.operators.base import LinearOperator, check_tensor
from rim_monai.operators.fourier import channels_to_complex, complex_to_channels

__all__ = [
    "complex_to_channels",
    "channels_to_complex",
    "to_channels",
    "from_channels",
    "check_inputs",
    "sigma_like",
    "noise_input_channel",
    "NOISE_FLOOR",
    "NOISE_LOG_CENTER",
    "initial_estimate",
    "step_scale",
    "INIT_MODES",
    "CG_INIT_ITERATIONS",
    "data_consistency",
    "DC_ITERATIONS",
    "DC_HOLDOUT",
    "DC_HOLDOUT_ITERATIONS",
    "DC_HOLDOUT_LAMBDAS",
    "DC_LEARNED",
    "DC_LEARNED_ITERATIONS",
    "holdout_data_consistency",
    "check_count",
    "command_line_none_hint",
    "AUTOCAST_DTYPES",
    "autocast_dtype",
    "mixed_precision",
]

INIT_MODES = ("zeros", "adjoint", "fbp", "cg")

#: CG iterations of the ``"cg"`` start
CG_INIT_ITERATIONS = 8
#: relative-residual tolerance of the networks' CG (the ``"cg"`` start and :func:`data_consistency`; noise-free data
#: stop early)
NETWORK_CG_TOL = 1e-3
#: CG iterations of a data-consistency step with a fixed weight
DC_ITERATIONS = 4
#: the ``dc_lambda`` value that chooses the weight per sample on held-out k-space (:func:`holdout_data_consistency`)
DC_HOLDOUT = "holdout"
#: CG iterations of the hold-out choice (multi-shift CG serves every candidate at once; at 4 iterations the small
#: weights are not reached: MNI 8 coils 4x gained 1.4 dB instead of 3.0, bundle README)
DC_HOLDOUT_ITERATIONS = 16
#: the data-consistency weights the hold-out choice compares, besides no step at all
DC_HOLDOUT_LAMBDAS: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
#: the ``dc_lambda`` value whose weight the RIM predicts per sample from its last recurrent state (trained with it)
DC_LEARNED = "learned"
#: CG iterations of the learned step (the weights it learns take this count into account)
DC_LEARNED_ITERATIONS = 8


def command_line_none_hint(value: Any) -> str:
    """A sentence for an error about ``value`` when it is the JSON spelling of ``None`` typed on the command line:
    ``python -m monai.bundle run`` parses its arguments with ``fire``, which reads ``None`` but keeps ``null`` as a
    string; empty otherwise."""
    if isinstance(value, str) and value.strip().lower() == "null":
        return " On the command line write None (python -m monai.bundle run reads None, not null)."
    return ""


def check_count(value: int, name: str, what: str) -> int:
    """``value`` as a positive ``int`` (a count of iterations or steps).

    Raises:
        ValueError: ``"<name>: expected a positive number of <what>, got <value>."`` for ``bool``, zero or negative.
    """
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{name}: expected a positive number of {what}, got {value!r}.")
    return int(value)

#: the mixed-precision dtypes of the networks' ``autocast_dtype`` option
AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast_dtype(name: str | None) -> torch.dtype | None:
    """The ``torch.dtype`` of a network's ``autocast_dtype`` argument (``None``: no autocast).

    Raises:
        ValueError: naming ``autocast_dtype`` when ``name`` is not a key of :data:`AUTOCAST_DTYPES`.
    """
    if name is not None and name not in AUTOCAST_DTYPES:
        raise ValueError(f"autocast_dtype: expected None or one of {tuple(AUTOCAST_DTYPES)}, got {name!r}."
                         + command_line_none_hint(name))
    return None if name is None else AUTOCAST_DTYPES[name]


def mixed_precision(
    block: Callable[..., Any], u: torch.Tensor, *args: Any, channels_last: bool = False,
    dtype: torch.dtype | None = None,
) -> Any:
    """``block(u, *args)`` with ``u`` in ``torch.channels_last`` layout (when ``channels_last``) and under
    ``torch.autocast`` in ``dtype`` (when given).

    The learned blocks of the networks (RIM's update network, learned primal-dual's primal and dual blocks) run
    through this: with ``dtype=torch.bfloat16`` their convolutions (forward and backward) use the bfloat16 units
    (AMX / AVX-512-BF16 on CPU, tensor cores on GPU), while everything outside the block (operator, estimates,
    parameters) stays in float32. The caller casts the block's output back (``out.to(u.dtype)``).

    Args:
        block: the module or function to run.
        u: its input ``(B, C, H, W)``.
        args: further arguments of ``block`` (e.g. a recurrent state).
        channels_last: convert ``u`` to ``torch.channels_last`` first (oneDNN's fast layout on CPU).
        dtype: autocast dtype (:func:`autocast_dtype`), ``None`` for none.

    Example:
        >>> conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        >>> mixed_precision(conv, torch.rand(1, 2, 8, 8), channels_last=True, dtype=torch.bfloat16).dtype
        torch.bfloat16
    """
    if channels_last:
        u = u.contiguous(memory_format=torch.channels_last)
    if dtype is None:
        return block(u, *args)
    with torch.autocast(u.device.type, dtype=dtype):
        return block(u, *args)


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """Real tensors pass through; complex ones go through :func:`complex_to_channels`."""
    return complex_to_channels(x) if x.is_complex() else x


def from_channels(x: torch.Tensor, complex_: bool) -> torch.Tensor:
    """Inverse of :func:`to_channels` for a known kind."""
    return channels_to_complex(x) if complex_ else x


def check_inputs(y: torch.Tensor, A: LinearOperator, in_channels: int, complex_: bool) -> torch.Tensor:
    """Validate ``(y, A)`` at a network boundary and return ``A^H y`` (the image layout).

    Args:
        y: measurements ``(*batch, *A.range_shape)``.
        A: the forward operator.
        in_channels: the number of image channels ``C`` the network was built for.
        complex_: whether the network was built for complex images.

    Returns:
        ``A.adjoint(y)`` of shape ``(B, C, H, W)``.

    Raises:
        ValueError: ``A`` is not a :class:`LinearOperator` or its domain kind differs from the network's; ``y`` has
            the wrong shape, dtype, device, contains NaN, or maps to images that are not ``(B, C, H, W)``.
    """
    if not isinstance(A, LinearOperator):
        raise ValueError(f"A: expected a rim_monai LinearOperator, got {type(A).__name__}.")
    if bool(A.domain_is_complex) != bool(complex_):
        want, got = ("complex" if complex_ else "real"), ("complex" if A.domain_is_complex else "real")
        raise ValueError(f"A: the network was built for {want} images (complex_={complex_}), the operator's images are {got}.")
    check_tensor(y, "y", A.range_shape, A.range_is_complex, A.device)
    if y.ndim == len(A.range_shape):
        raise ValueError(
            f"y: expected a batch of measurements (B, ..., {', '.join(map(str, A.range_shape))}), got {tuple(y.shape)} "
            "without a batch dimension."
        )
    x = A.adjoint(y, check=False)
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"y: of shape {tuple(y.shape)} maps to images of shape {tuple(x.shape)} under A.adjoint; the network "
            f"expects (B, {in_channels}, H, W)."
        )
    return x


def sigma_like(sigma: float | torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """A noise level broadcastable to ``x`` (``(B, C, H, W)``): ``None`` -> 0, float, ``(B,)`` or ``(B, 1, 1, 1)``.

    Raises:
        ValueError: ``sigma`` is negative or its shape fits neither a scalar nor one value per sample.
    """
    dtype = x.real.dtype if x.is_complex() else x.dtype
    if sigma is None:
        return torch.zeros((), dtype=dtype, device=x.device)
    s = torch.as_tensor(sigma, dtype=dtype, device=x.device)
    if s.numel() == 1:
        s = s.reshape(())
    elif s.numel() == x.shape[0]:
        s = s.reshape(x.shape[0], *([1] * (x.ndim - 1)))
    else:
        raise ValueError(f"sigma: expected a float or one value per sample ({x.shape[0]},), got shape {tuple(s.shape)}.")
    if bool((s < 0).any()):
        raise ValueError("sigma: expected non-negative noise levels.")
    return s


#: noise levels below this (noise-free data; the estimate's own floor) are fed to the networks as this value
NOISE_FLOOR = 1e-6
#: :func:`noise_input_channel` feeds :math:`\log_{10}\sigma` minus this (images of unit scale: 0 near 35 dB SNR)
NOISE_LOG_CENTER = -2.5


def noise_input_channel(
    y: torch.Tensor, A: LinearOperator, sigma: float | torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor:
    r"""The noise level as a network input: :math:`\log_{10}\max(\sigma, \sigma_0) - c` per sample, ``(B, 1, 1, 1)``.

    :math:`\sigma` is ``sigma`` when given (a float or ``(B,)``), else estimated from the measurements by
    :func:`~rim_monai.classical.estimate_gaussian_sigma` (k-space of a :class:`~rim_monai.operators.MaskedFourier`:
    per coil, from the background or the corners; other operators: second differences), as the root-mean-square over coils
    and channels — the noise of the coil-combined image for maps whose root-sum-of-squares is 1. The floor
    :math:`\sigma_0` = :data:`NOISE_FLOOR` and the centre :math:`c` = :data:`NOISE_LOG_CENTER` put the value in
    about ``[-3.5, 1.5]`` for images of unit scale (as :class:`~rim_monai.networks.ScaleEquivariant` gives them).

    Args:
        y: measurements ``(B, *A.range_shape)``.
        A: their operator.
        sigma: the known noise standard deviation per measured entry, or ``None`` to estimate it.
        x: an image ``(B, C, H, W)`` giving the batch size, dtype and device of the result.

    Raises:
        ValueError: a bad ``sigma``, or (naming ``y``) measurements the noise cannot be estimated from.
    """
    dtype = x.real.dtype if x.is_complex() else x.dtype
    batch = x.shape[0]
    if sigma is None:
        level = estimate_gaussian_sigma(y, A).to(torch.float64)
        level = level.reshape(batch, -1).square().mean(dim=1).sqrt()
    else:
        level = sigma_like(sigma, x).to(torch.float64).expand(batch, 1, 1, 1)
    value = torch.log10(level.reshape(batch).clamp_min(NOISE_FLOOR)) - NOISE_LOG_CENTER
    return value.to(device=x.device, dtype=dtype).reshape(batch, 1, 1, 1)


def step_scale(A: LinearOperator) -> float:
    r""":math:`1 / \|A\|^2`, the Landweber step that makes :math:`A^H (A x - y)` commensurate with ``x``.

    For operators with :math:`\|A\| = 1` (denoising, orthonormal Fourier sampling) this is 1; for CT it undoes the
    large gain of the ray transform.
    """
    norm = float(A.opnorm())
    return 1.0 / (norm * norm) if norm > 0 else 1.0


def initial_estimate(
    y: torch.Tensor,
    A: LinearOperator,
    mode: str,
    adjoint: torch.Tensor | None = None,
    cg_iterations: int = CG_INIT_ITERATIONS,
    scale: float | None = None,
) -> torch.Tensor:
    r"""The starting image of an iterative network.

    * ``"zeros"``: :math:`x_0 = 0`.
    * ``"adjoint"``: :math:`x_0 = A^H y / \|A\|^2` (one Landweber step from zero with step :math:`1/\|A\|^2`).
    * ``"fbp"``: ``A.fbp(y)`` when the operator supports ``"fbp"`` (CT), else the ``"adjoint"`` start
      (zero-filled for MRI).
    * ``"cg"``: ``cg_iterations`` iterations of CGLS on :math:`A^H A x = A^H y` from zero
      (:func:`~rim_monai.classical.cg_normal`, :math:`\lambda = 0`, a sample stops at relative residual
      :data:`NETWORK_CG_TOL`): CG-SENSE for multi-coil MRI, a data-consistent start that a few iterations of a learned
      network could not reach from zero-filled (for single-coil Cartesian sampling it equals zero-filled). Computed
      without gradient: the start is an input of the network, not a learned part of it.

    Args:
        y: measurements.
        A: the operator.
        mode: one of :data:`INIT_MODES`.
        adjoint: ``A^H y`` if already computed.
        cg_iterations: the CG iterations of the ``"cg"`` start (> 0).
        scale: the ``"adjoint"`` start's factor (default :func:`step_scale` of ``A``).

    Raises:
        ValueError: unknown ``mode``.
    """
    if mode not in INIT_MODES:
        raise ValueError(f"init: expected one of {INIT_MODES}, got {mode!r}.")
    if adjoint is None:
        adjoint = A.adjoint(y, check=False)
    if mode == "zeros":
        return torch.zeros_like(adjoint)
    if mode == "fbp" and A.supports("fbp"):
        x0 = A.fbp(y)
        if x0.shape != adjoint.shape:
            raise ValueError(f"A: A.fbp(y) returned shape {tuple(x0.shape)}, expected that of A.adjoint(y) {tuple(adjoint.shape)}.")
        return x0.to(adjoint.dtype)
    if mode == "cg":  # cg_normal runs without gradient by default
        return cg_normal(y, A, lam=0.0, iterations=cg_iterations, tol=NETWORK_CG_TOL).to(adjoint.dtype)
    return adjoint * (step_scale(A) if scale is None else scale)


def data_consistency(x: torch.Tensor, y: torch.Tensor, A: LinearOperator, lam: float | torch.Tensor,
                     iterations: int) -> torch.Tensor:
    r"""A proximal data-consistency step on a network's output :math:`x`:

    .. math::
        \hat x = \arg\min_z \|A z - y\|_2^2 + \lambda \|z - x\|_2^2 = x + d, \qquad
        (A^H A + \lambda I)\, d = A^H (y - A x),

    with :math:`d` from ``iterations`` CG iterations started at zero (:func:`~rim_monai.classical.cg_normal` on the
    residual). Small :math:`\lambda` trusts the measurements (:math:`\lambda \to 0`: CG-SENSE started from
    :math:`x`), large :math:`\lambda` the network. :math:`\lambda` is scale-free for an operator of norm 1 (MRI's
    :class:`~rim_monai.operators.MaskedFourier` with normalised coil maps). Differentiable when gradients are on.

    Args:
        x: the network's estimate, shaped like ``A.adjoint(y)``.
        y: measurements.
        A: the operator.
        lam: :math:`\lambda > 0`: a float, or one value per sample ``(B,)`` (differentiable: a predicted weight
            learns through the CG iterations).
        iterations: CG iterations (> 0).

    Raises:
        ValueError: naming ``lam`` or ``iterations``.
    """
    if isinstance(lam, torch.Tensor):
        if lam.ndim != 1 or lam.shape[0] != x.shape[0] or not bool((lam > 0).all()):
            raise ValueError(f"lam: expected positive data-consistency weights, one per sample ({x.shape[0]},), got "
                             f"shape {tuple(lam.shape)}" + ("" if lam.ndim != 1 else f", values {lam.tolist()}") + ".")
    elif not lam > 0:
        raise ValueError(f"lam: expected a positive data-consistency weight, got {lam!r}.")
    else:
        lam = float(lam)
    residual = y - A(x, check=False)  # cg_normal checks iterations
    return x + cg_normal(residual, A, lam=lam, iterations=iterations, tol=NETWORK_CG_TOL,
                         differentiable=torch.is_grad_enabled())


def holdout_data_consistency(
    x: torch.Tensor,
    x_train: torch.Tensor,
    y: torch.Tensor,
    A: LinearOperator,
    train_mask: torch.Tensor,
    held_mask: torch.Tensor,
    lams: Sequence[float] = DC_HOLDOUT_LAMBDAS,
    iterations: int = DC_HOLDOUT_ITERATIONS,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The data-consistency step of :func:`data_consistency` with its weight chosen per sample on held-out k-space.

    How far to trust the measurements over the network depends on the scan: well-estimated coil maps and informative
    data (many coils, low acceleration) want a small :math:`\lambda`, coil maps estimated from a narrow calibration
    region (anatomy filling the field of view) want none at all. The choice is made as in self-supervised validation
    (SSDU, Yaman et al. 2020; :mod:`rim_monai.classical.holdout`): with the mask split into a training part
    :math:`M_{tr}` and a held-out part :math:`M_h` (:func:`~rim_monai.classical.holdout.split_measurements`) and
    ``x_train`` the network's estimate from the training part alone,

    .. math::
        E(\lambda) = \|M_h (A z_\lambda - y)\|^2, \qquad
        z_\lambda = \arg\min_z \|M_{tr}(A z - y)\|^2 + \lambda \|z - x_{train}\|^2,
        \qquad E(\infty) = \|M_h (A x_{train} - y)\|^2,

    and :math:`\lambda^* = \arg\min E` over ``lams`` and :math:`\infty` (no step). The output is :math:`x` (the
    estimate from all the data) after the step with :math:`\lambda^*`, or :math:`x` itself where :math:`\lambda^* =
    \infty`. Every candidate comes from one multi-shift CG run (:func:`~rim_monai.classical.cg_normal_shifted`), on
    the training part for the choice and on all the data for the output, ``iterations`` each. ``x_train`` must not
    have seen the held-out data, or larger weights win for that reason alone. No gradients flow through the step.

    Args:
        x: the network's estimate from all the data, shaped like ``A.adjoint(y)``: ``(B, C, H, W)`` complex.
        x_train: its estimate from ``y * train_mask`` with the operator ``A.replace(mask=train_mask)``.
        y: measurements ``(B, coils, H, W)``.
        A: the operator (a :class:`~rim_monai.operators.MaskedFourier`).
        train_mask: the training part of ``A.mask`` (broadcasts against ``y``).
        held_mask: its held-out part.
        lams: the candidate weights (> 0).
        iterations: CG iterations (> 0).

    Returns:
        ``(estimate, lam)``: the estimate shaped like ``x`` and the chosen weight per sample, shape of ``x``'s leading
        dimensions (``inf`` where no step was taken).

    Raises:
        ValueError: naming ``lams`` or ``iterations``.
    """
    iterations = check_count(iterations, "iterations", "CG iterations")
    if not lams or not all(float(v) > 0 for v in lams):
        raise ValueError(f"lams: expected positive data-consistency weights, got {lams!r}.")
    candidates = [float(v) for v in lams]
    nd_range, nd_domain = len(A.range_shape), len(A.domain_shape)
    with torch.no_grad():
        train = A.replace(mask=train_mask)
        predicted = A(x_train)  # its training part is train(x_train): one forward pass serves both
        steps = cg_normal_shifted((y - predicted) * train_mask, train, candidates, iterations, tol=NETWORK_CG_TOL)
        errors = [sqnorm(held_mask * (predicted + A(d) - y), nd_range) for d in steps]
        errors.append(sqnorm(held_mask * (predicted - y), nd_range))
        best = torch.stack(errors).argmin(dim=0)  # (*batch); len(candidates) means no step
        steps = cg_normal_shifted(y - A(x), A, candidates, iterations, tol=NETWORK_CG_TOL)
        steps = torch.cat([steps, torch.zeros_like(steps[:1])])
        index = best.reshape(1, *best.shape, *(1,) * nd_domain).expand(1, *steps.shape[1:])
        estimate = x + torch.gather(steps, 0, index)[0]
        lam = torch.tensor(candidates + [math.inf], dtype=torch.float64)[best.flatten().cpu()].reshape(best.shape)
    return estimate, lam

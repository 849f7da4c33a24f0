"""Operator part of the peer benchmark (:mod:`rim_monai.benchmarks.peers`): speed and adjoint accuracy.

CT: :class:`~rim_monai.operators.RayTransform` (``matrix`` backend) against deepinv's
``deepinv.physics.Tomography`` (same image size, the same number of views over 180°) and ODL's
``odl.contrib.torch.OperatorModule`` (ODL's ray transform and its adjoint, ASTRA CPU). MRI:
:class:`~rim_monai.operators.MaskedFourier` (8 coils) against deepinv's ``deepinv.physics.MultiCoilMRI`` and a SENSE
operator written with fastMRI's ``fft2c`` / ``ifft2c`` / ``complex_mul`` / ``complex_conj`` on real-view tensors,
checked first to give the same numbers.

Every contender runs in its own native layout (deepinv: real ``(B, 2, ...)`` channels; fastMRI: a trailing real/imag
axis); the layout conversions are not timed. Timings alternate the contenders: several rounds, each timing every
contender once with :func:`~rim_monai.benchmarks.operators.time_it`, and the median over rounds is reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch

from rim_monai.benchmarks.operators import time_it

__all__ = ["adjoint_error", "alternating_medians", "bench_ct_peers", "bench_mri_peers"]


def adjoint_error(forward: Callable[[torch.Tensor], torch.Tensor], adjoint: Callable[[torch.Tensor], torch.Tensor],
                  x: torch.Tensor, y: torch.Tensor) -> float:
    r"""Relative adjoint mismatch :math:`|\langle Ax, y\rangle - \langle x, A^T y\rangle| / (\|Ax\|\,\|y\|)`.

    The operators run in the dtype of ``x`` and ``y`` (float32 / complex64 in the benchmark); the inner products are
    accumulated in double precision. Complex inner products are :math:`\langle a, b\rangle = \sum \bar a\,b`.

    Args:
        forward: :math:`x \mapsto Ax`.
        adjoint: :math:`y \mapsto A^T y` (:math:`A^H y` for complex operators).
        x: a domain element.
        y: a range element (same shape as ``forward(x)``).

    Returns:
        The relative error (0 for an exact adjoint; float32 rounding gives about 1e-7 to 1e-6).

    Raises:
        ValueError: when ``forward(x)`` and ``y`` differ in shape, or ``adjoint(y)`` and ``x`` do.

    Example:
        >>> m = torch.randn(5, 3)
        >>> adjoint_error(lambda v: m @ v, lambda w: m.T @ w, torch.randn(3), torch.randn(5)) < 1e-6
        True
    """
    with torch.no_grad():
        ax, aty = forward(x), adjoint(y)
    if ax.shape != y.shape:
        raise ValueError(f"y: expected the shape of forward(x), {tuple(ax.shape)}, got {tuple(y.shape)}.")
    if aty.shape != x.shape:
        raise ValueError(f"x: expected the shape of adjoint(y), {tuple(aty.shape)}, got {tuple(x.shape)}.")

    def inner(a: torch.Tensor, b: torch.Tensor) -> complex:
        a = a.to(torch.complex128) if a.is_complex() else a.double()
        b = b.to(torch.complex128) if b.is_complex() else b.double()
        return complex(torch.vdot(a.reshape(-1), b.reshape(-1)))

    lhs, rhs = inner(ax, y), inner(x, aty)
    scale = float(ax.double().norm() if not ax.is_complex() else ax.abs().double().norm())
    scale *= float(y.double().norm() if not y.is_complex() else y.abs().double().norm())
    return abs(lhs - rhs) / scale if scale > 0 else 0.0


def alternating_medians(methods: dict[str, Callable[[], Any]], min_time: float, rounds: int = 3) -> dict[str, float]:
    """Median seconds per call of each method, alternating the contenders.

    Each of ``rounds`` rounds calls :func:`~rim_monai.benchmarks.operators.time_it` (a warm-up, then the median of
    repeats over ``min_time / rounds`` seconds) on every method in turn; the result is the median over rounds, so a
    burst of load on the shared machine hits every contender rather than one.
    """
    samples: dict[str, list[float]] = {name: [] for name in methods}
    with torch.no_grad():
        for _ in range(rounds):
            for name, fn in methods.items():
                samples[name].append(time_it(fn, min_time / rounds))
    return {name: statistics.median(values) for name, values in samples.items()}


def _ct_contenders(size: int, views: int) -> dict[str, dict[str, Any]]:
    """The three CT operators as ``{name: {"forward", "adjoint", "note"}}`` on ``(B, 1, H, W)`` images."""
    import deepinv
    from odl.applications import tomo
    from odl.contrib.torch import OperatorModule

    from rim_monai.operators import RayTransform

    matrix = RayTransform((size, size), num_angles=views, geometry="parallel", backend="matrix")
    ray = tomo.RayTransform(matrix.space, matrix.odl_geometry, impl="astra_cpu")
    module, module_adj = OperatorModule(ray), OperatorModule(ray.adjoint)
    tomography = deepinv.physics.Tomography(angles=views, img_width=size, circle=False, normalize=False)
    return {
        "rim_monai RayTransform (matrix)": {
            "forward": matrix, "adjoint": matrix.adjoint,
            "note": f"sparse system matrix (ASTRA strip model), {views} x {matrix.num_detectors} sinogram"},
        "deepinv Tomography": {
            "forward": tomography.A, "adjoint": tomography.A_adjoint,
            "note": "torch grid_sample rotations (torch-radon style), adjoint by autograd, normalize=False"},
        "ODL OperatorModule": {
            "forward": module, "adjoint": module_adj,
            "note": "odl.applications.tomo.RayTransform(impl='astra_cpu') and its adjoint, per sample"},
    }


def bench_ct_peers(size: int, views: int, batches: tuple[int, ...], min_time: float, log=print) -> dict[str, Any]:
    """Forward + adjoint seconds per call at each batch size, and each operator's adjoint error (float32).

    Returns:
        ``{"size", "views", "notes", "adjoint_error": {name: float}, "rows": [{"batch", "seconds": {name: s},
        "speedup": {name: OperatorModule seconds / seconds}}]}``.
    """
    contenders = _ct_contenders(size, views)
    g = torch.Generator().manual_seed(0)
    x1 = torch.rand(1, 1, size, size, generator=g)
    errors: dict[str, float] = {}
    for name, c in contenders.items():
        with torch.no_grad():
            shape = c["forward"](x1).shape
        y1 = torch.rand(shape, generator=g)
        errors[name] = adjoint_error(c["forward"], c["adjoint"], x1, y1)
    rows = []
    for batch in batches:
        x = torch.rand(batch, 1, size, size, generator=g)
        methods = {}
        for name, c in contenders.items():
            with torch.no_grad():
                y = c["forward"](x)
            methods[name] = (lambda c=c, x=x, y=y: (c["forward"](x), c["adjoint"](y)))
        seconds = alternating_medians(methods, min_time)
        base = seconds["ODL OperatorModule"]
        rows.append({"batch": batch, "seconds": seconds, "speedup": {k: base / v for k, v in seconds.items()}})
        log(f"CT {size}² {views} views batch {batch:2d}: "
            + ", ".join(f"{k} {1e3 * v:8.2f} ms" for k, v in seconds.items()))
    return {"size": size, "views": views, "notes": {k: c["note"] for k, c in contenders.items()},
            "adjoint_error": errors, "rows": rows}


def _mri_contenders(mask: torch.Tensor, sens: torch.Tensor) -> dict[str, dict[str, Any]]:
    """MaskedFourier, deepinv MultiCoilMRI and a fastMRI SENSE operator, each with its own layout converters."""
    import deepinv
    import fastmri

    from rim_monai.operators import MaskedFourier

    op = MaskedFourier(mask, sens)
    physics = deepinv.physics.MultiCoilMRI(mask=mask, coil_maps=sens, img_size=tuple(mask.shape))
    sens_r = torch.view_as_real(sens).contiguous()  # (B, C, H, W, 2)
    mask_r = mask[..., None]

    def fastmri_forward(x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W, 2) -> (B, C, H, W, 2)
        return fastmri.fft2c(fastmri.complex_mul(x, sens_r)) * mask_r

    def fastmri_adjoint(k: torch.Tensor) -> torch.Tensor:  # (B, C, H, W, 2) -> (B, 1, H, W, 2)
        return fastmri.complex_mul(fastmri.ifft2c(k * mask_r), fastmri.complex_conj(sens_r)).sum(dim=1, keepdim=True)

    def to_channels(t: torch.Tensor) -> torch.Tensor:  # complex (B, C, H, W) -> real (B, 2, C, H, W)
        return torch.stack((t.real, t.imag), dim=1)

    return {
        "rim_monai MaskedFourier": {
            "forward": op, "adjoint": op.adjoint, "to_x": lambda x: x, "to_y": lambda k: k,
            "from_y": lambda k: k, "from_x": lambda x: x,
            "note": "complex64 (B, 1, H, W) -> (B, C, H, W), centred orthonormal FFT"},
        "deepinv MultiCoilMRI": {
            "forward": physics.A, "adjoint": physics.A_adjoint,
            "to_x": lambda x: torch.cat((x.real, x.imag), dim=1), "to_y": to_channels,
            "from_y": lambda k: torch.complex(k[:, 0], k[:, 1]), "from_x": lambda x: torch.complex(x[:, :1], x[:, 1:]),
            "note": "real (B, 2, H, W) -> (B, 2, C, H, W), centred orthonormal FFT"},
        "fastMRI SENSE (fft2c)": {
            "forward": fastmri_forward, "adjoint": fastmri_adjoint,
            "to_x": torch.view_as_real, "to_y": torch.view_as_real,
            "from_y": torch.view_as_complex, "from_x": torch.view_as_complex,
            "note": "real-view (B, 1, H, W, 2) -> (B, C, H, W, 2), fastmri.fft2c (centred, norm='ortho')"},
    }


def _random_maps(batch: int, coils: int, size: int, g: torch.Generator) -> torch.Tensor:
    sens = torch.complex(torch.randn(batch, coils, size, size, generator=g), torch.randn(batch, coils, size, size, generator=g))
    return sens / torch.sqrt((sens.abs() ** 2).sum(1, keepdim=True))


def bench_mri_peers(size: int, coils: int, batches: tuple[int, ...], min_time: float, log=print) -> dict[str, Any]:
    """Agreement check, adjoint errors and forward + adjoint seconds of the three SENSE operators.

    The mask keeps 30 % of k-space at random plus a 24-column centre; the maps are random complex, normalised to a
    root-sum-of-squares of 1 (the numbers, not the maps' realism, matter here).

    Returns:
        ``{"size", "coils", "notes", "agreement": {name: max |difference| / max |MaskedFourier|, forward and adjoint},
        "adjoint_error", "rows": [{"batch", "seconds", "speedup"}]}`` (speed-ups over deepinv's MultiCoilMRI).

    Raises:
        AssertionError: when a peer's numbers differ from MaskedFourier's by more than 1e-5 relative.
    """
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(size, size, generator=g) < 0.3).float()
    mask[:, size // 2 - 12: size // 2 + 12] = 1.0
    sens1 = _random_maps(1, coils, size, g)
    contenders = _mri_contenders(mask, sens1)
    x = torch.complex(torch.randn(1, 1, size, size, generator=g), torch.randn(1, 1, size, size, generator=g))
    k = torch.complex(torch.randn(1, coils, size, size, generator=g), torch.randn(1, coils, size, size, generator=g))
    base = contenders["rim_monai MaskedFourier"]
    with torch.no_grad():
        k_ref, x_ref = base["forward"](x), base["adjoint"](k)
        agreement, errors = {}, {}
        for name, c in contenders.items():
            k_c = c["from_y"](c["forward"](c["to_x"](x)))
            x_c = c["from_x"](c["adjoint"](c["to_y"](k)))
            agreement[name] = {"forward": float((k_c - k_ref).abs().max() / k_ref.abs().max()),
                               "adjoint": float((x_c - x_ref).abs().max() / x_ref.abs().max())}
            if max(agreement[name].values()) > 1e-5:
                raise AssertionError(f"{name} differs from MaskedFourier: {agreement[name]}")
            errors[name] = adjoint_error(c["forward"], c["adjoint"], c["to_x"](x), c["to_y"](k))
    rows = []
    for batch in batches:
        sens = _random_maps(batch, coils, size, g)
        contenders = _mri_contenders(mask, sens)
        xb = torch.complex(torch.randn(batch, 1, size, size, generator=g), torch.randn(batch, 1, size, size, generator=g))
        methods = {}
        for name, c in contenders.items():
            xc = c["to_x"](xb).contiguous()
            with torch.no_grad():
                kc = c["forward"](xc)
            methods[name] = (lambda c=c, xc=xc, kc=kc: (c["forward"](xc), c["adjoint"](kc)))
        seconds = alternating_medians(methods, min_time)
        ref = seconds["deepinv MultiCoilMRI"]
        rows.append({"batch": batch, "seconds": seconds, "speedup": {n: ref / s for n, s in seconds.items()}})
        log(f"MRI {size}² {coils} coils batch {batch:2d}: "
            + ", ".join(f"{n} {1e3 * s:8.2f} ms" for n, s in seconds.items()))
        del contenders, methods
    return {"size": size, "coils": coils, "notes": {n: c["note"] for n, c in _mri_contenders(mask, sens1).items()},
            "agreement": agreement, "adjoint_error": errors, "rows": rows}

r"""Coil sensitivity maps: estimation from the fully sampled k-space centre, and synthetic birdcage maps.

Two estimators share the calibration region (the fully sampled box around the k-space centre, detected
automatically or given):

- ``"lowres"``: window the calibration region (Hann), go to the image domain and divide every coil image by the
  root sum of squares, :math:`S_c = \tilde x_c / \sqrt{\sum_{c'} |\tilde x_{c'}|^2}`.
- ``"espirit"`` (Uecker et al., MRM 2014): the rows of the calibration matrix (all :math:`k \times k` multi-coil
  patches) span a subspace found by an SVD; projecting every patch onto it is, in the image domain, a pixel-wise
  :math:`C \times C` Hermitian matrix :math:`W(x)` whose eigenvector with eigenvalue :math:`\approx 1` is the
  sensitivity at :math:`x`. :math:`W(x) = k^{-2} \sum_\delta Q_\delta e^{2\pi i \delta \cdot x / N}` is built from the
  :math:`(2k-1)^2` patch offsets :math:`\delta`, so memory stays :math:`O(C^2 H W)` whatever the kernel count.

All maps are normalised to :math:`\sum_c |S_c|^2 = 1` where the object is (and 0 in the background). For one coil
the low-resolution estimate is the phase of the low-resolution image, :math:`S = \tilde x / |\tilde x|`: the map
takes the smooth background phase (receiver, :math:`B_0`) off the image, so that what is left to reconstruct is close
to real, as with several coils (:func:`estimate_sensitivities_or_none`, ``single_coil="phase"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from rim_monai.operators.fourier import ifft2c, rss

__all__ = ["birdcage_maps", "calibration_shape", "estimate_sensitivities", "estimate_sensitivities_or_none",
           "ESPIRIT_LINES", "SINGLE_COIL_MAPS"]

#: the fewest calibration lines per side from which ESPIRiT (kernel 6) recovers the maps; fewer: low-resolution maps
ESPIRIT_LINES = 12


def birdcage_maps(
    coils: int, shape: Sequence[int], radius: float = 2.0, dtype: torch.dtype = torch.complex64
) -> torch.Tensor:
    r"""Smooth synthetic coil sensitivities of ``coils`` loops evenly spaced on a ring around the field of view.

    With image coordinates :math:`r` scaled to :math:`[-1, 1]^2` and coil ``c`` at
    :math:`p_c = \rho (\cos\theta_c, \sin\theta_c)`, :math:`\theta_c = 2\pi c / C`, the raw map is
    :math:`e^{i(\theta_c + \arg(r - p_c))} / |r - p_c|` (magnitude falling off with distance, phase winding
    around the coil); the maps are then divided by their root sum of squares, so :math:`\sum_c |S_c|^2 = 1`.

    Args:
        coils: number of coils (>= 1).
        shape: image shape ``(H, W)``.
        radius: ring radius :math:`\rho` in units of half the field of view; must exceed :math:`\sqrt 2` so that
            every coil lies outside the image.
        dtype: ``torch.complex64`` or ``torch.complex128``.

    Returns:
        complex ``(coils, H, W)``.

    Raises:
        ValueError: for a bad ``coils``, ``shape``, ``radius`` or ``dtype``.

    Example:
        >>> S = birdcage_maps(8, (64, 64))
        >>> S.shape, bool(torch.allclose(rss(S, dim=0), torch.ones(64, 64)))
        (torch.Size([8, 64, 64]), True)
    """
    if not isinstance(coils, int) or isinstance(coils, bool) or coils < 1:
        raise ValueError(f"coils: expected a positive integer, got {coils!r}.")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape}.")
    if not radius > math.sqrt(2):
        raise ValueError(f"radius: expected > sqrt(2) (coils outside the image), got {radius}.")
    if dtype not in (torch.complex64, torch.complex128):
        raise ValueError(f"dtype: expected torch.complex64 or torch.complex128, got {dtype}.")
    height, width = shape
    y = (torch.arange(height, dtype=torch.float64) - height // 2) / max(height / 2, 1)
    x = (torch.arange(width, dtype=torch.float64) - width // 2) / max(width / 2, 1)
    theta = 2 * math.pi * torch.arange(coils, dtype=torch.float64) / coils
    rel = torch.complex(x[None, None, :] - radius * torch.cos(theta)[:, None, None],
                        y[None, :, None] - radius * torch.sin(theta)[:, None, None])
    maps = torch.polar(1 / rel.abs(), rel.angle() + theta[:, None, None])
    return (maps / rss(maps, dim=0, keepdim=True)).to(dtype)


def _central_run(line: torch.Tensor) -> int:
    """Length of the run of ``True`` values through the centre index ``n // 2`` of a 1D boolean tensor."""
    n = line.shape[0]
    centre = n // 2
    if not bool(line[centre]):
        return 0
    missing = (~line).nonzero().flatten()
    before = missing[missing < centre]
    after = missing[missing > centre]
    start = int(before.max()) + 1 if before.numel() else 0
    stop = int(after.min()) if after.numel() else n
    return stop - start


def calibration_shape(kspace: torch.Tensor, max_size: int | None = 32) -> tuple[int, int]:
    """Detect the fully sampled box around the k-space centre (common to every sample and coil).

    The box is searched within the runs of samples through the centre row and column (capped at ``max_size`` per
    dimension: a smooth estimate needs only the low frequencies); among the centred boxes in which every point is
    sampled, the one of largest area is returned.

    Args:
        kspace: complex ``(C, H, W)`` or ``(B, C, H, W)``, zero where not sampled.
        max_size: cap per dimension; ``None`` for no cap.

    Returns:
        ``(ch, cw)``.

    Raises:
        ValueError: if the k-space centre is not sampled.
    """
    sampled = (kspace.abs() > 0).reshape(-1, *kspace.shape[-3:]).any(dim=-3).all(dim=0)  # (H, W)
    height, width = sampled.shape
    ch = _central_run(sampled[:, width // 2])
    cw = _central_run(sampled[height // 2, :])
    if max_size is not None:
        ch, cw = min(ch, max_size), min(cw, max_size)
    best, width_limit = (0, 0), cw
    for height_try in range(1, ch + 1):
        while width_limit > 0 and not bool(_crop(sampled, (height_try, width_limit)).all()):
            width_limit -= 1  # boxes are nested: the widest full box only narrows as the height grows
        if height_try * width_limit > best[0] * best[1]:
            best = (height_try, width_limit)
    ch, cw = best
    if ch < 2 or cw < 2:
        raise ValueError(
            f"kspace: no fully sampled calibration region around the centre (found {ch}x{cw}); pass calib_width."
        )
    return ch, cw


def _crop(k: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The ``size`` box around the centre ``(H // 2, W // 2)`` of the last two dimensions (same as the masks use)."""
    height, width = k.shape[-2:]
    top, left = height // 2 - size[0] // 2, width // 2 - size[1] // 2
    return k[..., top : top + size[0], left : left + size[1]]


def _embed(box: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero-pad a centred box back to ``shape`` (inverse of :func:`_crop`)."""
    out = box.new_zeros(*box.shape[:-2], *shape)
    top, left = shape[0] // 2 - box.shape[-2] // 2, shape[1] // 2 - box.shape[-1] // 2
    out[..., top : top + box.shape[-2], left : left + box.shape[-1]] = box
    return out


def _window(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A Hann window of ``n`` points that is non-zero at both ends."""
    return torch.hann_window(n + 2, periodic=False, dtype=dtype, device=device)[1:-1]


def _normalise(images: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Divide coil images ``(B, C, H, W)`` by their RSS; zero where the RSS is below ``eps`` times its maximum."""
    norm = rss(images, dim=1, keepdim=True)
    keep = norm > eps * norm.amax(dim=(-2, -1), keepdim=True)
    return torch.where(keep, images / norm.clamp_min(torch.finfo(norm.dtype).tiny), 0), keep


def _lowres(kspace: torch.Tensor, size: tuple[int, int], eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    real = kspace.real.dtype
    window = _window(size[0], real, kspace.device)[:, None] * _window(size[1], real, kspace.device)[None, :]
    images = ifft2c(_embed(_crop(kspace, size) * window, tuple(kspace.shape[-2:])))
    return _normalise(images, eps)


def _espirit(
    kspace: torch.Tensor, size: tuple[int, int], kernel_size: int, threshold: float, crop: float
) -> torch.Tensor:
    batch, coils, height, width = kspace.shape
    k = kernel_size
    if k > min(size):
        raise ValueError(f"kernel_size: {k} does not fit in the {size[0]}x{size[1]} calibration region.")
    calib = _crop(kspace, size)
    # calibration matrix: one row per k x k patch position, columns (coil, ky, kx)
    patches = calib.unfold(-2, k, 1).unfold(-2, k, 1)  # (B, C, ny, nx, k, k)
    matrix = patches.permute(0, 2, 3, 1, 4, 5).reshape(batch, -1, coils * k * k)
    _, singular, vh = torch.linalg.svd(matrix, full_matrices=False)
    keep = singular >= threshold * singular[:, :1]  # (B, r): kernels spanning the signal subspace
    vh = vh * keep[..., None]
    # projector P = sum_j w_j w_j^H onto the row space, w_j = row j of vh
    projector = vh.transpose(-2, -1) @ vh.conj()  # (B, Ck^2, Ck^2)
    projector = projector.reshape(batch, coils, k, k, coils, k, k).permute(0, 1, 4, 2, 3, 5, 6)
    # gather P over kernel offsets delta = q - q' into Q (B, C, C, 2k-1, 2k-1)
    q = torch.arange(k, device=kspace.device)
    dy = (q[:, None, None, None] - q[None, None, :, None] + k - 1).expand(k, k, k, k)
    dx = (q[None, :, None, None] - q[None, None, None, :] + k - 1).expand(k, k, k, k)
    index = (dy * (2 * k - 1) + dx).reshape(-1)
    offsets = projector.new_zeros(batch, coils, coils, (2 * k - 1) ** 2)
    offsets.index_add_(-1, index, projector.reshape(batch, coils, coils, -1))
    offsets = offsets.reshape(batch, coils, coils, 2 * k - 1, 2 * k - 1)
    # W(x) = k^-2 sum_delta Q_delta exp(+2 pi i delta.x / N) = sqrt(HW) / k^2 * ifft2c(Q on the grid)
    if 2 * k - 1 > min(height, width):
        raise ValueError(f"kernel_size: {k} is too large for the image shape {(height, width)}.")
    grid = _embed(offsets, (height, width))
    operator = ifft2c(grid) * (math.sqrt(height * width) / k**2)  # (B, C, C, H, W)
    operator = operator.permute(0, 3, 4, 1, 2)
    operator = (operator + operator.conj().transpose(-2, -1)) / 2  # exact Hermitian symmetry for eigh
    values, vectors = torch.linalg.eigh(operator)
    maps = vectors[..., -1].permute(0, 3, 1, 2)  # (B, C, H, W), unit norm per pixel
    return maps * (values[..., -1] > crop)[:, None]


def estimate_sensitivities(
    kspace: torch.Tensor,
    calib_width: int | Sequence[int] | None = None,
    method: str = "lowres",
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
    eps: float = 1e-3,
    max_calib: int = 32,
) -> torch.Tensor:
    r"""Estimate coil sensitivity maps from (undersampled) multi-coil k-space with a fully sampled centre.

    Args:
        kspace: complex ``(C, H, W)`` or ``(B, C, H, W)``, centred like :func:`fft2c`, zero where not sampled.
        calib_width: size of the calibration box: an int (square), ``(ch, cw)``, or ``None`` to detect the fully
            sampled centre (:func:`calibration_shape`, capped at ``max_calib`` per dimension).
        method: ``"lowres"`` or ``"espirit"`` (see the module docstring).
        kernel_size: ESPIRiT kernel size :math:`k`.
        threshold: ESPIRiT keeps the singular vectors with :math:`\sigma_j \ge` ``threshold`` :math:`\sigma_1`.
        crop: ESPIRiT zeroes the maps where the largest eigenvalue of :math:`W(x)` is at most ``crop``.
        eps: background threshold, relative to the maximum low-resolution RSS (``"lowres"``).
        max_calib: cap of the detected calibration box per dimension.

    Returns:
        complex maps shaped like ``kspace``, with :math:`\sum_c |S_c|^2 = 1` on the object. ESPIRiT eigenvectors have
        an arbitrary phase per pixel; it is aligned with the low-resolution estimate (so both methods give smooth
        maps with the same phase convention).

    Raises:
        ValueError: for a bad ``kspace``, ``calib_width``, ``method`` or ESPIRiT parameter.

    Example:
        >>> S = birdcage_maps(4, (64, 64))
        >>> x = torch.ones(64, 64, dtype=torch.complex64)
        >>> S_hat = estimate_sensitivities(fft2c(S * x), calib_width=24)
        >>> float((S_hat.conj() * S).sum(0).abs().mean()) > 0.99
        True
    """
    if not isinstance(kspace, torch.Tensor) or not kspace.is_complex() or kspace.ndim not in (3, 4):
        got = f"{tuple(kspace.shape)} {kspace.dtype}" if isinstance(kspace, torch.Tensor) else type(kspace).__name__
        raise ValueError(f"kspace: expected a complex tensor (C, H, W) or (B, C, H, W), got {got}.")
    if not bool(torch.isfinite(kspace).all()):
        raise ValueError("kspace: contains NaN or Inf values.")
    if method not in ("lowres", "espirit"):
        raise ValueError(f"method: expected 'lowres' or 'espirit', got {method!r}.")
    squeeze = kspace.ndim == 3
    batched = kspace[None] if squeeze else kspace
    height, width = batched.shape[-2:]
    if calib_width is None:
        size = calibration_shape(batched, max_calib)
    else:
        size = (calib_width, calib_width) if isinstance(calib_width, int) else tuple(int(c) for c in calib_width)
        if len(size) != 2 or not (2 <= size[0] <= height and 2 <= size[1] <= width):
            raise ValueError(f"calib_width: expected an int or (ch, cw) between 2 and {(height, width)}, got {calib_width!r}.")
    maps, _ = _lowres(batched, size, eps)
    if method == "espirit":
        if not 0 < threshold < 1 or not 0 <= crop < 1:
            raise ValueError(f"threshold/crop: expected values in (0, 1) and [0, 1), got {threshold} and {crop}.")
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size: expected a positive integer, got {kernel_size!r}.")
        eigen = _espirit(batched, size, kernel_size, threshold, crop)
        # rotate every pixel's eigenvector onto the phase of the low-resolution estimate
        overlap = (eigen * maps.conj()).sum(dim=1, keepdim=True)
        phase = torch.where(overlap == 0, torch.ones_like(overlap), torch.sgn(overlap))
        maps = eigen * phase.conj()
    return maps[0] if squeeze else maps


SINGLE_COIL_MAPS = ("phase", "ones")
"""What :func:`estimate_sensitivities_or_none` gives one coil: its low-resolution phase, or a map of ones."""


def estimate_sensitivities_or_none(
    kspace: torch.Tensor, method: str = "lowres", single_coil: str = "phase", **kwargs
) -> torch.Tensor | None:
    """Coil maps for reconstruction, robust to what the calibration region allows:

    - one coil, ``single_coil="phase"`` (default): the low-resolution estimate whatever ``method``, i.e. the phase
      of the low-resolution image (0 where it is empty), which takes the smooth background phase off the image.
      Measured on real single-coil k-space (the IRT abdomen) and the simulated single-coil test sets, it lifts both
      the RIM and TV (``bundles/mri_rim_recon/docs/README.md``, "Single-coil phase maps"); a map of ones where there
      is no calibration region. ``"ones"``: a map of ones (the image keeps its own phase; the convention before
      2026-12-07);
    - ``"espirit"`` with a detected calibration box narrower than :data:`ESPIRIT_LINES` on a side, or an ESPIRiT
      failure: the low-resolution maps (ESPIRiT's kernel needs more lines than that to find the signal subspace);
    - otherwise :func:`estimate_sensitivities` with ``method`` (and ``kwargs``);
    - ``None`` when there is no calibration region at all (an all-zero, noise-free k-space, e.g. an empty slice).

    Args:
        kspace: complex ``(C, H, W)`` or ``(B, C, H, W)`` undersampled k-space with a fully sampled centre.
        method: ``"lowres"`` or ``"espirit"``.
        single_coil: ``"phase"`` or ``"ones"`` (:data:`SINGLE_COIL_MAPS`), for ``C = 1``.
        kwargs: passed to :func:`estimate_sensitivities`.

    Raises:
        ValueError: naming ``single_coil`` when it is not one of :data:`SINGLE_COIL_MAPS`.
    """
    if single_coil not in SINGLE_COIL_MAPS:
        raise ValueError(f"single_coil: expected one of {SINGLE_COIL_MAPS}, got {single_coil!r}.")
    single = kspace.shape[-3] == 1 and kspace.is_complex()
    if single:
        if single_coil == "ones":
            return torch.ones_like(kspace)
        method = "lowres"
    if method == "espirit" and not kwargs.get("calib_width") and kspace.abs().amax() > 0:
        if min(calibration_shape(kspace, max_size=kwargs.get("max_calib", 32))) < ESPIRIT_LINES:
            method = "lowres"
    for name in dict.fromkeys((method, "lowres")):
        try:
            return estimate_sensitivities(kspace, method=name, **kwargs)
        except ValueError:
            continue
    return torch.ones_like(kspace) if single else None

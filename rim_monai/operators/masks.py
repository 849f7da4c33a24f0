r"""k-space sampling masks: fastMRI-style 1D Cartesian masks and 2D variable-density Poisson-disc masks.

All functions return a ``torch.float32`` mask of shape ``(H, W)`` with values 0/1, centred like :func:`fft2c`
(the zero frequency at ``(H // 2, W // 2)``). 1D Cartesian masks select whole columns: the last dimension is the phase
encode direction, as in fastMRI. Every function is deterministic for a given ``seed`` (``None`` draws fresh
randomness); they use their own ``numpy.random.Generator`` and never touch the global random state.

The acceleration is :math:`R = H W / \#\{\text{sampled}\}`; for 1D masks it equals ``W / sampled columns``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = [
    "center_fraction_for",
    "random_mask",
    "equispaced_mask",
    "poisson_disc_mask",
    "calibrated_poisson_disc_mask",
    "MASK_FUNCTIONS",
    "mask_function",
]


def center_fraction_for(acceleration: float) -> float:
    """The fastMRI default fraction of fully sampled central columns: ``0.32 / acceleration``.

    This gives the GUIDE defaults, 0.08 at 4x and 0.04 at 8x (the fastMRI challenge pairs).

    Raises:
        ValueError: if ``acceleration`` is not > 1.

    Example:
        >>> center_fraction_for(4), center_fraction_for(8)
        (0.08, 0.04)
    """
    _check_acceleration(acceleration)
    return round(0.32 / float(acceleration), 10)


def _check_acceleration(acceleration: float) -> None:
    if not isinstance(acceleration, (int, float)) or isinstance(acceleration, bool) or not acceleration > 1:
        raise ValueError(f"acceleration: expected a number > 1, got {acceleration!r}.")


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"shape: expected (H, W), got {shape!r}.") from None
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"shape: expected (H, W) with positive sizes, got {tuple(shape)}.")
    return out  # type: ignore[return-value]


def _center_lines(num_cols: int, acceleration: float, center_fraction: float | None) -> int:
    _check_acceleration(acceleration)
    if center_fraction is None:
        center_fraction = center_fraction_for(acceleration)
    if not 0 <= center_fraction < 1:
        raise ValueError(f"center_fraction: expected a number in [0, 1), got {center_fraction!r}.")
    num_low = int(round(num_cols * center_fraction))
    if num_low > num_cols / acceleration:
        raise ValueError(
            f"center_fraction: {center_fraction} gives {num_low} central columns, more than the "
            f"{num_cols / acceleration:.1f} columns that acceleration {acceleration} allows."
        )
    return num_low


def _with_center(lines: np.ndarray, num_low: int) -> np.ndarray:
    start = (lines.size - num_low + 1) // 2
    lines[start : start + num_low] = True
    return lines


def _columns_to_mask(lines: np.ndarray, num_rows: int) -> torch.Tensor:
    column = torch.from_numpy(lines.astype(np.float32))
    return column[None, :].expand(num_rows, -1).contiguous()


def random_mask(
    shape: Sequence[int], acceleration: float, center_fraction: float | None = None, seed: int | None = None
) -> torch.Tensor:
    r"""1D random Cartesian mask (fastMRI ``RandomMaskFunc`` semantics).

    ``round(W * center_fraction)`` central columns are always sampled; every other column independently with
    probability :math:`p = (W / R - n_\text{low}) / (W - n_\text{low})`, so the *expected* acceleration is ``R``.

    Args:
        shape: ``(H, W)``; columns (the last dimension) are phase encodes.
        acceleration: the target acceleration ``R > 1``.
        center_fraction: fraction of fully sampled central columns; ``None`` uses :func:`center_fraction_for`.
        seed: seed of the random generator (same seed, same mask).

    Returns:
        ``torch.float32`` mask ``(H, W)`` of 0/1, constant along each column.

    Raises:
        ValueError: for a bad ``shape``, ``acceleration`` or ``center_fraction``.

    Example:
        >>> m = random_mask((320, 320), acceleration=4, center_fraction=0.08, seed=0)
        >>> m.shape, bool(m[:, 160].all())
        (torch.Size([320, 320]), True)
    """
    height, width = _check_shape(shape)
    num_low = _center_lines(width, acceleration, center_fraction)
    rng = np.random.default_rng(seed)
    prob = (width / acceleration - num_low) / (width - num_low) if width > num_low else 0.0
    lines = rng.uniform(size=width) < prob
    return _columns_to_mask(_with_center(lines, num_low), height)


def equispaced_mask(
    shape: Sequence[int], acceleration: float, center_fraction: float | None = None, seed: int | None = None
) -> torch.Tensor:
    r"""1D equispaced Cartesian mask (fastMRI ``EquispacedMaskFractionFunc`` semantics).

    Besides the ``round(W * center_fraction)`` central columns, columns are taken every :math:`R'` lines (rounded
    to the nearest column) from a random offset, with :math:`R' = R (n_\text{low} - W) / (n_\text{low} R - W)` chosen
    so that centre plus equispaced lines total about ``W / R`` columns (overlaps with the centre are not recounted,
    so the acceleration is met up to a column or two).

    Args:
        shape: ``(H, W)``.
        acceleration: the target acceleration ``R > 1``.
        center_fraction: fraction of fully sampled central columns; ``None`` uses :func:`center_fraction_for`.
        seed: seed of the random offset.

    Returns:
        ``torch.float32`` mask ``(H, W)`` of 0/1.

    Raises:
        ValueError: for a bad ``shape``, ``acceleration`` or ``center_fraction``.

    Example:
        >>> m = equispaced_mask((64, 256), acceleration=8, seed=1)
        >>> round(256 / float(m[0].sum()), 1)
        8.0
    """
    height, width = _check_shape(shape)
    num_low = _center_lines(width, acceleration, center_fraction)
    rng = np.random.default_rng(seed)
    if num_low > 0:
        spacing = acceleration * (num_low - width) / (num_low * acceleration - width)
    else:
        spacing = float(acceleration)
    offset = int(rng.integers(0, max(1, int(round(spacing)))))
    positions = np.round(np.arange(offset, width - 1, spacing)).astype(np.int64)
    lines = np.zeros(width, dtype=bool)
    lines[positions[positions < width]] = True
    return _columns_to_mask(_with_center(lines, num_low), height)


def _disk(radius: float) -> np.ndarray:
    """Boolean disk of points at distance < ``radius`` from the centre (which is always included)."""
    reach = int(np.ceil(radius)) - 1 if radius > 1 else 0
    offsets = np.arange(-reach, reach + 1)
    inside = offsets[:, None] ** 2 + offsets[None, :] ** 2 < radius**2
    inside[reach, reach] = True
    return inside


def _poisson_pass(
    order: np.ndarray, radius: np.ndarray, shape: tuple[int, int], quantum: float = 1 / 16
) -> np.ndarray:
    """One greedy dart-throwing pass: accept candidates in ``order`` that no accepted point's disk covers."""
    height, width = shape
    blocked = np.zeros((height, width), dtype=np.uint8)
    flat = blocked.reshape(-1)
    accepted = np.zeros(height * width, dtype=bool)
    disks: dict[int, np.ndarray] = {}
    levels = np.round(radius.reshape(-1) / quantum).astype(np.int64)
    for index in order.tolist():
        if flat[index]:
            continue
        accepted[index] = True
        level = int(levels[index])
        disk = disks.get(level)
        if disk is None:
            disk = disks[level] = _disk(level * quantum)
        reach = disk.shape[0] // 2
        row, col = divmod(index, width)
        r0, r1 = max(row - reach, 0), min(row + reach + 1, height)
        c0, c1 = max(col - reach, 0), min(col + reach + 1, width)
        blocked[r0:r1, c0:c1] |= disk[r0 - row + reach : r1 - row + reach, c0 - col + reach : c1 - col + reach]
    return accepted.reshape(height, width)


def poisson_disc_mask(
    shape: Sequence[int],
    acceleration: float,
    calib: Sequence[int] = (24, 24),
    seed: int | None = None,
    density_decay: float = 2.0,
    tol: float = 0.02,
    max_iter: int = 25,
) -> torch.Tensor:
    r"""2D variable-density Poisson-disc mask with a fully sampled calibration box.

    Samples keep a minimum distance :math:`r(k) = r_0 (1 + \alpha \rho(k))` from one another, growing with the
    normalised distance :math:`\rho = \sqrt{(k_y / (H/2))^2 + (k_x / (W/2))^2}` from the k-space centre (denser in
    the centre). Points are drawn by greedy dart throwing in a seeded random order; :math:`r_0` is searched
    (bracketed multiplicative updates, the count scales like :math:`r_0^{-2}`) until the total count, calibration
    box included, is within ``tol`` of :math:`HW / R`; the closest mask found is returned.

    Args:
        shape: ``(H, W)``.
        acceleration: target acceleration ``R > 1``.
        calib: size ``(ch, cw)`` of the fully sampled central box (clipped to ``shape``); ``(0, 0)`` for none.
        seed: seed of the candidate order.
        density_decay: :math:`\alpha \ge 0`; 0 gives uniform density.
        tol: relative tolerance on the number of samples.
        max_iter: maximum number of dart-throwing passes.

    Returns:
        ``torch.float32`` mask ``(H, W)`` of 0/1.

    Raises:
        ValueError: for a bad ``shape``/``acceleration``/``calib``, or when the calibration box alone exceeds
            the sample budget.

    Example:
        >>> m = poisson_disc_mask((96, 96), acceleration=5, calib=(16, 16), seed=0)
        >>> abs(96 * 96 / float(m.sum()) - 5) < 0.2
        True
    """
    height, width = _check_shape(shape)
    _check_acceleration(acceleration)
    calib = tuple(int(c) for c in calib)
    if len(calib) != 2 or min(calib) < 0:
        raise ValueError(f"calib: expected (ch, cw) with non-negative sizes, got {calib}.")
    if density_decay < 0:
        raise ValueError(f"density_decay: expected a number >= 0, got {density_decay}.")
    ch, cw = min(calib[0], height), min(calib[1], width)
    target = height * width / acceleration
    if ch * cw > target:
        raise ValueError(
            f"calib: a {ch}x{cw} calibration box ({ch * cw} samples) exceeds the {target:.0f} samples that "
            f"acceleration {acceleration} allows for shape {(height, width)}."
        )
    in_calib = np.zeros((height, width), dtype=bool)
    top, left = height // 2 - ch // 2, width // 2 - cw // 2
    in_calib[top : top + ch, left : left + cw] = True

    ky = (np.arange(height) - height // 2) / (height / 2)
    kx = (np.arange(width) - width // 2) / (width / 2)
    rho = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    profile = 1.0 + density_decay * rho
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(~in_calib.reshape(-1))
    order = candidates[rng.permutation(candidates.size)]

    # a greedy (random sequential) packing of discs of radius r reaches a density of about 0.7 / r^2
    r0 = float(np.sqrt(0.7 * acceleration / np.mean(profile**-2)))
    low, high = 0.0, np.inf  # bracket on r0: count(low) > target > count(high)
    best, best_error = in_calib, np.inf
    for _ in range(max_iter):
        mask = _poisson_pass(order, r0 * profile, (height, width)) | in_calib
        count = int(mask.sum())
        error = abs(count - target) / target
        if error < best_error:
            best, best_error = mask, error
        if error <= tol:
            break
        if count > target:
            low = max(low, r0)
        else:
            high = min(high, r0)
        update = r0 * np.sqrt(count / target)
        if not low < update < high:  # outside the bracket: bisect it (or widen it while it is open)
            update = (low + high) / 2 if np.isfinite(high) else 2 * r0
        r0 = update
    return torch.from_numpy(best.astype(np.float32))


def calibrated_poisson_disc_mask(
    shape: Sequence[int], acceleration: float, center_fraction: float | None = None, seed: int | None = None
) -> torch.Tensor:
    r""":func:`poisson_disc_mask` with a calibration box of ``center_fraction`` of each side, called like the 1D masks.

    The box is :math:`\max(4, \operatorname{round}(f n))` samples along a side of :math:`n` (clipped to the side),
    with :math:`f` = ``center_fraction`` or, by default, :func:`center_fraction_for` (0.08 at 4x, 0.04 at 8x): enough
    fully sampled lines to estimate coil maps from.

    Example:
        >>> m = calibrated_poisson_disc_mask((64, 64), 4, seed=0)
        >>> bool(m[30:34, 30:34].all())  # a 5x5 calibration box at the centre
        True
    """
    height, width = _check_shape(shape)
    fraction = center_fraction_for(acceleration) if center_fraction is None else float(center_fraction)
    calib = tuple(max(4, round(n * fraction)) for n in (height, width))
    return poisson_disc_mask((height, width), acceleration, calib=calib, seed=seed)


MASK_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "random": random_mask,
    "equispaced": equispaced_mask,
    "poisson_disc": calibrated_poisson_disc_mask,
}
"""The one registry of mask functions by name, each called as ``f((H, W), acceleration, center_fraction, seed)``
and returning an ``(H, W)`` float32 mask (the simulators and the undersampling transform look names up here)."""


def mask_function(mask_func: str | Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """The mask function registered as ``mask_func`` in :data:`MASK_FUNCTIONS` (a callable is returned as it is).

    Raises:
        ValueError: an unknown name.

    Example:
        >>> mask_function("equispaced") is equispaced_mask
        True
    """
    if callable(mask_func):
        return mask_func
    if mask_func not in MASK_FUNCTIONS:
        raise ValueError(f"mask_func: expected one of {sorted(MASK_FUNCTIONS)} or a callable, got {mask_func!r}.")
    return MASK_FUNCTIONS[mask_func]

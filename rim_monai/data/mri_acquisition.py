r"""Randomised multi-coil MRI acquisitions for training: coils, masks, noise, and coil maps estimated as at inference.

One :class:`AcquisitionSettings` describes an acquisition; :class:`AcquisitionSampler` draws them (the training
distribution) and :func:`simulate_acquisition` measures a complex reference image :math:`x` with one:

.. math::
    y_c = M \odot \big(F(S_c x) + n_c\big), \qquad n_c \sim \mathcal{CN}(0, \sigma^2),
    \qquad \sigma = \operatorname{rms}(F S x) / 10^{\mathrm{SNR}/20},

with ``coils`` true maps :math:`S_c` (birdcage maps with a random ring radius, orientation and smooth per-coil phase;
ones for one coil) and a mask :math:`M` of a family of :data:`~rim_monai.operators.MASK_FUNCTIONS` at a
(non-integer) acceleration. The item's operator then uses maps :math:`\hat S` *estimated* from the calibration
region of :math:`y` (``"lowres"`` or ``"espirit"``, :func:`~rim_monai.operators.estimate_sensitivities`), exactly as
the bundle does for measured k-space (ESPIRiT items get at least :data:`ESPIRIT_LINES` calibration lines, or
low-resolution maps where the acceleration leaves fewer), so a network trained on these items works with either
estimator. One coil gets the phase of its low-resolution image as its map, as at inference
(:func:`~rim_monai.operators.estimate_sensitivities_or_none`). Estimated maps absorb the smooth phase of the object,
so the target is the coil combination with them, :math:`\hat x = \sum_c \bar{\hat S}_c S_c x` (:math:`|\hat x| =
|x|` where they are exact), and :math:`x` where they vanish (background, ESPIRiT's cropped edges); the maps are
normalised to :math:`\sum_c |\hat S_c|^2 = 1`.

``estimator="aligned"`` is an oracle for what the estimation costs: the true maps, normalised to
:math:`\sum_c |S_c|^2 = 1` and given the common phase of the low-resolution estimate, :math:`\tilde S_c = S_c /
\|S\| \cdot e^{i\varphi}`, :math:`\varphi = \arg \sum_c \bar S_c \hat S_c / \|S\|`, so the image to
reconstruct keeps the convention the network was trained with and only the error of the estimate is gone
(``"true"``, the maps as simulated, also changes the image's phase and scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rim_monai.data.simulate_mri import smooth_phase
from rim_monai.operators import ESPIRIT_LINES, birdcage_maps, estimate_sensitivities_or_none, fft2c, mask_function, rss

__all__ = ["AcquisitionSettings", "AcquisitionSampler", "simulate_acquisition", "varied_coil_maps", "ESPIRIT_LINES",
           "MAP_CHOICES"]

#: the coil maps an acquisition's operator can get: estimated as at inference, or the simulation's own (oracles)
MAP_CHOICES = ("lowres", "espirit", "true", "aligned")


@dataclass(frozen=True)
class AcquisitionSettings:
    """One acquisition: ``coils``, mask family ``mask_func``, ``acceleration``, fully sampled ``center_fraction``,
    k-space ``snr_db`` (``None``: noise-free) and the coil-map ``estimator`` (``"lowres"``, ``"espirit"`` or
    ``"true"``: the simulation's maps; ``"aligned"``: them in the estimate's convention, module docstring)."""

    coils: int = 8
    mask_func: str = "random"
    acceleration: float = 4.0
    center_fraction: float | None = None
    snr_db: float | None = 40.0
    estimator: str = "lowres"


def _calibration_lines(width: int, acceleration: float, fraction: float | None, minimum: int = 8) -> float:
    """A centre fraction with at least ``minimum`` fully sampled lines (within the ``width / acceleration`` lines a
    mask may hold), default ``0.32 / acceleration`` (fastMRI)."""
    fraction = 0.32 / acceleration if fraction is None else fraction
    lines = min(max(round(width * fraction), minimum), int(0.9 * width / acceleration))
    return max(lines, 1) / width


class AcquisitionSampler:
    """Draws :class:`AcquisitionSettings` from the training distribution.

    Args:
        coils: coil counts to draw from (uniformly), e.g. ``[1, 2, 4, 8, 12, 16]``.
        mask_funcs: mask families (uniformly), names of :data:`~rim_monai.operators.MASK_FUNCTIONS`.
        accelerations: ``(low, high)``: accelerations drawn log-uniformly in this range.
        snr_db: ``(low, high)``: k-space SNR drawn uniformly in dB ...
        noise_free: ... except with this probability, where there is no noise.
        estimators: coil-map estimators (uniformly) for multi-coil items.
        fastmri_fraction: probability of the fastMRI centre fraction ``0.32 / R`` (else uniform in 0.03-0.12); at
            least 8 central lines either way, as far as the acceleration allows.

    Raises:
        ValueError: naming an argument with an empty or invalid range.

    Example:
        >>> sampler = AcquisitionSampler(coils=[1, 8])
        >>> sampler.draw(np.random.default_rng(0)).coils in (1, 8)
        True
    """

    def __init__(
        self,
        coils: Sequence[int] = (1, 2, 4, 8, 12, 16),
        mask_funcs: Sequence[str] = ("random", "equispaced", "poisson_disc"),
        accelerations: Sequence[float] = (2.0, 12.0),
        snr_db: Sequence[float] = (20.0, 50.0),
        noise_free: float = 0.2,
        estimators: Sequence[str] = ("lowres", "espirit"),
        fastmri_fraction: float = 0.5,
    ) -> None:
        if not coils or any(int(c) < 1 for c in coils):
            raise ValueError(f"coils: expected positive coil counts, got {list(coils)}.")
        for name in mask_funcs:
            mask_function(name)
        if not mask_funcs:
            raise ValueError("mask_funcs: expected at least one mask family.")
        if len(accelerations) != 2 or not 1 < accelerations[0] <= accelerations[1]:
            raise ValueError(f"accelerations: expected (low, high) with 1 < low <= high, got {list(accelerations)}.")
        if len(snr_db) != 2 or snr_db[0] > snr_db[1]:
            raise ValueError(f"snr_db: expected (low, high), got {list(snr_db)}.")
        if not 0 <= noise_free <= 1 or not 0 <= fastmri_fraction <= 1:
            raise ValueError(f"noise_free, fastmri_fraction: expected probabilities, got {noise_free}, {fastmri_fraction}.")
        if not estimators or any(e not in MAP_CHOICES for e in estimators):
            raise ValueError(f"estimators: expected names from {MAP_CHOICES}, got {list(estimators)}.")
        self.coils, self.mask_funcs = [int(c) for c in coils], list(mask_funcs)
        self.accelerations, self.snr_db = (float(accelerations[0]), float(accelerations[1])), tuple(map(float, snr_db))
        self.noise_free, self.estimators, self.fastmri_fraction = float(noise_free), list(estimators), fastmri_fraction

    def draw_coils(self, rng: np.random.Generator) -> int:
        """A coil count (one per batch: the items of a batch share it)."""
        return int(rng.choice(self.coils))

    def draw_shared(self, rng: np.random.Generator) -> int:
        """What the items of a batch share (:class:`~rim_monai.data.AcquisitionBatchSampler`): the coil count."""
        return self.draw_coils(rng)

    def draw(self, rng: np.random.Generator, coils: int | None = None) -> AcquisitionSettings:
        """One acquisition (``coils`` fixed when given)."""
        coils = self.draw_coils(rng) if coils is None else int(coils)
        low, high = self.accelerations
        acceleration = float(math.exp(rng.uniform(math.log(low), math.log(high)))) if high > low else low
        fraction = None if rng.random() < self.fastmri_fraction else float(rng.uniform(0.03, 0.12))
        snr = None if rng.random() < self.noise_free else float(rng.uniform(*self.snr_db))
        estimator = "lowres" if coils == 1 else str(rng.choice(self.estimators))  # one coil: its phase map
        return AcquisitionSettings(coils, str(rng.choice(self.mask_funcs)), acceleration, fraction, snr, estimator)


def varied_coil_maps(coils: int, shape: Sequence[int], rng: np.random.Generator) -> torch.Tensor:
    """True coil maps ``(coils, H, W)`` complex64: birdcage maps (ring radius 1.5-3 half fields of view) in a random
    orientation (one of the 8 flips / quarter turns), each coil with its own smooth phase; ones for one coil."""
    height, width = int(shape[0]), int(shape[1])
    if coils == 1:
        return torch.ones(1, height, width, dtype=torch.complex64)
    turn, flip = int(rng.integers(4)), bool(rng.integers(2))
    grid = (width, height) if turn % 2 else (height, width)
    maps = birdcage_maps(coils, grid, radius=float(rng.uniform(1.5, 3.0)))
    maps = torch.rot90(maps, turn, dims=(-2, -1))
    maps = maps.flip(-1) if flip else maps
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    phases = torch.stack([smooth_phase((height, width), math.pi / 2, 1, generator) for _ in range(coils)])
    return (maps * torch.polar(torch.ones_like(phases), phases)).to(torch.complex64).contiguous()


def simulate_acquisition(
    image: torch.Tensor, settings: AcquisitionSettings, rng: np.random.Generator, maps: str | None = None
) -> dict[str, torch.Tensor]:
    """Measure a complex reference ``image`` ``(H, W)`` with ``settings`` (module docstring).

    ``maps`` (one of :data:`MAP_CHOICES`) gives a multi-coil operator other maps than ``settings.estimator``, with the
    same k-space, mask and noise (the mask's calibration region follows ``settings``): the same items under another
    estimator, or an oracle.

    Returns:
        ``{"kspace": (coils, H, W) complex64, "mask": (1, H, W) float32, "sens": (coils, H, W) complex64 (estimated
        maps), "target": (1, H, W) complex64, "sigma": () float32 (noise level per k-space sample)}``.

    Raises:
        ValueError: naming ``image`` when it is not a complex 2D tensor, or ``maps`` when not one of
            :data:`MAP_CHOICES`.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 2 or not image.is_complex():
        raise ValueError(f"image: expected a complex tensor (H, W), got {getattr(image, 'shape', type(image))}.")
    if maps is not None and maps not in MAP_CHOICES:
        raise ValueError(f"maps: expected None or one of {MAP_CHOICES}, got {maps!r}.")
    choice = settings.estimator if maps is None or settings.coils == 1 else maps
    height, width = image.shape
    seed = int(rng.integers(2**31))
    espirit = settings.estimator == "espirit" and settings.coils > 1
    fraction = _calibration_lines(width, settings.acceleration, settings.center_fraction, ESPIRIT_LINES if espirit else 8)
    mask = mask_function(settings.mask_func)((height, width), settings.acceleration, fraction, seed).float()
    true_maps = varied_coil_maps(settings.coils, (height, width), rng)
    full = fft2c(true_maps * image)
    sigma = 0.0
    if settings.snr_db is not None:
        sigma = float(full.abs().pow(2).mean().sqrt()) / 10 ** (settings.snr_db / 20)
        generator = torch.Generator().manual_seed(seed)
        noise = torch.complex(torch.randn(full.shape, generator=generator), torch.randn(full.shape, generator=generator))
        full = full + noise * (sigma / math.sqrt(2))
    kspace = (full * mask).to(torch.complex64)
    sens, target = true_maps, image
    if choice != "true":
        method = "lowres" if choice == "aligned" else choice
        estimated = estimate_sensitivities_or_none(kspace, method)  # lowres on a narrow calibration box
        if estimated is not None and choice == "aligned":
            estimated = _aligned(true_maps, estimated)
        if estimated is not None:
            sens, target = estimated, _combined(image, true_maps, estimated)
    return {"kspace": kspace, "mask": mask[None], "sens": sens.to(torch.complex64),
            "target": target[None].to(torch.complex64), "sigma": torch.tensor(sigma, dtype=torch.float32)}


def _aligned(true_maps: torch.Tensor, estimated: torch.Tensor) -> torch.Tensor:
    """The true maps normalised to unit root-sum-of-squares, with the common phase of ``estimated`` (module
    docstring); zero where ``estimated`` is."""
    unit = true_maps / rss(true_maps, dim=0, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    common = (unit.conj() * estimated).sum(0, keepdim=True)
    covered = estimated.abs().square().sum(0, keepdim=True) > 0
    return torch.where(covered, unit * torch.sgn(common), 0).to(torch.complex64)


def _combined(image: torch.Tensor, true_maps: torch.Tensor, estimated: torch.Tensor) -> torch.Tensor:
    r"""The image the estimated maps see, :math:`\hat x = \sum_c \bar{\hat S}_c S_c x` where they cover the
    object (:math:`\sum_c |\hat S_c|^2 > 1/2`), else :math:`x`.

    Estimated maps carry the phase of the low-resolution image (and any other phase common to the coils), which the
    data cannot tell from the object's; so the target of an item is the coil combination with its own maps, as for
    measured data, and its magnitude is :math:`|x|` where the maps are exact.
    """
    combined = (estimated.conj() * true_maps).sum(0) * image
    covered = estimated.abs().square().sum(0) > 0.5
    return torch.where(covered, combined, image)

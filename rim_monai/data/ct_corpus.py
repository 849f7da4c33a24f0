r"""The CT training corpus (issue 14): real CT patients, ellipses and natural images, measured with randomised doses,
geometries and view counts — the CT counterpart of :mod:`rim_monai.data.mri_corpus`, built from its pieces.

Images are *relative attenuation* :math:`m = \mu / \mu_\text{water} = \max(0,\ 1 + \text{HU}/1000)` (air 0, water 1,
bone about 2), so zero padding is air and a smaller object is a zoom away:

- :func:`read_ct_slices`: the 2D slices of one CT scan in :math:`m` (any format of
  :func:`~rim_monai.data.mr_readers.read_mr_volume`; :func:`hounsfield` calibrates scans not stored in HU);
- :class:`CTCorpus`: :class:`~rim_monai.data.MRICorpus` reading with :func:`read_ct_slices`, natural images (BSDS300,
  scaled to a 99.5th percentile of 1) mapped to :math:`m \in [0, \text{natural\_attenuation}]`;
- :class:`CTAcquisitionSampler`: per batch a ``(geometry, views)`` pair (the items of a batch share the operator),
  per item :math:`I_0` log-uniform in ``photons`` and a field of view ``fov_mm`` (the object's physical size);
- :func:`simulate_ct`: the measurement of one item: on a grid ``upsample`` times finer than the item (no inverse
  crime), :math:`N \sim \mathrm{Poisson}(I_0 e^{-s A_\text{fine}\mu})` with :math:`s` = ``fov_mm / size`` mm per
  pixel, zero counts clamped to 0.1, :math:`y = -\log(N/I_0)/s`; the target is :math:`\mu` (mm⁻¹) on the item's grid
  (2x2 means of the fine image);
- :class:`CTTrainingPatches`: :class:`~rim_monai.data.MRITrainingPatches` drawing (a patient with weight
  :math:`\sqrt{\text{slices}}`, a natural image or, with probability ``ellipse_fraction``, random ellipses), a field
  of view of ``zoom`` times the source's larger side (``zoom`` > 1: the object fills only part of the field of view;
  < 1: a crop), a random flip / quarter turn, then :func:`simulate_ct`;
- :class:`CTValidationSlices`: held-out patients' whole slices under the fixed cycle :data:`VALIDATION_ACQUISITIONS`
  (both geometries, 30–120 views, :math:`I_0` from 1e3 to 1e5), seeded per item and simulated once.

One network serves both geometries: learned primal-dual receives the ray transform with every batch
(``net(y, A)``), its dual network convolves sinograms of any number of views and detector bins, and
:func:`batch_operator` builds (and caches) ``A`` from the batch's ``geometry`` / ``views`` / ``size``
(:class:`~rim_monai.engines.RayTransformFromBatch`).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from rim_monai.data.ct_protocol import ct_operator
from rim_monai.data.intensity import MU_WATER
from rim_monai.data.mr_readers import read_mr_volume, volume_slices
from rim_monai.data.mri_corpus import MRICorpus, MRITrainingPatches, random_field_of_view
from rim_monai.data.phantoms import ellipse_phantom, random_ellipses
from rim_monai.data.simulate_ct import add_sinogram_noise, finer_ray_transform
from rim_monai.operators import RayTransform

__all__ = [
    "hounsfield", "read_ct_slices", "CTCorpus", "CTAcquisitionSettings", "CTAcquisitionSampler", "simulate_ct",
    "CTTrainingPatches", "CTValidationSlices", "VALIDATION_ACQUISITIONS", "batch_operator", "simulation_operator",
    "GEOMETRIES",
]

GEOMETRIES = ("parallel", "fan")


@dataclass(frozen=True)
class CTAcquisitionSettings:
    """One CT acquisition: ``geometry`` (``"parallel"`` / ``"fan"``), ``views``, ``photons`` (:math:`I_0` per
    detector bin) and ``fov_mm`` (the field of view's side in mm: the pixel size is ``fov_mm / size``)."""

    geometry: str = "parallel"
    views: int = 60
    photons: float = 1e4
    fov_mm: float = 256.0


#: the acquisitions validation items cycle through (the first is the bundle's default protocol)
VALIDATION_ACQUISITIONS = (
    CTAcquisitionSettings("parallel", 60, 1e4),
    CTAcquisitionSettings("fan", 60, 1e4),
    CTAcquisitionSettings("parallel", 30, 1e3),
    CTAcquisitionSettings("fan", 120, 1e5),
    CTAcquisitionSettings("parallel", 120, 2e3),
    CTAcquisitionSettings("fan", 30, 2e3),
)


def hounsfield(volume: np.ndarray) -> np.ndarray:
    """A scan's values in HU: as stored when it holds values below -200 (DICOM after its rescale, NIfTI in HU);
    8-bit images (maximum at most 255: windowed PNG / JPEG exports) ``[0, 255]`` mapped linearly to
    ``[-1000, 1000]`` HU, an approximation for training only; else unsigned CT stored as ``HU + 1024``.

    Example:
        >>> hounsfield(np.array([0.0, 255.0])).tolist()
        [-1000.0, 1000.0]
    """
    low, high = float(volume.min()), float(volume.max())
    if low < -200:
        return volume
    if high <= 255:
        return volume / 255.0 * 2000.0 - 1000.0
    return volume - 1024.0


def read_ct_slices(path: str | os.PathLike, max_per_axis: int = 24) -> list[np.ndarray]:
    r"""The 2D slices of one CT scan (:func:`~rim_monai.data.mr_readers.read_mr_volume`, :func:`hounsfield`,
    :func:`~rim_monai.data.mr_readers.volume_slices`) as relative attenuation :math:`\max(0, 1 + \text{HU}/1000)`
    (float32 ``(H, W)``); slices with less than 5 % of their pixels above -500 HU (air, empty edges) are dropped.

    Raises:
        ValueError: naming ``path`` for a missing file or an unknown format.
    """
    volume, spacing, stack = read_mr_volume(path)
    relative = np.clip(1.0 + hounsfield(np.real(volume).astype(np.float32)) / 1000.0, 0.0, None)
    return [np.ascontiguousarray(s, dtype=np.float32) for s in volume_slices(relative, spacing, stack, max_per_axis)
            if float((s > 0.5).mean()) >= 0.05]


class CTCorpus(MRICorpus):
    """Slices of real CT scans in relative attenuation (:func:`read_ct_slices`) and natural images, in memory.

    Args:
        root: the data root (``../shared/data``) the ``subjects`` and ``natural_dir`` paths are relative to.
        subjects: one entry per patient: a relative path, or a list of relative paths (several files of one person).
        natural_dir: relative folder of natural images (e.g. ``bsds300/images/train``); ``None``: none.
        max_per_axis: slices per axis of a volume.
        natural_attenuation: natural images (99.5th percentile 1) are scaled to this relative attenuation (2: the
            brightest pixels are bone-like, +1000 HU).

    Raises:
        ValueError: naming ``subjects`` / ``natural_dir`` for a path that does not exist or yields no slices.

    Example:
        >>> corpus = CTCorpus("../shared/data", [["ct/slices/dcmqi_ct-3slice"]])  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike,
        subjects: Sequence[str | Sequence[str]],
        natural_dir: str | None = None,
        max_per_axis: int = 24,
        natural_attenuation: float = 2.0,
    ) -> None:
        super().__init__(root, subjects, natural_dir, max_per_axis, reader=read_ct_slices)
        self.natural = [image * float(natural_attenuation) for image in self.natural]


class CTAcquisitionSampler:
    """Draws :class:`CTAcquisitionSettings` from the training distribution.

    Args:
        geometries: geometries to draw from (uniformly, one per batch), from :data:`GEOMETRIES`.
        views: view counts to draw from (uniformly, one per batch), e.g. ``[30, 45, 60, 90, 120]``.
        photons: ``(low, high)``: :math:`I_0` log-uniform in this range, per item.
        fov_mm: ``(low, high)``: the field of view's side in mm, uniform, per item.

    Raises:
        ValueError: naming an argument with an empty or invalid value.

    Example:
        >>> sampler = CTAcquisitionSampler(views=[30, 60])
        >>> sampler.draw(np.random.default_rng(0)).views in (30, 60)
        True
    """

    def __init__(
        self,
        geometries: Sequence[str] = GEOMETRIES,
        views: Sequence[int] = (30, 45, 60, 90, 120),
        photons: Sequence[float] = (1e3, 1e5),
        fov_mm: Sequence[float] = (200.0, 350.0),
    ) -> None:
        if not geometries or any(g not in GEOMETRIES for g in geometries):
            raise ValueError(f"geometries: expected names from {GEOMETRIES}, got {list(geometries)}.")
        if not views or any(int(v) < 1 for v in views):
            raise ValueError(f"views: expected positive view counts, got {list(views)}.")
        if len(photons) != 2 or not 0 < photons[0] <= photons[1]:
            raise ValueError(f"photons: expected (low, high) with 0 < low <= high, got {list(photons)}.")
        if len(fov_mm) != 2 or not 0 < fov_mm[0] <= fov_mm[1]:
            raise ValueError(f"fov_mm: expected (low, high) with 0 < low <= high, got {list(fov_mm)}.")
        self.geometries, self.views = [str(g) for g in geometries], [int(v) for v in views]
        self.photons, self.fov_mm = (float(photons[0]), float(photons[1])), (float(fov_mm[0]), float(fov_mm[1]))

    def draw_shared(self, rng: np.random.Generator) -> tuple[str, int]:
        """What the items of a batch share (:class:`~rim_monai.data.AcquisitionBatchSampler`): ``(geometry, views)``."""
        return str(rng.choice(self.geometries)), int(rng.choice(self.views))

    def draw(self, rng: np.random.Generator, shared: tuple[str, int] | None = None) -> CTAcquisitionSettings:
        """One acquisition (``(geometry, views)`` fixed when ``shared`` is given)."""
        geometry, views = self.draw_shared(rng) if shared is None else (str(shared[0]), int(shared[1]))
        low, high = self.photons
        photons = float(math.exp(rng.uniform(math.log(low), math.log(high)))) if high > low else low
        return CTAcquisitionSettings(geometry, views, photons, float(rng.uniform(*self.fov_mm)))


@functools.lru_cache(maxsize=32)
def batch_operator(geometry: str, size: int, views: int) -> RayTransform:
    """The reconstruction operator of a batch, ``ct_operator(geometry, (size, size), views)`` (sparse matrix backend),
    built once per ``(geometry, size, views)`` (32 kept)."""
    return ct_operator(geometry, (int(size), int(size)), int(views))


@functools.lru_cache(maxsize=32)
def simulation_operator(geometry: str, size: int, views: int, upsample: int = 2) -> RayTransform:
    """The simulation operator: :func:`batch_operator`'s acquisition on a grid ``upsample`` times finer
    (:func:`~rim_monai.data.finer_ray_transform`), applied by ASTRA's CPU projector (no matrix to store)."""
    coarse = ct_operator(geometry, (int(size), int(size)), int(views), backend="odl", impl="astra_cpu")
    return finer_ray_transform(coarse, int(upsample))


def simulate_ct(
    fine: torch.Tensor, settings: CTAcquisitionSettings, size: int, rng: np.random.Generator, upsample: int = 2,
    mu_water: float = MU_WATER,
) -> dict[str, torch.Tensor | str]:
    """Measure a relative-attenuation image ``fine`` ``(upsample * size, upsample * size)`` with ``settings`` (module
    docstring).

    Returns:
        ``{"sinogram": (1, views, detectors), "target": (1, size, size)`` (:math:`\\mu` in mm⁻¹)``, "geometry": str,
        "views": (), "size": (), "photons": ()}``.

    Raises:
        ValueError: naming ``fine`` when it is not a real ``(upsample * size)``-square image.
    """
    side = int(upsample) * int(size)
    if not isinstance(fine, torch.Tensor) or tuple(fine.shape) != (side, side) or fine.is_complex():
        raise ValueError(f"fine: expected a real image of shape ({side}, {side}), got "
                         f"{getattr(fine, 'shape', type(fine))}.")
    mu = fine.float()[None, None] * mu_water
    target = F.avg_pool2d(mu, int(upsample))[0] if upsample > 1 else mu[0]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The 'astra_cpu' backend may be too slow", RuntimeWarning)
        clean = simulation_operator(settings.geometry, int(size), settings.views, int(upsample))(mu)[0]
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    sinogram = add_sinogram_noise(clean, "poisson", photons=settings.photons,
                                  attenuation_scale=settings.fov_mm / int(size), generator=generator)
    return {"sinogram": sinogram.float(), "target": target.float(), "geometry": settings.geometry,
            "views": torch.tensor(settings.views), "size": torch.tensor(int(size)),
            "photons": torch.tensor(settings.photons, dtype=torch.float32)}


def _ellipses(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random ellipses (the learned primal-dual distribution) on ``(size, size)`` as relative attenuation."""
    return np.clip(ellipse_phantom(random_ellipses(rng), (size, size)), 0.0, None)


class CTTrainingPatches(MRITrainingPatches):
    """Training items (module docstring), indexed by ``(seed, (geometry, views), size)`` tuples from
    :class:`~rim_monai.data.AcquisitionBatchSampler` (an ``int`` index: ``(index, drawn, sizes[0])``).

    Items: :func:`simulate_ct`'s dictionary.

    Args:
        corpus: the :class:`CTCorpus` (may be empty: then every item is ellipses).
        acquisitions: the :class:`CTAcquisitionSampler`.
        sizes: item sizes ``S`` (the first is the size of ``int`` indices).
        zooms: ``(low, high)``: the field of view in units of the source's larger side, log-uniform (ellipses, which
            fill their square, only zoom out: at least 1).
        natural_fraction: probability of a natural image (when the corpus has any).
        ellipse_fraction: probability of random ellipses.
        upsample: simulation grid factor (:func:`simulate_ct`).
        mu_water: attenuation of water per mm.
        length: the nominal ``len()``.

    Raises:
        ValueError: naming ``ellipse_fraction`` (or the arguments of :class:`~rim_monai.data.MRITrainingPatches`).
    """

    def __init__(
        self,
        corpus: CTCorpus,
        acquisitions: CTAcquisitionSampler,
        sizes: Sequence[int] = (128,),
        zooms: Sequence[float] = (0.7, 1.6),
        natural_fraction: float = 0.15,
        ellipse_fraction: float = 0.15,
        upsample: int = 2,
        mu_water: float = MU_WATER,
        length: int = 100_000,
    ) -> None:
        if not 0 <= ellipse_fraction <= 1:
            raise ValueError(f"ellipse_fraction: expected a probability, got {ellipse_fraction}.")
        super().__init__(corpus, acquisitions, sizes, zooms, natural_fraction, max_phase=0.0, length=length,
                         relative_zoom=True)
        self.ellipse_fraction, self.upsample, self.mu_water = float(ellipse_fraction), int(upsample), float(mu_water)

    def _draw(self, rng: np.random.Generator, size: int) -> torch.Tensor:
        if not (self.corpus.slices or self.corpus.natural) or rng.random() < self.ellipse_fraction:
            low, high = max(self.zooms[0], 1.0), max(self.zooms[1], 1.0)
            zoom = math.exp(rng.uniform(math.log(low), math.log(high)))
            return random_field_of_view(_ellipses(rng, size), size, zoom, rng)
        return super()._draw(rng, size)

    def __getitem__(self, index: int | Sequence) -> dict[str, torch.Tensor | str]:
        seed, shared, size = (index, None, self.sizes[0]) if isinstance(index, (int, np.integer)) else index
        rng = np.random.default_rng(int(seed))
        settings = self.acquisitions.draw(rng, shared)
        fine = self.image(rng, self.upsample * int(size)).real.clamp_min(0.0)
        return simulate_ct(fine, settings, int(size), rng, self.upsample, self.mu_water)


class CTValidationSlices(Dataset):
    """Held-out patients' whole slices (and optionally ellipse phantoms) under :data:`VALIDATION_ACQUISITIONS`
    (cycled), simulated once with per-item seeds.

    Each slice is resampled so that its larger side spans the ``size`` grid (the bundle's protocol: a 512² slice on
    a 256² grid of 1 mm pixels, ``fov_mm`` 256). Items are :func:`simulate_ct`'s dictionaries plus ``"name"``.

    Args:
        corpus: the validation patients (:class:`CTCorpus`, no natural images).
        slices_per_subject: slices per patient, evenly spaced over its slices.
        size: the grid (256: the bundle's).
        seed: seed of the placement and noise.
        acquisitions: the cycle of acquisitions (default :data:`VALIDATION_ACQUISITIONS`).
        ellipses: number of ellipse phantoms after the patients (0 for checkpoint selection on patients only).
        upsample: simulation grid factor.
        mu_water: attenuation of water per mm.
    """

    def __init__(
        self,
        corpus: CTCorpus,
        slices_per_subject: int = 3,
        size: int = 256,
        seed: int = 1,
        acquisitions: Sequence[CTAcquisitionSettings] = VALIDATION_ACQUISITIONS,
        ellipses: int = 0,
        upsample: int = 2,
        mu_water: float = MU_WATER,
    ) -> None:
        fine_size = int(upsample) * int(size)
        sources: list[tuple[str, np.ndarray]] = []
        for name, subject in zip(corpus.names, corpus.slices):
            picks = np.unique(np.linspace(0, len(subject) - 1, slices_per_subject).round().astype(int))
            sources += [(f"{Path(name).name}#{int(i)}", subject[int(i)]) for i in picks]
        ellipse_rng = np.random.default_rng([int(seed), 2**20])
        sources += [(f"ellipses_{j}", _ellipses(ellipse_rng, fine_size)) for j in range(int(ellipses))]
        self.items: list[dict] = []
        for count, (name, image) in enumerate(sources):
            rng = np.random.default_rng([int(seed), count])
            fine = random_field_of_view(image, fine_size, max(image.shape) / fine_size, rng).real.clamp_min(0.0)
            settings = acquisitions[count % len(acquisitions)]
            self.items.append({**simulate_ct(fine, settings, int(size), rng, int(upsample), mu_water), "name": name})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]

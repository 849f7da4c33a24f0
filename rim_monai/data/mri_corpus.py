r"""The MRI training corpus: real MR subjects and natural images, measured with randomised acquisitions.

Three pieces, composed by the MRI bundle's ``train.json``:

- :class:`MRICorpus`: the 2D slices of a list of real scans (paths relative to a data root, any format of
  :func:`~rim_monai.data.mr_readers.read_mr_slices`), each scan scaled by its 99.5th percentile, plus optional
  natural images (BSDS300 train, greyscale) as a texture prior and optional procedural brain phantoms
  (:func:`~rim_monai.data.brain_phantom.brain_phantom`, seeds from ``phantom_seed`` on) as a piecewise-smooth
  prior; held in memory.
- :class:`MRITrainingPatches`: training items. Item ``(seed, coils, size)`` takes a random source (a natural image
  with probability ``natural_fraction``, a brain phantom with probability ``phantom_fraction``, else a subject drawn
  with weight :math:`\sqrt{\text{its slices}}`, then a random slice), a random field of view of
  ``zoom`` x ``size`` pixels (zoom log-uniform in ``zooms``: half to twice the native resolution), resampled to
  ``size`` x ``size`` (antialiased), a random flip / quarter turn, a smooth random phase for magnitude images, and
  a random acquisition (:class:`~rim_monai.data.AcquisitionSampler`, coil maps estimated from the calibration region).
  :class:`AcquisitionBatchSampler` draws one ``(coils, size)`` per batch (items of a batch must share their shapes)
  and as many items as fit ``pixels_per_batch``.
- :class:`MRIValidationSlices`: full slices (centre-cropped to at most ``max_size``, native resolution) of held-out
  subjects, or squares inside their anatomy (``field_of_view="fill"``), under a fixed cycle of acquisitions, seeded
  per item and simulated once.

Split by subject: a subject's files (all contrasts of one person) go to one of train / validation / test only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from rim_monai.data.brain_phantom import brain_phantom
from rim_monai.data.mr_readers import IMAGE_SUFFIXES, read_mr_slices
from rim_monai.data.mri_acquisition import MAP_CHOICES, AcquisitionSampler, AcquisitionSettings, simulate_acquisition
from rim_monai.data.simulate_mri import smooth_phase

__all__ = ["MRICorpus", "MRITrainingPatches", "AcquisitionBatchSampler", "MRIValidationSlices",
           "VALIDATION_ACQUISITIONS", "filled_square", "random_field_of_view"]

#: tissue: a pixel above this fraction of its slice's 99.5th percentile (the slices are scaled by it)
TISSUE_LEVEL = 0.1
#: a field of view is filled when at least this share of its pixels is tissue
FILLED_SHARE = 0.8

#: the acquisitions validation items cycle through: (coils, mask, acceleration, snr_db, estimator)
VALIDATION_ACQUISITIONS = (
    AcquisitionSettings(8, "random", 4.0, None, 40.0, "lowres"),
    AcquisitionSettings(8, "equispaced", 8.0, None, 30.0, "espirit"),
    AcquisitionSettings(1, "random", 4.0, None, None, "lowres"),
    AcquisitionSettings(12, "poisson_disc", 8.0, None, 25.0, "lowres"),
    AcquisitionSettings(4, "random", 8.0, None, 40.0, "espirit"),
)


class MRICorpus:
    """Slices of real MR scans and natural images, in memory (float32 magnitudes or complex64).

    Args:
        root: the data root (``../shared/data``) the ``subjects`` and ``natural_dir`` paths are relative to.
        subjects: one entry per subject: a relative path, or a list of relative paths (several contrasts of one
            person). Each path is a file or a DICOM series folder.
        natural_dir: relative folder of natural images (PNG / JPEG, e.g. ``bsds300/images/train``); ``None``: none.
        max_per_axis: slices per axis of a volume (:func:`~rim_monai.data.mr_readers.read_mr_slices`).
        reader: ``(path, max_per_axis) -> slices`` of one scan (default
            :func:`~rim_monai.data.mr_readers.read_mr_slices`; the CT corpus passes
            :func:`~rim_monai.data.ct_corpus.read_ct_slices`).
        phantoms: number of procedural brain phantoms (:func:`~rim_monai.data.brain_phantom.brain_phantom`,
            ``phantom_size`` squared, seeds ``phantom_seed`` ... ``phantom_seed + phantoms - 1``; the MRI bundle's
            shipped input uses seeds 0 and 1), scaled by their 99.5th percentile like the scans.
        phantom_seed: the first phantom seed.
        phantom_size: the phantoms' side in pixels.

    Raises:
        ValueError: naming ``subjects`` when a path does not exist under ``root`` or yields no slices, or
            ``phantoms`` when negative.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        subjects: Sequence[str | Sequence[str]],
        natural_dir: str | None = None,
        max_per_axis: int = 24,
        reader: Callable[[Path, int], list[np.ndarray]] = read_mr_slices,
        phantoms: int = 0,
        phantom_seed: int = 1000,
        phantom_size: int = 256,
    ) -> None:
        if int(phantoms) < 0:
            raise ValueError(f"phantoms: expected a count of at least 0, got {phantoms}.")
        self.root = Path(root)
        self.names: list[str] = []
        self.slices: list[list[np.ndarray]] = []
        for entry in subjects:
            paths = [entry] if isinstance(entry, (str, os.PathLike)) else list(entry)
            images: list[np.ndarray] = []
            for rel in paths:
                if not (self.root / rel).exists():
                    raise ValueError(f"subjects: {rel} does not exist under {self.root}.")
                images.extend(reader(self.root / rel, max_per_axis))
            if not images:
                raise ValueError(f"subjects: {paths} gave no usable slices.")
            self.names.append(str(paths[0]))
            self.slices.append(images)
        self.natural: list[np.ndarray] = []
        if natural_dir is not None:
            from PIL import Image

            folder = self.root / natural_dir
            if not folder.is_dir():
                raise ValueError(f"natural_dir: {natural_dir} is not a folder under {self.root}.")
            for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                grey = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
                self.natural.append(grey / max(float(np.percentile(grey, 99.5)), 1.0))
        self.phantoms: list[np.ndarray] = []
        for seed in range(int(phantom_seed), int(phantom_seed) + int(phantoms)):
            phantom = brain_phantom((phantom_size, phantom_size), seed=seed)
            self.phantoms.append(phantom / float(np.percentile(phantom, 99.5)))

    def __len__(self) -> int:
        return len(self.slices)

    def summary(self) -> str:
        """One line: subjects, slices, natural images and phantoms."""
        return (f"{len(self.slices)} subjects, {sum(map(len, self.slices))} slices, "
                f"{len(self.natural)} natural images, {len(self.phantoms)} phantoms")


def random_field_of_view(image: np.ndarray, size: int, zoom: float, rng: np.random.Generator) -> torch.Tensor:
    """A random field of view of about ``zoom * size`` pixels of ``image`` (zero-padded where the image is
    smaller), resampled to ``(size, size)`` (bilinear, antialiased when shrinking); complex output.

    Example:
        >>> random_field_of_view(np.ones((40, 40), np.float32), 16, 5.0, np.random.default_rng(0)).shape
        torch.Size([16, 16])
    """
    tensor = torch.from_numpy(image)
    tensor = tensor if tensor.is_complex() else tensor.to(torch.complex64)
    fov = max(8, int(round(size * zoom)))
    height, width = tensor.shape
    pad_h, pad_w = max(fov - height, 0), max(fov - width, 0)
    if pad_h or pad_w:
        top, left = int(rng.integers(pad_h + 1)), int(rng.integers(pad_w + 1))
        canvas = torch.zeros(height + pad_h, width + pad_w, dtype=tensor.dtype)
        canvas[top : top + height, left : left + width] = tensor
        tensor, (height, width) = canvas, canvas.shape
    top, left = int(rng.integers(height - fov + 1)), int(rng.integers(width - fov + 1))
    crop = torch.view_as_real(tensor[top : top + fov, left : left + fov]).permute(2, 0, 1)[None]
    if fov != size:
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=fov > size, align_corners=False)
    return torch.view_as_complex(crop[0].permute(1, 2, 0).contiguous())


class MRITrainingPatches(Dataset):
    """Training items (module docstring), indexed by ``(seed, coils, size)`` tuples from
    :class:`AcquisitionBatchSampler` (an ``int`` index means ``(index, drawn coils, sizes[0])``).

    Items: ``{"kspace": (coils, S, S), "mask": (1, S, S), "sens": (coils, S, S), "target": (1, S, S), "sigma": ()}``.

    Args:
        corpus: the :class:`MRICorpus`.
        acquisitions: the :class:`~rim_monai.data.AcquisitionSampler`.
        sizes: item sizes ``S`` (the first is the size of ``int`` indices).
        zooms: ``(low, high)`` field of view per item pixel (log-uniform).
        natural_fraction: probability of a natural image (when the corpus has any).
        phantom_fraction: probability of a brain phantom (when the corpus has any).
        max_phase: largest synthetic phase (radians) of magnitude images.
        length: the nominal ``len()`` (items are random; the batch sampler decides how many are drawn).
        relative_zoom: ``zooms`` are fields of view in units of the source's larger side (1: the whole image just
            fits, 2: it fills half the field of view) instead of source pixels per item pixel.
        fill_fraction: probability that an item's anatomy fills its field of view (80 % of the pixels, see
            :meth:`image`): tissue to every edge, as where a scan is planned tightly.

    Raises:
        ValueError: naming ``sizes``, ``zooms``, ``natural_fraction``, ``phantom_fraction`` or ``fill_fraction``.
    """

    def __init__(
        self,
        corpus: MRICorpus,
        acquisitions: AcquisitionSampler,
        sizes: Sequence[int] = (128,),
        zooms: Sequence[float] = (0.5, 2.0),
        natural_fraction: float = 0.25,
        phantom_fraction: float = 0.0,
        max_phase: float = math.pi,
        length: int = 100_000,
        relative_zoom: bool = False,
        fill_fraction: float = 0.0,
    ) -> None:
        if not sizes or min(int(s) for s in sizes) < 16:
            raise ValueError(f"sizes: expected item sizes of at least 16, got {list(sizes)}.")
        if len(zooms) != 2 or not 0 < zooms[0] <= zooms[1]:
            raise ValueError(f"zooms: expected (low, high) with 0 < low <= high, got {list(zooms)}.")
        if not 0 <= natural_fraction <= 1:
            raise ValueError(f"natural_fraction: expected a probability, got {natural_fraction}.")
        if not 0 <= fill_fraction <= 1:
            raise ValueError(f"fill_fraction: expected a probability, got {fill_fraction}.")
        if not 0 <= phantom_fraction <= 1 - natural_fraction:
            raise ValueError(f"phantom_fraction: expected a probability of at most 1 - natural_fraction "
                             f"({1 - natural_fraction:g}), got {phantom_fraction}.")
        self.corpus, self.acquisitions = corpus, acquisitions
        self.sizes, self.zooms = [int(s) for s in sizes], (float(zooms[0]), float(zooms[1]))
        self.natural_fraction = natural_fraction if corpus.natural else 0.0
        self.phantom_fraction = phantom_fraction if corpus.phantoms else 0.0
        self.max_phase, self.length, self.relative_zoom = float(max_phase), int(length), bool(relative_zoom)
        self.fill_fraction = float(fill_fraction)
        counts = np.sqrt([len(s) for s in corpus.slices])
        self.weights = counts / counts.sum()  # subjects drawn with weight sqrt(slices): volumes count more than a slice

    def __len__(self) -> int:
        return self.length

    def image(self, rng: np.random.Generator, size: int, attempts: int = 8) -> torch.Tensor:
        """A random complex reference image ``(size, size)`` (source, field of view, orientation, phase); a crop with
        less than 5 % of its pixels above a tenth of the slice's 99.5th percentile (background) is drawn again, up to
        ``attempts`` times. With probability ``fill_fraction`` the crop must instead fill the field of view (80 % of
        its pixels above that level, as :func:`filled_square`), up to ``4 * attempts`` times."""
        fill = self.fill_fraction > 0 and rng.random() < self.fill_fraction
        needed, attempts = (FILLED_SHARE, 4 * attempts) if fill else (0.05, attempts)
        for _ in range(attempts - 1):
            image = self._draw(rng, size)
            if float((image.abs() > TISSUE_LEVEL).float().mean()) >= needed:
                return image
        return self._draw(rng, size)

    def _draw(self, rng: np.random.Generator, size: int) -> torch.Tensor:
        draw = rng.random()
        if draw < self.natural_fraction:
            source = self.corpus.natural[int(rng.integers(len(self.corpus.natural)))]
        elif draw < self.natural_fraction + self.phantom_fraction:
            source = self.corpus.phantoms[int(rng.integers(len(self.corpus.phantoms)))]
        else:
            subject = self.corpus.slices[int(rng.choice(len(self.corpus.slices), p=self.weights))]
            source = subject[int(rng.integers(len(subject)))]
        zoom = math.exp(rng.uniform(math.log(self.zooms[0]), math.log(self.zooms[1])))
        zoom = zoom * max(source.shape) / size if self.relative_zoom else zoom
        image = random_field_of_view(source, size, zoom, rng)
        image = torch.rot90(image, int(rng.integers(4)))
        image = image.flip(-1) if rng.integers(2) else image
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        max_phase = float(rng.uniform(0, self.max_phase))
        phase = smooth_phase((size, size), max_phase, int(rng.integers(1, 4)), generator) if max_phase else None
        if phase is not None:
            image = image * torch.polar(torch.ones_like(phase), phase)
        return image.contiguous()

    def __getitem__(self, index: int | Sequence[int]) -> dict[str, torch.Tensor]:
        seed, coils, size = (index, None, self.sizes[0]) if isinstance(index, (int, np.integer)) else index
        rng = np.random.default_rng(int(seed))
        image = self.image(rng, int(size))
        return simulate_acquisition(image, self.acquisitions.draw(rng, coils), rng)


class AcquisitionBatchSampler(Sampler):
    """Batches of ``(seed, shared, size)`` indices for :class:`MRITrainingPatches`: one coil count (``shared``) and
    item size per batch, ``max(1, pixels_per_batch // size**2)`` items. Any sampler with ``draw_shared(rng)`` serves:
    the CT one (:class:`~rim_monai.data.CTAcquisitionSampler`) draws a ``(geometry, views)`` pair per batch instead.

    Args:
        acquisitions: draws what the items of a batch share
            (:meth:`~rim_monai.data.AcquisitionSampler.draw_shared`: the coil count).
        sizes: item sizes to draw from (uniformly).
        pixels_per_batch: the pixel budget of a batch (e.g. ``4 * 128**2``).
        seed: seed of the stream (a resumed run should pass a new one, or it repeats the first batches).
        length: batches per pass (ignite keeps one iterator across epochs of ``epoch_length`` batches).

    Raises:
        ValueError: naming ``pixels_per_batch`` when not positive.
    """

    def __init__(
        self, acquisitions: AcquisitionSampler, sizes: Sequence[int] = (128,), pixels_per_batch: int = 65536,
        seed: int = 0, length: int = 1_000_000,
    ) -> None:
        if int(pixels_per_batch) < 1:
            raise ValueError(f"pixels_per_batch: expected a positive number, got {pixels_per_batch}.")
        self.acquisitions, self.sizes = acquisitions, [int(s) for s in sizes]
        self.pixels, self.seed, self.length = int(pixels_per_batch), int(seed), int(length)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        rng = np.random.default_rng(self.seed)
        for _ in range(self.length):
            size = int(rng.choice(self.sizes))
            shared = self.acquisitions.draw_shared(rng)
            count = max(1, self.pixels // (size * size))
            yield [(int(rng.integers(2**62)), shared, size) for _ in range(count)]


def filled_square(
    magnitude: torch.Tensor, max_size: int, level: float = TISSUE_LEVEL, fill: float = FILLED_SHARE, min_size: int = 64
) -> tuple[int, int, int] | None:
    """A square centred on the anatomy's bounding box in which at least ``fill`` of the pixels exceed ``level`` (the
    slice is scaled by its 99.5th percentile): ``(top, left, side)``. The side starts at the bounding box's shorter
    side (at most ``max_size``, even) and shrinks by 10 % until the square is filled; ``None`` when it falls below
    ``min_size``.

    Example:
        >>> image = torch.zeros(128, 128); image[16:112, 32:96] = 1.0
        >>> filled_square(image, 256)
        (32, 32, 64)
    """
    inside = magnitude > level
    rows, cols = torch.nonzero(inside.any(dim=1)).flatten(), torch.nonzero(inside.any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    centre_row, centre_col = (int(rows[0]) + int(rows[-1]) + 1) // 2, (int(cols[0]) + int(cols[-1]) + 1) // 2
    side = min(int(rows[-1]) - int(rows[0]) + 1, int(cols[-1]) - int(cols[0]) + 1, max_size, *magnitude.shape) // 2 * 2
    height, width = magnitude.shape
    while side >= min_size:
        top = min(max(centre_row - side // 2, 0), height - side)
        left = min(max(centre_col - side // 2, 0), width - side)
        if float(inside[top : top + side, left : left + side].float().mean()) >= fill:
            return top, left, side
        side = int(side * 0.9) // 2 * 2
    return None


class MRIValidationSlices(Dataset):
    """Held-out full slices under :data:`VALIDATION_ACQUISITIONS` (cycled), simulated once with per-item seeds.

    Args:
        corpus: the validation subjects (:class:`MRICorpus`, no natural images).
        slices_per_subject: slices per subject, evenly spaced over its slices.
        max_size: centre crop (and no resampling) of larger slices, keeping the native resolution (slices under
            32 pixels on a side are left out).
        seed: seed of the phases, masks and noise.
        acquisitions: the cycle of acquisitions (default :data:`VALIDATION_ACQUISITIONS`).
        every_acquisition: simulate every slice under every acquisition (``len(acquisitions)`` items per slice, for
            model selection: more items, less noise) instead of one acquisition per slice, cycled.
        field_of_view: ``"centre"``: the slice's centre crop (air around the anatomy, as a scan is usually planned);
            ``"fill"``: a square inside the anatomy (:func:`filled_square`), so the anatomy touches every edge of the
            field of view, as in a tightly planned scan or a zoomed reconstruction (slices without such a square of
            at least 64 pixels are left out).
        map_estimator: ``None`` (default): each acquisition's own coil-map estimator; one of
            :data:`~rim_monai.data.mri_acquisition.MAP_CHOICES`: that one for every multi-coil acquisition, the
            k-space unchanged (``"aligned"``, the true maps in the estimate's convention, measures what the map
            estimation costs).

    Raises:
        ValueError: for an unknown ``field_of_view`` or ``map_estimator``.
    """

    def __init__(
        self,
        corpus: MRICorpus,
        slices_per_subject: int = 4,
        max_size: int = 256,
        seed: int = 1,
        acquisitions: Sequence[AcquisitionSettings] = VALIDATION_ACQUISITIONS,
        every_acquisition: bool = False,
        field_of_view: str = "centre",
        map_estimator: str | None = None,
    ) -> None:
        if field_of_view not in ("centre", "fill"):
            raise ValueError(f"field_of_view: expected 'centre' or 'fill', got {field_of_view!r}.")
        if map_estimator is not None and map_estimator not in MAP_CHOICES:
            raise ValueError(f"map_estimator: expected None or one of {MAP_CHOICES}, got {map_estimator!r}.")
        self.items: list[dict[str, torch.Tensor]] = []
        count = 0
        for subject in corpus.slices:
            subject = [s for s in subject if min(s.shape) >= 32]  # enough k-space for a calibration region
            picks = np.unique(np.linspace(0, len(subject) - 1, slices_per_subject).round().astype(int))
            for i in picks:
                scan = torch.from_numpy(subject[int(i)])
                if field_of_view == "fill":
                    box = filled_square(scan.abs(), max_size)
                    if box is None:
                        continue
                    top, left, side = box
                    crop = scan[top : top + side, left : left + side]
                else:
                    height, width = scan.shape
                    top, left = max(0, (height - max_size) // 2), max(0, (width - max_size) // 2)
                    crop = scan[top : top + max_size, left : left + max_size]
                crop = crop[: crop.shape[0] // 2 * 2, : crop.shape[1] // 2 * 2].to(torch.complex64)
                cycle = acquisitions if every_acquisition else [acquisitions[count % len(acquisitions)]]
                for settings in cycle:
                    rng = np.random.default_rng([int(seed), count])
                    image = crop
                    if not scan.is_complex():
                        phase = smooth_phase(tuple(crop.shape), math.pi / 2, 2, torch.Generator().manual_seed(count))
                        image = crop * torch.polar(torch.ones_like(phase), phase)
                    self.items.append(simulate_acquisition(image.contiguous(), settings, rng, map_estimator))
                    count += 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]

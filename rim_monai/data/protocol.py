r"""The shared base of the acquisition protocols: one object per modality owns its simulation pipeline.

A protocol says how a reference image :math:`x` becomes measurements :math:`y = \mathcal N(A x)` for one modality
(CT: :class:`~rim_monai.data.CTProtocol`, MRI: :class:`~rim_monai.data.MRIProtocol`, denoising:
:class:`~rim_monai.data.DenoisingProtocol`). A modality defines two things,

- :meth:`AcquisitionProtocol.simulation`: the acquisition as a random MONAI dictionary transform,
  ``{"image": (1, H, W)} -> {measurement_key: y, "target": x, ...}``;
- :meth:`AcquisitionProtocol.operator_for`: the operator :math:`A` of a collated batch of such items,

and the base builds the rest on them, the same way for every modality:

- ``protocol(image) -> (y, A)``: one reference image ``(H, W)`` measured under the protocol, seeded;
- :meth:`~AcquisitionProtocol.pipeline`: the simulation followed by
  :class:`monai.transforms.DeleteItemsd` of its helper entries (built in one place);
- :meth:`~AcquisitionProtocol.reconstruction_dataset`: every scan of a folder (or a list of files) as slices,
  through the one folder scan (:func:`~rim_monai.data.scans.find_scans`): NIfTI volumes and DICOM slices are
  simulated, formats of measured data a modality adds (fastMRI k-space, LoDoPaB sinograms) are read as stored;
- :meth:`~AcquisitionProtocol.training_dataset` / :meth:`~AcquisitionProtocol.validation_dataset`: (augmented)
  slabs of volumes simulated on the fly, and their per-item seeded validation twin
  (:class:`~rim_monai.data.seeding.SeededItems`); CT overrides both with its phantom sets.

Bundle configs build the protocol once and hand it to :func:`reconstruction_dataset`, :func:`training_dataset` and
:func:`validation_dataset` (and use it as the ``simulate`` entry), see ``docs/bundles.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from monai.transforms import (
    CenterSpatialCropd,
    Compose,
    DeleteItemsd,
    EnsureChannelFirstd,
    LoadImaged,
    RandSpatialCropd,
    SpatialPadd,
)
from torch.utils.data import Dataset

from rim_monai.data.augment import physics_augmentations
from rim_monai.data.datasets import concat_datasets
from rim_monai.data.dicom import DicomSliceDataset, read_dicom
from rim_monai.data.file_utils import PathLike
from rim_monai.data.keys import Keys
from rim_monai.data.nifti import read_nifti
from rim_monai.data.scan_errors import ScanErrors, scan_errors
from rim_monai.data.scans import DICOM, NIFTI, ScanFormat, find_scans
from rim_monai.data.seeding import SEED_STRIDE, SeededItems
from rim_monai.data.slicing import SliceDataset
from rim_monai.operators import LinearOperator

__all__ = [
    "AcquisitionProtocol",
    "NIFTI_SCANS",
    "DICOM_SCANS",
    "reconstruction_dataset",
    "training_dataset",
    "validation_dataset",
]

NIFTI_SCANS = ScanFormat(NIFTI, "NIfTI (.nii/.nii.gz)", reader=read_nifti)
"""NIfTI volumes, each checked by :func:`~rim_monai.data.read_nifti` before it is sliced."""
DICOM_SCANS = ScanFormat(DICOM, "DICOM (.dcm)", reader=read_dicom)
"""Single-slice DICOM files, each checked by :func:`~rim_monai.data.read_dicom`."""


class AcquisitionProtocol(ABC):
    """Base of a modality's acquisition protocol (see the module docstring).

    Subclasses set :attr:`measurement_key` (and :attr:`helper_keys`, :attr:`formats`, :attr:`skip_empty_slices`
    where they differ) and implement :meth:`simulation` and :meth:`operator_for`; they may add input formats by
    extending :attr:`formats` and :meth:`read_scans`, and bring loaded scans to the simulation's units with
    :meth:`intensity`.

    Args:
        seed: seed of the simulation (``protocol(image)`` and the reconstruction datasets).
    """

    measurement_key: ClassVar[str] = Keys.MEASUREMENT
    """The item key of the measurements ``y``."""
    helper_keys: ClassVar[tuple[str, ...]] = ()
    """Entries the simulation needs but the dataset items should not carry (e.g. a finer simulation grid)."""
    formats: ClassVar[Mapping[str, ScanFormat]] = {"nifti": NIFTI_SCANS, "dicom": DICOM_SCANS}
    """The input formats of :meth:`reconstruction_dataset`, in the order their slices come."""
    skip_empty_slices: ClassVar[bool] = True
    """Whether the reconstruction datasets skip all-zero slices of NIfTI volumes."""
    validation_stride: ClassVar[int] = SEED_STRIDE
    """The ``stride`` of :func:`~rim_monai.data.seeding.item_seed` for validation items."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    # ------------------------------------------------------------------ what a modality defines
    @abstractmethod
    def simulation(self) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        """The acquisition as a new random MONAI dictionary transform (unseeded).

        Input ``{"image": (1, H, W)}`` (in the units :meth:`intensity` gives); output the item with
        :attr:`measurement_key` (the measurements) and ``"target"`` (the reference), plus what :meth:`operator_for`
        needs.
        """

    @abstractmethod
    def operator_for(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> LinearOperator:
        """The operator of a collated batch of this protocol's items (entries with a leading batch dimension).

        It has the signature ``PrepareMeasurementBatch`` accepts as its ``operator`` argument.
        """

    def intensity(self) -> list[Callable]:
        """Dictionary transforms that bring a loaded scan ``{"image": ...}`` to the simulation's units (default:
        none)."""
        return []

    def check_image(self, image: torch.Tensor) -> torch.Tensor:
        """The reference image of ``protocol(image)``, checked (default: any 2D image, unchanged).

        Raises:
            ValueError: an image that is not 2D.
        """
        if image.ndim != 2:
            raise ValueError(f"image: expected a 2D reference image (H, W), got shape {tuple(image.shape)}.")
        return image

    # ------------------------------------------------------------------ the simulation pipeline
    def pipeline(self, *steps: Callable, simulation: Callable | None = None) -> Callable:
        """``steps``, then ``simulation`` (default :meth:`simulation`), then ``DeleteItemsd(helper_keys)``.

        One ``Compose``, or the simulation itself when nothing comes before or after it. Seed it with
        ``set_random_state``.
        """
        chain = [*steps, simulation if simulation is not None else self.simulation()]
        if self.helper_keys:
            chain.append(DeleteItemsd(list(self.helper_keys)))
        return chain[0] if len(chain) == 1 else Compose(chain)

    def seeded_pipeline(self, *steps: Callable) -> Callable:
        """:meth:`pipeline` seeded with the protocol's seed (one per data source, so each source has its stream)."""
        pipeline = self.pipeline(*steps)
        pipeline.set_random_state(seed=self.seed)
        return pipeline

    def __call__(self, image: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, LinearOperator]:
        """Measure one reference image ``(H, W)`` under the protocol (seeded: the same image gives the same ``y``).

        Returns:
            ``y`` with a leading batch dimension (``(1, ...)``) and the operator with ``y ≈ A x``.

        Raises:
            ValueError: an image :meth:`check_image` rejects.
        """
        image = self.check_image(torch.as_tensor(image))
        simulate = self.simulation()
        simulate.set_random_state(seed=self.seed)
        item = simulate({Keys.IMAGE: image[None]})
        batch = {k: v[None] if isinstance(v, torch.Tensor) else v for k, v in item.items()}
        return batch[self.measurement_key], self.operator_for(batch)

    # ------------------------------------------------------------------ sources
    def volume_loader(self) -> Compose:
        """Loads one NIfTI volume channel-first and applies :meth:`intensity` to the whole volume (so every slice
        keeps its intensity relative to the others)."""
        return Compose([LoadImaged(Keys.IMAGE, image_only=True), EnsureChannelFirstd(Keys.IMAGE), *self.intensity()])

    def nifti_slices(
        self,
        paths: Sequence[PathLike],
        slice_range: Sequence[int] | None = None,
        axis: int = -1,
        transform: Callable | None = None,
        skip_empty: bool | None = None,
    ) -> SliceDataset:
        """Slices of NIfTI volumes through ``transform`` (default the seeded pipeline), keeping the volume's
        affine."""
        return SliceDataset(
            [{Keys.IMAGE: str(p)} for p in paths],
            axis=axis,
            slice_range=slice_range,
            skip_empty=self.skip_empty_slices if skip_empty is None else skip_empty,
            transform=transform if transform is not None else self.seeded_pipeline(),
            volume_transform=self.volume_loader(),
        )

    def dicom_slices(
        self, paths: Sequence[PathLike], transform: Callable | None = None, seed: int | None = None
    ) -> Dataset:
        """Single-slice DICOM files (:class:`~rim_monai.data.DicomSliceDataset`, at the scan's position) through
        :meth:`intensity` and ``transform`` (default :meth:`pipeline`), seeded with ``seed`` (default the protocol's).

        ``transform`` is seeded once it is wrapped after :meth:`intensity`: building a MONAI ``Compose`` reseeds the
        random transforms it wraps (from MONAI's global seed).
        """
        transform = transform if transform is not None else self.pipeline()
        intensity = self.intensity()
        full = Compose([*intensity, transform]) if intensity else transform
        transform.set_random_state(seed=self.seed if seed is None else seed)
        return DicomSliceDataset(paths, full)

    def read_scans(self, fmt: str, paths: Sequence[Path], slice_range: Sequence[int] | None, axis: int) -> Dataset:
        """The dataset of the ``paths`` of one format of :attr:`formats` (subclasses add their own formats).

        Raises:
            ValueError: a format this protocol has no reader for.
        """
        if fmt == "nifti":
            return self.nifti_slices(paths, slice_range, axis)
        if fmt == "dicom":
            return self.dicom_slices(paths)
        raise ValueError(
            f"fmt: expected one of {sorted(self.formats)} with a reader in {type(self).__name__}, got {fmt!r}."
        )

    def extra_datasets(self, **extras: Any) -> list[Dataset]:
        """Datasets a modality adds to its scans (CT: ellipse phantoms); default none.

        Raises:
            ValueError: ``extras`` this protocol does not know.
        """
        if extras:
            names = ", ".join(sorted(extras))
            raise ValueError(f"{names}: not an option of {type(self).__name__}.reconstruction_dataset.")
        return []

    # ------------------------------------------------------------------ datasets
    def reconstruction_dataset(
        self,
        dataset_dir: PathLike | None = None,
        files: Sequence[PathLike] | None = None,
        slice_range: Sequence[int] | None = None,
        axis: int = -1,
        on_error: str | ScanErrors | None = None,
        output_dir: PathLike | None = None,
        **extras: Any,
    ) -> Dataset:
        """Every scan of a folder (or the given ``files``) as reconstruction slices under the protocol.

        Each file is first read as stored by its format's :attr:`ScanFormat.reader
        <rim_monai.data.ScanFormat.reader>` (a corrupt, truncated or NaN-holding scan fails here, named, before any
        slice is reconstructed; the good files are read again by their dataset, so a scan is read twice). Then one
        part per format, in the order of :attr:`formats` (:meth:`read_scans`), then the modality's
        :meth:`extra_datasets`; a folder may hold nothing readable only when there are extras.

        Args:
            dataset_dir: the folder (not recursive).
            files: explicit files instead of a folder (e.g. one volume of a folder that holds others).
            slice_range: ``(start, stop)`` slices of each volume (``None``: all).
            axis: slicing axis of NIfTI volumes.
            on_error: ``"raise"`` (default): stop at the first bad scan, printing one line that names it;
                ``"skip"``: leave bad scans out, list them in ``<output_dir>/errors.csv`` (``file, stage, message``)
                and print how many were skipped (see :class:`~rim_monai.data.ScanErrors`).
            output_dir: the folder of ``errors.csv`` (needed with ``"skip"``).
            extras: the modality's options (CT: ``phantoms``, ``phantom_seed``).

        Raises:
            ValueError: no folder or files (and no extras), a missing file, nothing readable found (the error names the
                formats), a bad scan with ``on_error="raise"`` (:class:`~rim_monai.data.DataFileError` naming it), or
                every scan bad with ``"skip"``.
        """
        errors = scan_errors(on_error, output_dir)
        if errors.skip and errors.output_dir is None:
            raise ValueError("output_dir: on_error='skip' lists the bad scans in <output_dir>/errors.csv; got None.")
        extra = self.extra_datasets(**extras)
        if dataset_dir is None and files is None and extra:
            return concat_datasets(extra)
        scans = find_scans(self.formats, dataset_dir, files, required=not extra)
        good = {fmt: [p for p in paths if self._readable(fmt, p, errors)] for fmt, paths in scans.items()}
        errors.check_any_succeeded(sum(map(len, good.values())) + len(extra))
        parts = [self.read_scans(fmt, paths, slice_range, axis) for fmt, paths in good.items() if paths]
        return concat_datasets(parts + extra)

    def _readable(self, fmt: str, path: Path, errors: ScanErrors) -> bool:
        """Whether ``path`` reads as stored (its format's reader; formats without one are read lazily)."""
        reader = self.formats[fmt].reader
        if reader is None:
            return True

        def read() -> bool:
            reader(path)
            return True

        return errors.guard(path, "read", read) is True

    def training_dataset(self, files: Sequence[PathLike], **options: Any) -> Dataset:
        """Augmented training patches of ``files``: :meth:`slice_training_dataset` with ``augment=True`` (options:
        ``slice_ranges``, ``axis``, ``patch_size``, ``seed``...)."""
        return self.slice_training_dataset(files, **{**options, "augment": True})

    def validation_dataset(self, files: Sequence[PathLike], **options: Any) -> Dataset:
        """Validation slices, the same at every epoch: :meth:`slice_training_dataset` with ``augment=False`` (full
        slices, ``seed`` 1 and :attr:`validation_stride` unless given)."""
        defaults = {"patch_size": None, "seed": 1, "stride": self.validation_stride}
        return self.slice_training_dataset(files, **{**defaults, **options, "augment": False})

    def training_simulation(self) -> Callable:
        """The simulation of training and validation items (default :meth:`simulation`; MRI draws from a mix of
        masks and accelerations)."""
        return self.simulation()

    def slice_training_dataset(
        self,
        files: Sequence[PathLike],
        slice_ranges: Sequence[Sequence[int]] | None = None,
        axis: int = -1,
        patch_size: Sequence[int] | None = (128, 128),
        augment: bool = True,
        seed: int = 0,
        stride: int = SEED_STRIDE,
        simulation: Callable | None = None,
    ) -> Dataset:
        """Training (or validation) slices of volumes, simulated on the fly.

        Each item is a random patch of ``patch_size`` (the centre patch without ``augment``; padded when the slice is
        smaller) with random flips, 90° rotations and intensity scaling when ``augment``, then simulated.

        Args:
            files: NIfTI volumes.
            slice_ranges: ``[(start, stop), ...]`` slabs along ``axis`` — the split: keep training, validation and
                test slabs apart (``None``: every non-empty slice).
            axis: slicing axis.
            patch_size: spatial size of the items; ``None``: full slices.
            augment: random crops and augmentations (training, one random stream seeded with ``seed``); off for
                validation, where item ``i`` is drawn with :func:`~rim_monai.data.seeding.item_seed`
                ``(seed, i, stride)`` so every epoch sees the same masks and noise.
            seed: seed of the random transforms.
            stride: see :func:`~rim_monai.data.seeding.item_seed` (validation only).
            simulation: the simulation of the items (default :meth:`training_simulation`).

        Raises:
            ValueError: no files.
        """
        if not files:
            raise ValueError("files: expected at least one NIfTI volume, got none.")
        steps: list[Callable] = []
        if patch_size is not None:
            steps.append(SpatialPadd(Keys.IMAGE, spatial_size=list(patch_size)))
            if augment:
                steps.append(RandSpatialCropd(Keys.IMAGE, roi_size=list(patch_size), random_size=False))
            else:
                steps.append(CenterSpatialCropd(Keys.IMAGE, roi_size=list(patch_size)))
        if augment:
            steps.append(physics_augmentations(Keys.IMAGE, crop_size=None))
        simulation = simulation if simulation is not None else self.training_simulation()
        transform = Compose([*steps, self.pipeline(simulation=simulation)])
        transform.set_random_state(seed=seed)
        slabs = [
            self.nifti_slices(files, r, axis, transform=transform, skip_empty=True) for r in (slice_ranges or [None])
        ]
        dataset = concat_datasets(slabs)
        return dataset if augment else SeededItems(dataset, transform, seed, stride)


def reconstruction_dataset(protocol: AcquisitionProtocol, **kwargs: Any) -> Dataset:
    """``protocol.reconstruction_dataset(**kwargs)``, in the form a bundle config instantiates.

    Example:
        >>> protocol = CTProtocol(ct_operator(image_shape=(32, 32), num_angles=8))  # doctest: +SKIP
        >>> len(reconstruction_dataset(protocol, phantoms=2))  # doctest: +SKIP
        2
    """
    return protocol.reconstruction_dataset(**kwargs)


def training_dataset(protocol: AcquisitionProtocol, **kwargs: Any) -> Dataset:
    """``protocol.training_dataset(**kwargs)``, in the form a bundle config instantiates."""
    return protocol.training_dataset(**kwargs)


def validation_dataset(protocol: AcquisitionProtocol, **kwargs: Any) -> Dataset:
    """``protocol.validation_dataset(**kwargs)``, in the form a bundle config instantiates."""
    return protocol.validation_dataset(**kwargs)

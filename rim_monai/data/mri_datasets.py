"""Ready-made slice datasets for the MRI bundle: a user's folder of scans in, ``(kspace, mask, sens, target)`` out.

Both functions return slice-level datasets whose items carry the keys the engines expect (``"kspace"``
``(coils, H, W)`` complex64, ``"mask"`` ``(1, H, W)``, ``"sens"`` ``(coils, H, W)``, ``"target"`` ``(1, H, W)``), so a
bundle config composes them with a MONAI ``DataLoader`` and ``PrepareMeasurementBatch`` and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.transforms import (
    CenterSpatialCropd,
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    OneOf,
    RandSpatialCropd,
    SpatialPadd,
)
from monai.data import Dataset as MonaiDataset
from torch.utils.data import ConcatDataset, Dataset

from rim_monai.data.augment import physics_augmentations
from rim_monai.data.dicom import LoadDICOMd
from rim_monai.data.fastmri import FastMRISliceDataset
from rim_monai.data.intensity import PercentileScaled
from rim_monai.data.sensitivity import EstimateSensitivitiesd
from rim_monai.data.simulate_mri import SimulateKSpaced
from rim_monai.data.slicing import SliceDataset
from rim_monai.data.undersample import UndersampleKSpaced
from rim_monai.operators import MaskedFourier

__all__ = ["scan_files", "mri_reconstruction_dataset", "mri_training_dataset", "MRIProtocol"]

_NIFTI = (".nii", ".nii.gz")
_DICOM = (".dcm",)
_HDF5 = (".h5", ".hdf5")


def _scaled_volume() -> Compose:
    """Load a volume channel-first and scale it by its 99.5th percentile — once per volume, so every slice keeps
    its intensity relative to the others (a per-slice percentile blows up the near-empty slices at the edges)."""
    return Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image"), PercentileScaled("image")])


def _simulator(
    coils: int, acceleration: float, center_fraction: float | None, mask_func: str, snr_db: float | None, seed: int
) -> SimulateKSpaced:
    """The retrospective acquisition of the protocol, seeded (one instance per data source)."""
    simulate = SimulateKSpaced(
        keys="image",
        coils=coils,
        acceleration=acceleration,
        center_fraction=center_fraction,
        mask_func=mask_func,
        snr_db=snr_db,
    )
    simulate.set_random_state(seed=seed)
    return simulate


def scan_files(dataset_dir: str | os.PathLike, suffixes: Sequence[str]) -> list[Path]:
    """Sorted files in ``dataset_dir`` (not recursive) whose name ends with one of ``suffixes``.

    Raises:
        ValueError: ``dataset_dir`` is not a folder.
    """
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise ValueError(f"dataset_dir: expected a folder of scans, got '{folder}' (not a directory).")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(tuple(suffixes)))


def mri_reconstruction_dataset(
    dataset_dir: str | os.PathLike | None = None,
    acceleration: float = 4.0,
    mask_func: str = "random",
    center_fraction: float | None = None,
    coils: int = 8,
    snr_db: float | None = None,
    slice_range: Sequence[int] | None = None,
    axis: int = -1,
    seed: int = 0,
    files: Sequence[str | os.PathLike] | None = None,
) -> Dataset:
    """Every scan of a folder (or the given ``files``) as reconstruction slices.

    - fastMRI-layout ``.h5`` files: k-space as stored; fully sampled k-space is undersampled with ``mask_func`` at
      ``acceleration`` (one seeded mask per volume), k-space that is already undersampled keeps its own mask; coil maps
      are estimated from the calibration region; the reference is ``reconstruction_rss`` when the file has it, else
      the root-sum-of-squares of the fully sampled k-space (none for undersampled files without one).
    - DICOM magnitude slices (``.dcm``): one slice each, simulated like NIfTI slices.
    - NIfTI magnitude volumes (``.nii``, ``.nii.gz``): sliced along ``axis``, scaled to the 99.5th percentile, and
      simulated retrospectively (``coils`` birdcage coils, synthetic smooth phase, the mask, optional noise at
      ``snr_db``); the reference is the scaled slice and the slices keep the volume's affine for the writer.

    Args:
        dataset_dir: the folder.
        acceleration, mask_func, center_fraction: the undersampling protocol (default 1D random 4x, centre 0.08).
        coils: coil count of the NIfTI simulation.
        snr_db: noise of the NIfTI simulation (``None``: none).
        slice_range: ``(start, stop)`` slices of each volume to reconstruct (``None``: all non-empty).
        axis: slicing axis of NIfTI volumes.
        seed: seed of masks and simulation.
        files: explicit scan files instead of a folder (for example one volume of a folder that holds others).

    Raises:
        ValueError: the folder has no ``.h5`` and no NIfTI file, or a given file is missing.
    """
    if files is not None:
        paths = [Path(f) for f in files]
        for p in paths:
            if not p.is_file():
                raise ValueError(f"files: '{p}' does not exist.")
        h5_files = [p for p in paths if p.name.endswith(_HDF5)]
        nifti_files = [p for p in paths if p.name.endswith(_NIFTI)]
        dicom_files = [p for p in paths if p.name.endswith(_DICOM)]
    elif dataset_dir is not None:
        h5_files, nifti_files = scan_files(dataset_dir, _HDF5), scan_files(dataset_dir, _NIFTI)
        dicom_files = scan_files(dataset_dir, _DICOM)
    else:
        raise ValueError("dataset_dir: expected a folder of scans (or files=[...]), got None.")
    if not h5_files and not nifti_files and not dicom_files:
        raise ValueError(
            f"dataset_dir: no .h5 (fastMRI layout), .nii/.nii.gz or .dcm scans found in '{dataset_dir or files}'."
        )
    parts: list[Dataset] = []
    if h5_files:
        transform = Compose(
            [
                UndersampleKSpaced(
                    acceleration=acceleration, mask_func=mask_func, center_fraction=center_fraction, seed=seed
                ),
                EstimateSensitivitiesd(),
            ]
        )
        parts.append(FastMRISliceDataset(h5_files, transform=transform, slice_range=slice_range))
    if nifti_files:
        simulate = _simulator(coils, acceleration, center_fraction, mask_func, snr_db, seed)
        parts.append(
            SliceDataset(
                [{"image": str(f)} for f in nifti_files],
                axis=axis,
                slice_range=slice_range,
                transform=simulate,
                volume_transform=_scaled_volume(),
            )
        )
    if dicom_files:
        simulate = _simulator(coils, acceleration, center_fraction, mask_func, snr_db, seed)
        load = Compose([LoadDICOMd("image"), PercentileScaled("image"), simulate])
        parts.append(MonaiDataset([{"image": str(f), "filename": f.name} for f in dicom_files], transform=load))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def mri_training_dataset(
    files: Sequence[str | os.PathLike],
    slice_ranges: Sequence[Sequence[int]] | None = None,
    axis: int = -1,
    patch_size: Sequence[int] | None = (128, 128),
    accelerations: Sequence[float] = (4.0, 8.0),
    mask_funcs: Sequence[str] = ("random", "equispaced", "poisson_disc"),
    coils: int = 8,
    snr_db: float | None = 40.0,
    augment: bool = True,
    seed: int = 0,
) -> Dataset:
    """Training (or validation) slices of magnitude volumes with simulated multi-coil k-space.

    Each item draws one mask family from ``mask_funcs`` and an acceleration from ``accelerations`` (a random patch of
    ``patch_size`` when ``augment``, else the centre patch), so one network learns every sampling pattern.

    Args:
        files: NIfTI volumes.
        slice_ranges: ``[(start, stop), ...]`` slabs along ``axis`` — the split: keep training, validation and test
            slabs apart (``None``: every non-empty slice).
        axis: slicing axis.
        patch_size: spatial size of the items (padded when the slice is smaller); ``None``: full slices.
        accelerations: accelerations to draw from.
        mask_funcs: mask families to draw from (``"random"``, ``"equispaced"``, ``"poisson_disc"``).
        coils: simulated coil count.
        snr_db: k-space SNR of the simulation.
        augment: random crops, flips, 90° rotations and intensity scaling (training); off for validation, where
            item ``i`` is simulated with seed ``seed + i`` so every epoch sees the same masks and noise.
        seed: seed of the random transforms.

    Raises:
        ValueError: no files.
    """
    if not files:
        raise ValueError("files: expected at least one NIfTI volume, got none.")
    simulators = [
        SimulateKSpaced(keys="image", coils=coils, acceleration=list(accelerations), mask_func=m, snr_db=snr_db)
        for m in mask_funcs
    ]
    steps: list = []
    if patch_size is not None:
        steps.append(SpatialPadd("image", spatial_size=list(patch_size)))
        crop = RandSpatialCropd if augment else CenterSpatialCropd
        steps.append(crop("image", roi_size=list(patch_size), **({"random_size": False} if augment else {})))
    if augment:
        steps.append(physics_augmentations("image", crop_size=None))
    steps.append(OneOf(simulators) if len(simulators) > 1 else simulators[0])
    transform = Compose(steps)
    transform.set_random_state(seed=seed)
    data = [{"image": str(f)} for f in files]
    slabs = [
        SliceDataset(data, axis=axis, slice_range=r, transform=transform, volume_transform=_scaled_volume())
        for r in (slice_ranges or [None])
    ]
    dataset = slabs[0] if len(slabs) == 1 else ConcatDataset(slabs)
    return dataset if augment else _SeededItems(dataset, transform, seed)


class _SeededItems(Dataset):
    """Item ``i`` drawn with the random transforms seeded by ``seed + i``: a validation set whose masks and noise are
    the same at every epoch, so the key metric compares checkpoints, not mask draws."""

    def __init__(self, dataset: Dataset, transform: Compose, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        self.transform.set_random_state(seed=self.seed + index)
        return self.dataset[index]


class MRIProtocol:
    """The bundle's default acquisition as a callable: a reference image ``(H, W)`` -> ``(y, operator)``.

    Simulates ``coils`` birdcage coils (with a smooth synthetic phase and noise at ``snr_db``) and undersamples with
    ``mask_func`` at ``acceleration`` — the protocol the MRI bundle documents — so anyone can make measurements the
    shipped network expects and reconstruct them with ``network(y, operator)``.

    Args:
        acceleration, mask_func, center_fraction, coils, snr_db: the protocol.
        seed: seed of the mask, phase and noise (each call with the same image gives the same measurement).

    Returns (when called):
        ``y`` ``(1, coils, H, W)`` complex64 and the :class:`~rim_monai.operators.MaskedFourier` operator.

    Example:
        >>> y, A = MRIProtocol()(torch.rand(64, 64))
        >>> y.shape, A.range_shape
        (torch.Size([1, 8, 64, 64]), (8, 64, 64))
    """

    def __init__(
        self,
        acceleration: float = 4.0,
        mask_func: str = "random",
        center_fraction: float | None = None,
        coils: int = 8,
        snr_db: float | None = None,
        seed: int = 0,
    ) -> None:
        self.protocol = (coils, acceleration, center_fraction, mask_func, snr_db, seed)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, MaskedFourier]:
        image = torch.as_tensor(image)
        if image.ndim != 2:
            raise ValueError(f"image: expected a 2D reference image (H, W), got shape {tuple(image.shape)}.")
        out = _simulator(*self.protocol)({"image": image[None]})
        operator = MaskedFourier(out["mask"][None], out["sens"][None])
        return out["kspace"][None], operator

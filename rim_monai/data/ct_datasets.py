r"""Ready-made slice datasets for the CT bundle: scans in HU (or sinograms) in, ``(sinogram, target)`` out.

The bundle's default acquisition (the *protocol*, :class:`CTProtocol`):

- a 256x256 reconstruction grid of ``pixel_mm`` = 1 mm pixels (a 256 mm field of view), the ray transform
  ``RayTransform((256, 256), num_angles=60, geometry="parallel")`` (60 views over 180°, 363 detector bins of one
  pixel, ASTRA's discretisation) — or ``geometry="fan"`` for the fan-beam configuration;
- Hounsfield units to linear attenuation, :math:`\mu = \mu_\text{water}(1 + \text{HU}/1000)` with
  :math:`\mu_\text{water}` = 0.02 mm⁻¹ (:data:`~rim_monai.data.MU_WATER`, about water at 60 keV), clamped at 0 (air
  and the scanner's padding below -1000 HU carry no attenuation);
- low-dose Poisson noise: :math:`N \sim \mathrm{Poisson}(I_0 e^{-s\,A\mu})` with :math:`I_0 = 10^4` photons per
  detector bin, :math:`s` = ``pixel_mm`` (the operator measures lengths in pixels, :math:`\mu` is per mm), zero counts
  clamped to 0.1, and the post-log sinogram :math:`y = -\log(N/I_0)/s`, an estimate of :math:`A\mu`;
- no inverse crime: the sinogram is simulated on a grid ``upsample`` = 2 times finer (the original 512² slice when the
  scan has exactly that size, else a bilinear upsampling) with the same views and detector bins.

Items carry ``"sinogram"`` ``(1, angles, detectors)`` and ``"target"`` ``(1, 256, 256)`` (attenuation in mm⁻¹, a
``MetaTensor`` keeping the slice's geometry), plus ``"filename"`` / ``"slice"`` for the bundle's saver. The network
reconstructs attenuation; the bundle converts it back to HU for NIfTI input (:func:`attenuation_to_hu`).

Random-ellipse phantoms (:class:`~rim_monai.data.EllipsePhantomDataset`, Adler & Öktem's distribution) enter the
same pipeline as attenuation relative to water: the phantom value ``v`` clamped at 0 is :math:`\mu/\mu_\text{water}`,
i.e. ``HU = 1000 (max(v, 0) - 1)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Compose, MapTransform, RandFlipd, RandRotate90d
from torch.utils.data import ConcatDataset, Dataset

from rim_monai.classical import scaled_tv
from rim_monai.data.dicom import dicom_slice_meta, read_dicom
from rim_monai.data.file_utils import DataFileError
from rim_monai.data.hdf5 import HDF5SliceDataset
from rim_monai.data.intensity import MU_WATER, HUToAttenuationd
from rim_monai.data.phantoms import EllipsePhantomDataset
from rim_monai.data.simulate_ct import SimulateSinogramd
from rim_monai.data.slicing import SliceDataset
from rim_monai.operators import RayTransform

__all__ = [
    "CT_IMAGE_SHAPE",
    "CT_NUM_ANGLES",
    "CT_PHOTONS",
    "CT_PIXEL_MM",
    "ct_operator",
    "ct_simulation",
    "phantom_to_hu",
    "attenuation_to_hu",
    "HounsfieldOutputd",
    "HounsfieldBaseline",
    "scaled_tv",
    "FitToGridd",
    "sinogram_files",
    "ct_reconstruction_dataset",
    "ct_phantom_dataset",
    "ct_training_dataset",
    "CTProtocol",
]

CT_IMAGE_SHAPE = (256, 256)
CT_NUM_ANGLES = 60
CT_PHOTONS = 1e4
CT_PIXEL_MM = 1.0

_NIFTI = (".nii", ".nii.gz")
_DICOM = (".dcm",)
_OBSERVATION = re.compile(r"observation_(?P<stem>.+)\.(?:hdf5|h5)$")


def ct_operator(
    geometry: str = "parallel",
    image_shape: Sequence[int] = CT_IMAGE_SHAPE,
    num_angles: int = CT_NUM_ANGLES,
    backend: str = "matrix",
    **kwargs: Any,
) -> RayTransform:
    """The protocol's ray transform: ``RayTransform(image_shape, num_angles, geometry, backend=backend, **kwargs)``.

    Example:
        >>> ct_operator(image_shape=(32, 32), num_angles=8).range_shape
        (8, 46)
    """
    return RayTransform(tuple(int(s) for s in image_shape), num_angles=int(num_angles), geometry=geometry,
                        backend=backend, **kwargs)


def phantom_to_hu(phantom: torch.Tensor | np.ndarray) -> torch.Tensor:
    r"""Ellipse phantom values (relative attenuation, 1 = water) to HU: :math:`1000(\max(v, 0) - 1)`."""
    return 1000.0 * (torch.as_tensor(phantom).float().clamp_min(0.0) - 1.0)


def attenuation_to_hu(mu: torch.Tensor, mu_water: float = MU_WATER) -> torch.Tensor:
    r""":math:`\text{HU} = 1000(\mu - \mu_\text{water})/\mu_\text{water}` (any shape; a ``MetaTensor`` keeps its meta)."""
    return (mu - mu_water) * (1000.0 / mu_water)


class HounsfieldOutputd(MapTransform):
    """Evaluator post-processing: the network output and the reference from attenuation (mm⁻¹) to HU.

    Used by the bundle as ``SupervisedEvaluator(postprocessing=...)`` with ``decollate=False`` when the input scans are
    in HU, so the written reconstructions (and the scores) are in HU; the classical baselines are converted the same
    way by :class:`HounsfieldBaseline`.

    Args:
        keys: entries to convert (default ``("pred", "label")``; missing ones are skipped).
        mu_water: attenuation of water in the image unit.
    """

    def __init__(self, keys: Sequence[str] = ("pred", "label"), mu_water: float = MU_WATER) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.mu_water = float(mu_water)

    def __call__(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            if d[key] is not None:
                d[key] = attenuation_to_hu(d[key], self.mu_water)
        return d


class HounsfieldBaseline:
    """A classical reconstruction ``method(y, A, **kwargs)`` (attenuation) returned in HU when ``hounsfield``.

    Lets the bundle's saver score the baselines in the same unit as the network output converted by
    :class:`HounsfieldOutputd`.

    Args:
        method: ``f(y, A, **kwargs) -> image`` in attenuation (e.g. :func:`rim_monai.classical.fbp`, ``tv_pdhg``).
        hounsfield: convert to HU (otherwise return the method's output unchanged).
        mu_water: attenuation of water in the image unit.
        kwargs: passed to ``method``.

    Example:
        >>> from rim_monai.classical import fbp
        >>> A = ct_operator(image_shape=(16, 16), num_angles=8)
        >>> float(HounsfieldBaseline(fbp)(torch.zeros(1, 1, *A.range_shape), A).mean())
        -1000.0
    """

    def __init__(self, method, hounsfield: bool = True, mu_water: float = MU_WATER, **kwargs: Any) -> None:
        if not callable(method):
            raise ValueError(f"method: expected a callable f(y, A) -> image, got {type(method).__name__}.")
        self.method, self.hounsfield, self.mu_water, self.kwargs = method, bool(hounsfield), float(mu_water), kwargs

    def __call__(self, y: torch.Tensor, operator: Any) -> torch.Tensor:
        x = self.method(y, operator, **self.kwargs)
        return attenuation_to_hu(x, self.mu_water) if self.hounsfield else x


class FitToGridd(MapTransform):
    """Fit a slice ``(1, h, w)`` to the reconstruction grid ``shape`` (area resampling), keeping its geometry.

    A slice already of ``shape`` passes unchanged. Otherwise it is resampled with area averaging (block means for
    integer factors), and its :class:`~rim_monai.data.SliceVolume` meta (``affine``, ``volume_affine``,
    ``volume_shape``) is updated so the reconstruction is written with the right voxel size. When the original slice
    is exactly ``fine_factor`` times ``shape``, it is kept under ``fine_key`` for inverse-crime-free simulation.

    Args:
        keys: the image key.
        shape: ``(H, W)`` of the grid.
        fine_key: where to keep the original when it has the fine size (``None``: never).
        fine_factor: the simulation refinement (``upsample`` of :class:`~rim_monai.data.SimulateSinogramd`).
    """

    def __init__(self, keys: str = "image", shape: Sequence[int] = CT_IMAGE_SHAPE, fine_key: str | None = "image_fine",
                 fine_factor: int = 2) -> None:
        super().__init__(keys)
        self.shape = tuple(int(s) for s in shape)
        self.fine_key, self.fine_factor = fine_key, int(fine_factor)

    def __call__(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            if image.ndim != 3:
                raise ValueError(f"{key}: expected a slice (1, H, W), got shape {tuple(image.shape)}.")
            h, w = int(image.shape[-2]), int(image.shape[-1])
            if (h, w) == self.shape:
                continue
            if self.fine_key and (h, w) == (self.shape[0] * self.fine_factor, self.shape[1] * self.fine_factor):
                d[self.fine_key] = torch.as_tensor(image).float().clone()
            plain = image.as_tensor() if isinstance(image, MetaTensor) else torch.as_tensor(image)
            resized = F.interpolate(plain.float()[None], size=self.shape, mode="area")[0]
            meta = dict(image.meta) if isinstance(image, MetaTensor) else {}
            if "slice_axis" in meta:
                meta = _rescale_slice_meta(meta, (h / self.shape[0], w / self.shape[1]))
            d[key] = MetaTensor(resized, meta=meta) if meta else resized
        return d


def _zoom(scales: Sequence[float], axes: Sequence[int]) -> torch.Tensor:
    """Affine (voxel -> old voxel) of a resampling by ``scales`` along ``axes`` (voxel centres kept consistent)."""
    m = torch.eye(4, dtype=torch.float64)
    for s, a in zip(scales, axes):
        m[a, a] = s
        m[a, 3] = (s - 1.0) / 2.0
    return m


def _rescale_slice_meta(meta: dict, scales: tuple[float, float]) -> dict:
    axis = int(meta["slice_axis"])
    plane_axes = [a for a in range(3) if a != axis]
    meta = dict(meta)
    vol_affine = torch.as_tensor(meta["volume_affine"], dtype=torch.float64)
    meta["volume_affine"] = vol_affine @ _zoom(scales, plane_axes)
    shape = list(int(v) for v in meta["volume_shape"])
    for s, a in zip(scales, plane_axes):
        shape[a] = int(round(shape[a] / s))
    meta["volume_shape"] = tuple(shape)
    affine = torch.as_tensor(meta["affine"], dtype=torch.float64)
    meta["affine"] = meta["original_affine"] = affine @ _zoom(scales, [0, 1])
    meta["spatial_shape"] = np.asarray(shape)[plane_axes]
    return meta


def ct_simulation(
    operator: RayTransform,
    photons: float = CT_PHOTONS,
    mu_water: float = MU_WATER,
    pixel_mm: float = CT_PIXEL_MM,
    upsample: int = 2,
    fit_to_grid: bool = True,
    image_key: str = "image",
) -> Compose:
    """The protocol as a dictionary transform: ``{"image": HU (1, h, w)}`` -> ``{"sinogram", "target", ...}``.

    Steps: :class:`FitToGridd` (when ``fit_to_grid``), :class:`~rim_monai.data.HUToAttenuationd` (image and fine
    image), :class:`~rim_monai.data.SimulateSinogramd` (Poisson, ``photons`` per bin, ``attenuation_scale`` =
    ``pixel_mm``, simulated ``upsample`` times finer). Seed it with ``set_random_state``.

    Raises:
        ValueError: non-positive ``photons``, ``mu_water`` or ``pixel_mm``.
    """
    if photons <= 0 or mu_water <= 0 or pixel_mm <= 0:
        raise ValueError(f"photons, mu_water, pixel_mm: expected positive numbers, got {photons}, {mu_water}, {pixel_mm}.")
    steps: list = []
    if fit_to_grid:
        steps.append(FitToGridd(image_key, tuple(operator.domain_shape), "image_fine", upsample))
    steps += [
        HUToAttenuationd([image_key, "image_fine"], mu_water=mu_water, allow_missing_keys=True),
        SimulateSinogramd(
            image_key, operator=operator, noise="poisson", photons=photons, attenuation_scale=pixel_mm,
            upsample=upsample, fine_image_key="image_fine",
        ),
    ]
    return Compose(steps)


class _DropKeys:
    """Remove the simulation's helper entries (fine image, raw image) from an item."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)

    def __call__(self, data: Mapping[Any, Any]) -> dict[Any, Any]:
        return {k: v for k, v in data.items() if k not in self.keys}


class _DicomSlices(Dataset):
    """Single-slice DICOM files as ``{"image": MetaTensor (1, rows, cols) in HU, "filename", "slice": 0}`` items.

    The image meta is :func:`~rim_monai.data.dicom_slice_meta`: the scan's affine, as a one-slice volume.
    """

    def __init__(self, files: Sequence[str | os.PathLike], transform=None) -> None:
        self.files = [str(f) for f in files]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = read_dicom(self.files[i])
        image = MetaTensor(torch.from_numpy(record["image"]), meta=dicom_slice_meta(record))
        item = {"image": image, "filename": self.files[i], "slice": 0}
        return self.transform(item) if self.transform is not None else item


class _PhantomSlices(Dataset):
    """Random-ellipse phantoms (in HU, :func:`phantom_to_hu`) as map-style items.

    ``fresh=False``: item ``k`` is phantom ``k`` of the seeded stream (validation / test sets, the same every time).
    ``fresh=True``: every access draws a new phantom from a generator seeded with ``seed`` and the process's
    ``torch.distributed`` rank (training: a new phantom each epoch, different on each process).
    """

    def __init__(self, length: int, shape: Sequence[int], seed: int, fresh: bool, supersample: int, transform,
                 name: str = "ellipses") -> None:
        if int(length) < 1:
            raise ValueError(f"phantoms: expected a positive number of phantoms, got {length}.")
        self.length, self.seed, self.fresh, self.name = int(length), int(seed), bool(fresh), name
        self.stream = EllipsePhantomDataset(tuple(shape), seed=self.seed, supersample=supersample)
        self.transform = transform
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict[str, Any]:
        index = int(k)
        if self.fresh:
            if self._rng is None:
                rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
                self._rng = np.random.default_rng([self.seed, rank, 7919])
            index = int(self._rng.integers(0, 2**62))
        item = self.stream[index]
        image = MetaTensor(phantom_to_hu(item["image"]), meta={"filename_or_obj": f"{self.name}_{k:03d}"})
        out: dict[str, Any] = {"image": image, "filename": f"{self.name}_{k:03d}", "slice": 0}
        if "image_fine" in item:
            out["image_fine"] = phantom_to_hu(item["image_fine"])
        if self.transform is not None:
            if self.fresh:
                self.transform.set_random_state(seed=int(self._rng.integers(0, 2**31 - 1)))
            else:
                self.transform.set_random_state(seed=(self.seed * 1_000_003 + index) % (2**31 - 1))
            out = self.transform(out)
        return out


def sinogram_files(folder: str | os.PathLike) -> list[dict[str, str]]:
    """LoDoPaB-style HDF5 records of ``folder``: every ``observation_<stem>.hdf5`` (or ``.h5``) with its
    ``ground_truth_<stem>.hdf5`` when present.

    Returns:
        ``[{"sinogram": path, "target": path}, ...]`` (no ``"target"`` for observations without ground truth).
    """
    records = []
    folder = Path(folder)
    for obs in sorted(folder.iterdir()):
        match = _OBSERVATION.match(obs.name)
        if not match:
            continue
        record = {"sinogram": str(obs)}
        for suffix in (".hdf5", ".h5"):
            gt = folder / f"ground_truth_{match.group('stem')}{suffix}"
            if gt.is_file():
                record["target"] = str(gt)
                break
        records.append(record)
    return records


def _plain_tensors(item: dict[str, Any]) -> dict[str, Any]:
    """HDF5 samples carry no slice geometry: plain tensors, so the saver stacks them along the last axis."""
    return {k: (v.as_tensor() if isinstance(v, MetaTensor) else v) for k, v in item.items()}


def _check_sinograms(records: Sequence[Mapping[str, str]], range_shape: Sequence[int]) -> None:
    """Reject HDF5 sinograms whose shape is not ``(N, *range_shape)`` (another geometry), naming the file."""
    from rim_monai.data.file_utils import open_hdf5

    expected = tuple(int(v) for v in range_shape)
    for record in records:
        with open_hdf5(record["sinogram"]) as f:
            if "data" not in f:
                raise DataFileError(record["sinogram"], "data", "an HDF5 dataset of sinograms", f"keys {sorted(f.keys())}")
            shape = tuple(f["data"].shape)
        if len(shape) != 3 or shape[1:] != expected:
            raise DataFileError(record["sinogram"], "data", f"sinograms (N, {expected[0]}, {expected[1]}) (the bundle's "
                                "geometry: angles x detectors)", f"shape {shape}")


def ct_reconstruction_dataset(
    dataset_dir: str | os.PathLike | None = None,
    operator: RayTransform | None = None,
    photons: float = CT_PHOTONS,
    mu_water: float = MU_WATER,
    pixel_mm: float = CT_PIXEL_MM,
    upsample: int = 2,
    slice_range: Sequence[int] | None = None,
    axis: int = -1,
    seed: int = 0,
    files: Sequence[str | os.PathLike] | None = None,
    phantoms: int = 0,
    phantom_seed: int = 2,
) -> Dataset:
    """Every scan of a folder (or the given ``files``) as CT reconstruction slices under the protocol.

    - NIfTI volumes in HU (``.nii``, ``.nii.gz``): sliced along ``axis``, fitted to the grid (:class:`FitToGridd`)
      and simulated (:func:`ct_simulation`, one seeded noise draw per slice); the reference is the slice's
      attenuation and the slices keep the volume's affine.
    - Single-slice DICOM CT files (``.dcm``, HU via the rescale slope / intercept): the same.
    - LoDoPaB-style HDF5 (``observation_<stem>.hdf5`` with dataset ``data`` ``(N, angles, detectors)`` of post-log
      sinograms in the operator's units, and optionally ``ground_truth_<stem>.hdf5`` ``(N, H, W)`` images): used as
      stored (no simulation); the sinogram shape must be the operator's range.
    - ``phantoms > 0`` adds that many random-ellipse phantoms (stream ``phantom_seed``, each its own "scan").

    Args:
        dataset_dir: the folder (not recursive).
        operator: the protocol's ray transform (default :func:`ct_operator`).
        photons, mu_water, pixel_mm, upsample: the simulation (see the module docstring).
        slice_range: ``(start, stop)`` slices of each NIfTI volume (``None``: all).
        axis: slicing axis of NIfTI volumes.
        seed: seed of the simulated noise.
        files: explicit files instead of a folder (NIfTI, DICOM, or ``observation_*.hdf5``).
        phantoms: number of ellipse phantoms to add.
        phantom_seed: their stream's seed (2 is the bundle's test split; training uses 0, validation 1).

    Raises:
        ValueError: no folder/files/phantoms, a missing file, or nothing readable found.

    Example:
        >>> ds = ct_reconstruction_dataset(phantoms=2, operator=ct_operator(image_shape=(32, 32), num_angles=8))
        >>> ds[0]["sinogram"].shape, ds[0]["target"].shape
        (torch.Size([1, 8, 46]), torch.Size([1, 32, 32]))
    """
    operator = operator if operator is not None else ct_operator()
    if files is not None:
        paths = [Path(f) for f in files]
        for p in paths:
            if not p.is_file():
                raise ValueError(f"files: '{p}' does not exist.")
        folder_records = []
        for p in paths:
            if _OBSERVATION.match(p.name):
                folder_records += [r for r in sinogram_files(p.parent) if r["sinogram"] == str(p)]
    elif dataset_dir is not None:
        folder = Path(dataset_dir)
        if not folder.is_dir():
            raise ValueError(f"dataset_dir: expected a folder of scans, got '{folder}' (not a directory).")
        paths = sorted(p for p in folder.iterdir() if p.is_file())
        folder_records = sinogram_files(folder)
    elif phantoms > 0:
        paths, folder_records = [], []
    else:
        raise ValueError("dataset_dir: expected a folder of scans (or files=[...], or phantoms > 0), got None.")
    nifti = [p for p in paths if p.name.endswith(_NIFTI)]
    dicom = [p for p in paths if p.name.endswith(_DICOM)]

    def simulation() -> Compose:
        sim = Compose([ct_simulation(operator, photons, mu_water, pixel_mm, upsample), _DropKeys(["image_fine"])])
        sim.set_random_state(seed=seed)
        return sim

    parts: list[Dataset] = []
    if nifti:
        parts.append(SliceDataset([{"image": str(f)} for f in nifti], axis=axis, slice_range=slice_range,
                                  skip_empty=False, transform=simulation()))
    if dicom:
        parts.append(_DicomSlices(dicom, transform=simulation()))
    if folder_records:
        _check_sinograms(folder_records, operator.range_shape)
        parts.append(HDF5SliceDataset(folder_records, transform=_plain_tensors))
    if phantoms > 0:
        parts.append(_PhantomSlices(phantoms, operator.domain_shape, phantom_seed, False, upsample,
                                    Compose([ct_simulation(operator, photons, mu_water, pixel_mm, upsample,
                                                           fit_to_grid=False), _DropKeys(["image_fine"])]),
                                    name=f"ellipses_seed{phantom_seed}"))
    if not parts:
        where = dataset_dir if files is None else [str(f) for f in files]
        raise ValueError(f"dataset_dir: no NIfTI (.nii/.nii.gz), DICOM (.dcm) or observation_*.hdf5 files in {where}.")
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def ct_phantom_dataset(
    length: int,
    operator: RayTransform | None = None,
    seed: int = 1,
    photons: float = CT_PHOTONS,
    mu_water: float = MU_WATER,
    pixel_mm: float = CT_PIXEL_MM,
    upsample: int = 2,
) -> Dataset:
    """``length`` fixed random-ellipse phantoms (stream ``seed``) simulated under the protocol (validation sets)."""
    return ct_reconstruction_dataset(operator=operator, photons=photons, mu_water=mu_water, pixel_mm=pixel_mm,
                                     upsample=upsample, phantoms=length, phantom_seed=seed)


def ct_training_dataset(
    length: int = 1000,
    operator: RayTransform | None = None,
    dicom_files: Sequence[str | os.PathLike] | None = None,
    real_fraction: float = 0.25,
    photons: float = CT_PHOTONS,
    mu_water: float = MU_WATER,
    pixel_mm: float = CT_PIXEL_MM,
    upsample: int = 2,
    augment: bool = True,
    seed: int = 0,
) -> Dataset:
    """Training slices: fresh random-ellipse phantoms mixed with (augmented) real CT slices, simulated on the fly.

    An epoch has ``length`` items: ``round(real_fraction * length)`` of them are real slices from ``dicom_files``
    (cycled; random flips and 90° rotations when ``augment``; the 512² originals are the fine simulation grid), the
    rest are new ellipse phantoms on every access (so epochs differ). Each item gets its own noise draw.

    Args:
        length: items per epoch.
        operator: the protocol's ray transform (default :func:`ct_operator`).
        dicom_files: real CT slices in HU (``None`` or empty: phantoms only). Keep the test slices out.
        real_fraction: share of real slices per epoch.
        photons, mu_water, pixel_mm, upsample: the simulation.
        augment: flips / rotations of the real slices.
        seed: seed of phantoms, augmentation and noise.

    Raises:
        ValueError: ``length`` < 1 or ``real_fraction`` outside [0, 1].
    """
    if int(length) < 1:
        raise ValueError(f"length: expected a positive number of items per epoch, got {length}.")
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"real_fraction: expected a value in [0, 1], got {real_fraction}.")
    operator = operator if operator is not None else ct_operator()
    files = [str(f) for f in (dicom_files or [])]
    n_real = int(round(real_fraction * length)) if files else 0
    parts: list[Dataset] = []
    if length - n_real > 0:
        sim = Compose([ct_simulation(operator, photons, mu_water, pixel_mm, upsample, fit_to_grid=False),
                       _DropKeys(["image_fine"])])
        parts.append(_PhantomSlices(length - n_real, operator.domain_shape, seed, True, upsample, sim))
    if n_real > 0:
        steps: list = [FitToGridd("image", tuple(operator.domain_shape), "image_fine", upsample)]
        if augment:
            keys = ["image", "image_fine"]
            steps += [RandFlipd(keys, prob=0.5, spatial_axis=0, allow_missing_keys=True),
                      RandFlipd(keys, prob=0.5, spatial_axis=1, allow_missing_keys=True),
                      RandRotate90d(keys, prob=0.75, max_k=3, allow_missing_keys=True)]
        steps += [ct_simulation(operator, photons, mu_water, pixel_mm, upsample, fit_to_grid=False),
                  _DropKeys(["image_fine"])]
        transform = Compose(steps)
        transform.set_random_state(seed=seed + 1)
        parts.append(_RepeatDataset(_DicomSlices(files, transform=transform), n_real))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


class _RepeatDataset(Dataset):
    """``length`` items cycling through ``dataset`` (each access re-runs its random transform)."""

    def __init__(self, dataset: Dataset, length: int) -> None:
        self.dataset, self.length = dataset, int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.dataset[i % len(self.dataset)]


class CTProtocol:
    """The bundle's default acquisition as a callable: a reference image ``(H, W)`` in HU -> ``(y, operator)``.

    HU to attenuation (:math:`\\mu_\\text{water}` = ``mu_water`` per mm, clamped at 0), Poisson noise with ``photons``
    per detector bin, simulated ``upsample`` times finer — the protocol of the module docstring — so anyone can make
    the measurements the shipped network expects and reconstruct them with ``network(y, operator)`` (attenuation in
    mm⁻¹; :func:`attenuation_to_hu` for HU).

    Args:
        operator: the ray transform (default :func:`ct_operator`, parallel beam); the image must be on its grid.
        photons, mu_water, pixel_mm, upsample: the protocol.
        seed: seed of the noise (each call with the same image gives the same measurement).

    Returns (when called):
        ``y`` ``(1, 1, angles, detectors)`` float32 and the operator.

    Example:
        >>> protocol = CTProtocol(ct_operator(image_shape=(32, 32), num_angles=8))
        >>> y, A = protocol(torch.zeros(32, 32))  # water
        >>> y.shape
        torch.Size([1, 1, 8, 46])
    """

    def __init__(
        self,
        operator: RayTransform | None = None,
        photons: float = CT_PHOTONS,
        mu_water: float = MU_WATER,
        pixel_mm: float = CT_PIXEL_MM,
        upsample: int = 2,
        seed: int = 0,
    ) -> None:
        self.operator = operator if operator is not None else ct_operator()
        self.simulate = ct_simulation(self.operator, photons, mu_water, pixel_mm, upsample, fit_to_grid=False)
        self.seed = int(seed)

    def __call__(self, image: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, RayTransform]:
        image = torch.as_tensor(image).float()
        shape = tuple(self.operator.domain_shape)
        if image.ndim != 2 or tuple(image.shape) != shape:
            raise ValueError(f"image: expected a 2D reference image of shape {shape} in HU, got shape {tuple(image.shape)}.")
        self.simulate.set_random_state(seed=self.seed)
        out = self.simulate({"image": image[None]})
        return out["sinogram"][None], self.operator

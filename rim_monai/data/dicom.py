r"""DICOM CT / MR slices (pydicom is an optional dependency: ``pip install rim-monai[dicom]``).

:func:`read_dicom` returns the stored values mapped through the rescale slope / intercept — Hounsfield units for CT,
:math:`\text{HU} = s \cdot \text{stored} + b` — as a channel-first float32 slice ``(1, rows, columns)``, with the
voxel-to-world affine in MONAI's RAS convention (DICOM's patient LPS axes with x and y negated), so slices from DICOM
and NIfTI meet the same writers.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, apply_transform
from monai.utils import optional_import
from torch.utils.data import Dataset

from rim_monai.data.file_utils import DataFileError, check_finite
from rim_monai.data.keys import Keys
from rim_monai.data.slicing import SliceVolume

pydicom, has_pydicom = optional_import("pydicom")

__all__ = ["read_dicom", "LoadDICOMd", "DicomSliceDataset", "dicom_affine", "dicom_slice_meta"]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _require_pydicom() -> None:
    if not has_pydicom:
        raise ImportError("read_dicom needs pydicom: install it with `pip install pydicom` (or rim-monai[dicom]).")


def dicom_affine(ds: Any, ras: bool = True) -> np.ndarray:
    """The 4x4 voxel-to-world affine of a single-slice DICOM dataset (voxel index ``(row, column, 0)``).

    Column 0 steps one row (along the column direction cosine, by ``PixelSpacing[0]``), column 1 steps one column
    (along the row direction cosine, by ``PixelSpacing[1]``), column 2 is the slice normal times ``SliceThickness``
    (1 mm when absent), and the origin is ``ImagePositionPatient``. Missing geometry tags give an identity
    orientation at the origin.

    Args:
        ds: a ``pydicom.Dataset``.
        ras: convert DICOM LPS to RAS (MONAI's default space for saved images).
    """
    orientation = np.asarray([float(v) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])])
    row_dir, col_dir = orientation[:3], orientation[3:]
    spacing = [float(v) for v in ds.get("PixelSpacing", [1.0, 1.0])]
    thickness = float(ds.get("SliceThickness", 1.0) or 1.0)
    affine = np.eye(4)
    affine[:3, 0] = col_dir * spacing[0]
    affine[:3, 1] = row_dir * spacing[1]
    affine[:3, 2] = np.cross(row_dir, col_dir) * thickness
    affine[:3, 3] = [float(v) for v in ds.get("ImagePositionPatient", [0.0, 0.0, 0.0])]
    return _LPS_TO_RAS @ affine if ras else affine


def read_dicom(path: str | os.PathLike, rescale: bool = True, check: bool = True) -> dict[str, Any]:
    """Read one single-frame greyscale DICOM slice.

    Args:
        path: the ``.dcm`` file.
        rescale: apply ``RescaleSlope`` / ``RescaleIntercept`` (HU for CT); otherwise return stored values.
        check: reject NaN/Inf values (float pixel data).

    Returns:
        ``image`` ``(1, rows, columns)`` float32; ``affine`` (4x4 RAS, :func:`dicom_affine`); ``spacing``
        ``(row, column, thickness)`` in mm; ``modality``; ``rescale_slope`` / ``rescale_intercept``;
        ``transfer_syntax``; ``filename``.

    Raises:
        ImportError: pydicom is not installed.
        DataFileError: not a DICOM file or truncated, no ``PixelData``, an unknown transfer syntax or one pydicom has
            no decoder for, multi-frame or colour data, NaN/Inf values.

    Example:
        >>> ct = read_dicom("../shared/data/ct/dicom/WG04/CT1_UNC.dcm")  # doctest: +SKIP
        >>> ct["image"].shape, ct["modality"]  # doctest: +SKIP
        ((1, 512, 512), 'CT')
    """
    _require_pydicom()
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID

    path = Path(path)
    if not path.exists():
        raise DataFileError(path, None, "a DICOM file", "no such file")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError) as e:
        raise DataFileError(path, None, "a readable DICOM file", f"a truncated or corrupt file ({e})") from e
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if syntax and not syntax.is_transfer_syntax:
        raise DataFileError(path, "TransferSyntaxUID", "a known DICOM transfer syntax", f"unknown UID {syntax}")
    if "PixelData" not in ds:
        raise DataFileError(path, "PixelData", "image pixel data", "none (not an image object)")
    try:
        pixels = ds.pixel_array
    except Exception as e:  # pydicom raises several types for undecodable or truncated pixel data
        name = syntax.name if syntax else "unspecified"
        raise DataFileError(
            path, "PixelData", f"pixel data decodable under transfer syntax {name} ({syntax})",
            f"an error ({type(e).__name__}: {e}); compressed syntaxes need a decoder plugin "
            "(pylibjpeg, gdcm), truncated files fail here too",
        ) from e
    if pixels.ndim != 2:
        raise DataFileError(path, "PixelData", "a single-frame greyscale slice (rows, columns)", f"shape {pixels.shape}")
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    image = pixels.astype(np.float32)
    if rescale:
        image = image * np.float32(slope) + np.float32(intercept)
    if check:
        check_finite(image, path, "PixelData")
    spacing = [float(v) for v in ds.get("PixelSpacing", [1.0, 1.0])]
    return {
        Keys.IMAGE: image[None],
        "affine": dicom_affine(ds),
        "spacing": (spacing[0], spacing[1], float(ds.get("SliceThickness", 1.0) or 1.0)),
        "modality": str(ds.get("Modality", "")),
        "rescale_slope": slope,
        "rescale_intercept": intercept,
        "transfer_syntax": str(syntax),
        Keys.FILENAME: str(path),
    }


def dicom_slice_meta(record: Mapping[str, Any]) -> dict[str, Any]:
    """``MetaTensor`` meta of a slice read by :func:`read_dicom`: its geometry as a one-slice volume.

    The slice is cut by :class:`~rim_monai.data.SliceVolume` from the one-slice volume ``(1, rows, columns, 1)`` with
    the scan's affine, so besides ``affine`` (RAS), ``spacing``, ``modality`` and ``filename_or_obj`` the meta has
    ``volume_affine``, ``volume_shape``, ``slice_axis`` (2) and ``slice_index`` (0): resampling transforms keep the
    geometry up to date and writers that rebuild volumes with :func:`~rim_monai.data.stack_slices` save a
    reconstruction at the scan's position instead of with an identity affine.
    """
    meta = {"affine": torch.as_tensor(record["affine"], dtype=torch.float64), "spacing": record["spacing"],
            "modality": record["modality"], "filename_or_obj": record[Keys.FILENAME], "space": "RAS"}
    volume = MetaTensor(torch.as_tensor(record[Keys.IMAGE])[..., None], meta=meta)
    return dict(SliceVolume(axis=2, skip_empty=False, check_finite=False)(volume)[0].meta)


class LoadDICOMd(MapTransform):
    """Replace DICOM file paths under ``keys`` by ``MetaTensor`` slices ``(1, rows, columns)`` (HU for CT).

    The meta (:func:`dicom_slice_meta`) holds ``affine`` (RAS), ``spacing``, ``modality``, ``filename_or_obj`` and the
    one-slice-volume keys of :class:`~rim_monai.data.SliceVolume`, so ``SaveImaged`` and
    :class:`~rim_monai.engines.ReconstructionSaver` write a reconstruction at the scan's position.

    Args:
        keys: entries holding paths (default ``"image"``).
        rescale: apply the rescale slope / intercept.
    """

    def __init__(self, keys: KeysCollection = Keys.IMAGE, rescale: bool = True, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.rescale = rescale

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            out = read_dicom(d[key], self.rescale)
            d[key] = MetaTensor(torch.from_numpy(out[Keys.IMAGE]), meta=dicom_slice_meta(out))
        return d


class DicomSliceDataset(Dataset):
    """Single-slice DICOM files as ``{"image": MetaTensor (1, rows, columns), "filename": path, "slice": 0}`` items.

    Each file is read by :class:`LoadDICOMd` (HU for CT; the meta places the slice in the scanner, so writers save a
    reconstruction at the scan's position), then passed through ``transform``. ``transform`` is the dataset's only
    random attribute, so MONAI's ``DataLoader`` seeds it directly.

    Args:
        files: the ``.dcm`` files, one item each.
        transform: applied to each item (e.g. a protocol's simulation), or ``None``.

    Example:
        >>> ds = DicomSliceDataset(["ct.dcm"])  # doctest: +SKIP
        >>> ds[0]["image"].shape, ds[0]["slice"]  # doctest: +SKIP
        (torch.Size([1, 512, 512]), 0)
    """

    def __init__(self, files: list[str | os.PathLike], transform: Any = None) -> None:
        self.files = [str(f) for f in files]
        self.transform = transform
        self.loader = LoadDICOMd(Keys.IMAGE)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.loader({Keys.IMAGE: self.files[i], Keys.FILENAME: self.files[i], Keys.SLICE: 0})
        return apply_transform(self.transform, item) if self.transform is not None else item

r"""Read a real MR scan of any of the shared data's formats as a stack of 2D slices.

The MRI training corpus (:mod:`rim_monai.data.mri_corpus`) is made of scans from many sources: NIfTI / MGZ volumes,
NumPy archives, NRRD volumes, vtk.js image folders (``*.vti/index.json``), single- and multi-frame DICOM files,
folders of DICOM slices (one series), 8-bit PNG / JPEG / PGM slices and complex BART images (the CT corpus,
:mod:`rim_monai.data.ct_corpus`, reads its scans with the same functions). :func:`read_mr_slices` reads one of
them into a list of 2D slices ``(H, W)`` (float32 magnitudes, or complex64 where the scan is complex), with the
voxel spacing where the file states it, so a volume can be sliced along its in-plane axes. 16-bit greyscale PNGs
keep their 16-bit values.

Readers: ``nibabel`` (NIfTI, MGZ), ``pydicom`` (DICOM; compressed transfer syntaxes need its optional JPEG
plug-ins), ``Pillow`` (PNG, JPEG, PGM), NumPy (``.npz``, NRRD raw / gzip), :func:`~rim_monai.data.read_bart`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from rim_monai.data.bart import read_bart

__all__ = ["read_mr_volume", "read_mr_slices", "volume_slices", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm")
_NRRD_TYPES = {"short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2", "uchar": "u1", "uint8": "u1",
               "int": "i4", "int32": "i4", "float": "f4", "double": "f8"}


def _dicom_array(path: Path) -> np.ndarray:
    """Pixels of a DICOM file (frames first for multi-frame files), rescaled; files without a preamble too."""
    import pydicom

    ds = pydicom.dcmread(str(path), force=True)
    if not hasattr(ds, "file_meta") or not hasattr(ds.file_meta, "TransferSyntaxUID"):
        ds.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    pixels = ds.pixel_array.astype(np.float32)
    slope, intercept = float(getattr(ds, "RescaleSlope", 1.0) or 1.0), float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    pixels = pixels * slope + intercept
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4) and getattr(ds, "SamplesPerPixel", 1) > 1:
        pixels = pixels[..., :3].mean(-1)
    return pixels if pixels.ndim == 3 else pixels[None]


def _dicom_series(folder: Path) -> np.ndarray:
    """A folder of single-slice DICOM files as ``(slices, H, W)``, ordered by instance number (slices of another
    size than the first are left out)."""
    import pydicom

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    order = []
    for p in files:
        ds = pydicom.dcmread(str(p), force=True, stop_before_pixels=True)
        order.append((int(getattr(ds, "InstanceNumber", 0) or 0), p.name, p))
    slices = [_dicom_array(p)[0] for _, _, p in sorted(order)]
    return np.stack([s for s in slices if s.shape == slices[0].shape])


def _nrrd(path: Path) -> np.ndarray:
    """A minimal NRRD reader (raw or gzip encoding, one data block after the header); returns the array with the
    first NRRD axis last (NumPy C order)."""
    raw = path.read_bytes()
    head, _, data = raw.partition(b"\n\n")
    fields = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip("= ").strip()
    sizes = [int(s) for s in fields["sizes"].split()]
    dtype = np.dtype(_NRRD_TYPES[fields["type"].lower()])
    dtype = dtype.newbyteorder("<" if fields.get("endian", "little") == "little" else ">")
    if fields.get("encoding", "raw") in ("gzip", "gz"):
        data = gzip.decompress(data)
    return np.frombuffer(data, dtype=dtype, count=int(np.prod(sizes))).reshape(sizes[::-1]).astype(np.float32)


_VTKJS_TYPES = {"Uint8Array": "u1", "Int8Array": "i1", "Uint16Array": "u2", "Int16Array": "i2", "Int32Array": "i4",
                "Uint32Array": "u4", "Float32Array": "f4", "Float64Array": "f8"}


def _vtkjs(folder: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """A vtk.js ``vtkImageData`` folder (``index.json`` + gzip or raw point data): the first point array as
    ``(z, y, x)`` float32 and its spacing in that order."""
    import json

    index = json.loads((folder / "index.json").read_text())
    array = index["pointData"]["arrays"][0]["data"]
    ref = array["ref"]
    raw_path = folder / ref.get("basepath", "data") / ref["id"]
    gz_path = raw_path.with_name(raw_path.name + ".gz")
    raw = gzip.decompress(gz_path.read_bytes()) if gz_path.exists() else raw_path.read_bytes()
    extent = index["extent"]
    dims = [extent[2 * i + 1] - extent[2 * i] + 1 for i in range(3)]  # x, y, z
    dtype = np.dtype(_VTKJS_TYPES[array["dataType"]]).newbyteorder("<")
    volume = np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims))).reshape(dims[::-1]).astype(np.float32)
    return volume, tuple(float(v) for v in index.get("spacing", (1.0, 1.0, 1.0)))[::-1]


def read_mr_volume(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, ...] | None, bool]:
    """Read one scan as an array of up to three dimensions.

    Returns:
        ``(array, spacing, stack)``: a 2D image or a 3D volume (float32, or complex64 for complex scans), the voxel
        spacing per axis when the file states it (else ``None``), and whether the first axis is a stack of 2D
        slices (DICOM frames / series) rather than a volume to slice along any axis.

    Raises:
        ValueError: naming ``path`` for a missing file or an unknown format.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise ValueError(f"path: {path} does not exist.")
    if path.is_dir() and (path / "index.json").is_file():
        volume, spacing = _vtkjs(path)
        return volume, spacing, False
    if path.is_dir():
        return _dicom_series(path), None, True
    if name.endswith((".nii", ".nii.gz", ".mgz", ".mgh")):
        import nibabel as nib

        image = nib.load(str(path))
        data = np.asarray(image.dataobj)
        data = data.astype(np.complex64 if np.iscomplexobj(data) else np.float32)
        spacing = tuple(float(s) for s in image.header.get_zooms()[:3])
        while data.ndim > 3:  # 4D series: the first volume
            data = data[..., 0]
        return data, spacing, False
    if name.endswith(".npz"):
        archive = np.load(path)
        key = next(k for k in ("data", "vol", "arr_0", *archive.files) if k in archive.files)
        return np.asarray(archive[key], dtype=np.float32), None, False
    if name.endswith(".nrrd"):
        return _nrrd(path), None, True  # the shared NRRD volumes are stacks of thick in-plane slices
    if name.endswith(".dcm"):
        return _dicom_array(path), None, True
    if name.endswith(IMAGE_SUFFIXES):
        from PIL import Image

        image = Image.open(path)
        if image.mode.startswith("I"):  # 16-bit greyscale (e.g. a CT slice): keep every level
            return np.asarray(image, dtype=np.float32), None, False
        return np.asarray(image.convert("L"), dtype=np.float32), None, False
    if name.endswith((".cfl", ".hdr")):
        data = np.squeeze(read_bart(path)["data"]).astype(np.complex64)
        return data, None, data.ndim == 3
    raise ValueError(f"path: unknown MR scan format of {path.name}.")


def volume_slices(
    volume: np.ndarray, spacing: tuple[float, ...] | None, stack: bool, max_per_axis: int, anisotropy: float = 1.5
) -> list[np.ndarray]:
    """2D slices of a volume: along every axis of a near-isotropic volume (largest / smallest spacing at most
    ``anisotropy``), else along the coarsest axis only (its in-plane images); a stack along its first axis.

    ``max_per_axis`` slices (``3 * max_per_axis`` of a stack), evenly spaced over the middle 80 % of each axis
    (where the anatomy is).
    """
    if volume.ndim == 2:
        return [volume]
    if stack:
        axes = [0]
    elif spacing is not None and max(spacing) / max(min(spacing), 1e-6) > anisotropy:
        axes = [int(np.argmax(spacing))]
    else:
        axes = [0, 1, 2]
    limit = 3 * max_per_axis if stack else max_per_axis  # a stack has one axis: as many slices as three axes
    slices = []
    for axis in axes:
        n = volume.shape[axis]
        if n <= limit:
            picks = np.arange(n)
        else:
            picks = np.unique(np.linspace(0.1 * n, 0.9 * n - 1, limit).round().astype(int))
        slices.extend(np.take(volume, int(i), axis=axis) for i in picks)
    return slices


def read_mr_slices(path: str | os.PathLike, max_per_axis: int = 24) -> list[np.ndarray]:
    """The 2D slices of one scan (:func:`read_mr_volume`, then :func:`volume_slices`), scaled once per scan so that
    its 99.5th percentile of magnitude is 1; slices with less than 5 % of their pixels above 5 % of the peak
    (background, empty edges) are dropped.

    Returns:
        a list of ``(H, W)`` float32 (magnitude) or complex64 arrays.

    Example:
        >>> slices = read_mr_slices("../shared/data/mri_image/volumes/vrd_stroke_T1.nii.gz")  # doctest: +SKIP
    """
    volume, spacing, stack = read_mr_volume(path)
    if not np.iscomplexobj(volume):
        volume = np.clip(volume - min(float(volume.min()), 0.0), 0, None)
    magnitude = np.abs(volume)
    scale = float(np.percentile(magnitude, 99.5)) or float(magnitude.max()) or 1.0
    out = []
    for image in volume_slices(volume / scale, spacing, stack, max_per_axis):
        mag = np.abs(image)
        if (mag > 0.05 * max(float(mag.max()), 1e-12)).mean() >= 0.05 and float(mag.max()) > 0.05:
            out.append(np.ascontiguousarray(image.astype(np.complex64 if np.iscomplexobj(image) else np.float32)))
    return out

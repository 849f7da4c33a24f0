"""fastMRI HDF5 files: reading volumes and slices, the ISMRMRD header, centre crops and submission files.

A fastMRI file holds ``kspace`` — ``(slices, coils, H, W)`` complex64 (multi-coil) or ``(slices, H, W)``
(single-coil) — optionally ``mask`` (``(W,)`` over the phase-encode columns in the challenge test sets),
``reconstruction_rss`` / ``reconstruction_esc`` ``(slices, h, w)`` at the recon size (320x320), the XML
``ismrmrd_header`` and attributes ``max``, ``norm``, ``acquisition``, ``patient_id``.

The slice dict used across rim_monai (see ``docs/data.md``):

- ``"kspace"``: ``(coils, H, W)`` complex64 (single-coil files get a coil axis of 1),
- ``"mask"``: ``(1, H, W)`` float32 (all ones when the file has no mask: fully sampled training data),
- ``"target"``: ``(1, h, w)`` float32 reference from ``target_key`` (when the file has it),
- ``"filename"``, ``"slice"``, the attributes and header sizes (``"recon_size"``, ``"encoding_size"``,
  ``"padding_left"``, ``"padding_right"``) as plain entries, so they collate into a batch.

Collating slices gives ``mask`` ``(B, 1, H, W)`` and ``kspace`` ``(B, coils, H, W)``, the layout of
``rim_monai.operators.MaskedFourier``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, apply_transform
from torch.utils.data import Dataset

from rim_monai.data.file_utils import DataFileError, atomic_write, check_finite, open_hdf5 as _open
from rim_monai.data.file_utils import read_hdf5_key as _read
from rim_monai.data.keys import Keys

__all__ = [
    "read_fastmri",
    "parse_ismrmrd_header",
    "fastmri_slice",
    "FastMRISliceDataset",
    "center_crop",
    "CenterCropToReconSized",
    "write_fastmri_reconstruction",
    "FastMRISubmissionWriter",
]

_ISMRMRD_NS = "{http://www.ismrm.org/ISMRMRD}"
_ATTRS = ("max", "norm", "acquisition", "patient_id")


def parse_ismrmrd_header(xml: bytes | str, filename: str | os.PathLike = "ismrmrd_header") -> dict[str, Any]:
    """Encoding and recon sizes from an ISMRMRD XML header, as fastMRI uses them.

    Args:
        xml: the ``ismrmrd_header`` dataset contents.
        filename: the file it came from (for error messages).

    Returns:
        ``encoding_size`` and ``recon_size`` as ``(x, y, z)`` matrix sizes, ``encoding_fov_mm`` / ``recon_fov_mm``,
        and, when the header has ``encodingLimits/kspace_encoding_step_1``, ``padding_left`` / ``padding_right``:
        the range of phase-encode columns actually acquired (``padding_left = enc_y // 2 - center``,
        ``padding_right = padding_left + maximum + 1``, fastMRI's definition).

    Raises:
        DataFileError: the XML does not parse or lacks ``encoding/encodedSpace`` or ``reconSpace`` matrix sizes.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise DataFileError(filename, "ismrmrd_header", "ISMRMRD XML", f"unparsable XML ({e})") from e

    def find(path: str) -> ET.Element | None:
        return root.find("/".join(_ISMRMRD_NS + p for p in path.split("/")))

    def size(path: str, cast: type) -> tuple:
        values = []
        for axis in ("x", "y", "z"):
            node = find(f"{path}/{axis}")
            if node is None or node.text is None:
                raise DataFileError(filename, "ismrmrd_header", f"an element {path}/{axis}", "none")
            values.append(cast(float(node.text)) if cast is int else cast(node.text))
        return tuple(values)

    out: dict[str, Any] = {
        "encoding_size": size("encoding/encodedSpace/matrixSize", int),
        "recon_size": size("encoding/reconSpace/matrixSize", int),
    }
    try:
        out["encoding_fov_mm"] = size("encoding/encodedSpace/fieldOfView_mm", float)
        out["recon_fov_mm"] = size("encoding/reconSpace/fieldOfView_mm", float)
    except DataFileError:
        pass
    center = find("encoding/encodingLimits/kspace_encoding_step_1/center")
    maximum = find("encoding/encodingLimits/kspace_encoding_step_1/maximum")
    if center is not None and maximum is not None:
        left = out["encoding_size"][1] // 2 - int(center.text)
        out["padding_left"] = left
        out["padding_right"] = left + int(maximum.text) + 1
    return out


def _kspace_info(f: h5py.File) -> tuple[int, bool]:
    """Number of slices and whether the file is multi-coil; validates the ``kspace`` dataset."""
    if "kspace" not in f:
        raise DataFileError(f.filename, "kspace", "a k-space dataset", f"keys {sorted(f.keys())}")
    ds = f["kspace"]
    if ds.ndim not in (3, 4):
        raise DataFileError(
            f.filename, "kspace", "(slices, coils, H, W) or (slices, H, W)", f"shape {ds.shape}"
        )
    if ds.dtype.kind != "c":
        raise DataFileError(f.filename, "kspace", "a complex dtype", f"dtype {ds.dtype}")
    return ds.shape[0], ds.ndim == 4


def _mask_2d(f: h5py.File, height: int, width: int) -> np.ndarray:
    """The file's mask as ``(H, W)`` float32 (ones when absent)."""
    if "mask" not in f:
        return np.ones((height, width), np.float32)
    mask = np.asarray(_read(f, "mask"))
    if mask.shape == (width,):
        return np.broadcast_to(mask.astype(np.float32)[None, :], (height, width)).copy()
    if mask.shape == (height, width):
        return mask.astype(np.float32)
    raise DataFileError(
        f.filename, "mask", f"shape ({width},) or ({height}, {width}) matching kspace (..., {height}, {width})",
        f"shape {mask.shape}",
    )


def _header(f: h5py.File) -> dict[str, Any]:
    if "ismrmrd_header" not in f:
        return {}
    raw = _read(f, "ismrmrd_header")
    raw = raw.item() if isinstance(raw, np.ndarray) else raw
    return parse_ismrmrd_header(raw, f.filename)


def _attrs(f: h5py.File) -> dict[str, Any]:
    out = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def read_fastmri(path: str | os.PathLike, check: bool = True) -> dict[str, Any]:
    """Read a whole fastMRI volume.

    Args:
        path: the ``.h5`` file.
        check: reject NaN/Inf in the k-space and references.

    Returns:
        ``kspace`` (as stored, complex64), ``mask`` (as stored, or ``None``), ``reconstruction_rss`` /
        ``reconstruction_esc`` (when present), ``attrs`` (dict), ``header`` (:func:`parse_ismrmrd_header`, empty when
        the file has none), ``challenge`` (``"multicoil"`` / ``"singlecoil"``) and ``filename``.

    Raises:
        DataFileError: missing file, truncated/corrupt HDF5, missing or malformed ``kspace``, a ``mask`` or
        reference that does not match the k-space, NaN/Inf values.

    Example:
        >>> vol = read_fastmri("file1000001.h5")  # doctest: +SKIP
        >>> vol["kspace"].shape, vol["header"]["recon_size"]  # doctest: +SKIP
        ((36, 15, 640, 368), (320, 320, 1))
    """
    with _open(path) as f:
        slices, multicoil = _kspace_info(f)
        kspace = np.asarray(_read(f, "kspace")).astype(np.complex64, copy=False)
        height, width = kspace.shape[-2:]
        out: dict[str, Any] = {
            Keys.KSPACE: kspace,
            Keys.MASK: None,
            "attrs": _attrs(f),
            "header": _header(f),
            "challenge": "multicoil" if multicoil else "singlecoil",
            Keys.FILENAME: str(path),
        }
        if "mask" in f:
            _mask_2d(f, height, width)  # validates the shape
            out[Keys.MASK] = np.asarray(_read(f, "mask"))
        for key in ("reconstruction_rss", "reconstruction_esc"):
            if key in f:
                ref = np.asarray(_read(f, key))
                if ref.ndim != 3 or ref.shape[0] != slices:
                    raise DataFileError(path, key, f"shape ({slices}, h, w) (one image per k-space slice)", f"shape {ref.shape}")
                out[key] = ref.astype(np.float32, copy=False)
    if check:
        for key in ("kspace", "reconstruction_rss", "reconstruction_esc"):
            if key in out:
                check_finite(out[key], path, key)
    return out


def fastmri_slice(
    path: str | os.PathLike, index: int, target_key: str | None = "reconstruction_rss", check: bool = True
) -> dict[str, Any]:
    """Read one slice of a fastMRI file as a slice dict (see the module docstring for the keys).

    Args:
        path: the ``.h5`` file.
        index: slice index.
        target_key: reference dataset to return as ``"target"`` (``None`` or absent from the file: no target).
        check: reject NaN/Inf values.

    Raises:
        DataFileError: as :func:`read_fastmri`; also an index out of range.
    """
    with _open(path) as f:
        slices, multicoil = _kspace_info(f)
        if not -slices <= index < slices:
            raise DataFileError(path, "kspace", f"a slice index in [0, {slices})", f"index {index}")
        kspace = np.asarray(_read(f, "kspace", index)).astype(np.complex64, copy=False)
        if not multicoil:
            kspace = kspace[None]
        height, width = kspace.shape[-2:]
        mask = _mask_2d(f, height, width)[None]
        header = _header(f)
        attrs = _attrs(f)
        target = None
        if target_key is not None and target_key in f:
            ds = f[target_key]
            if ds.ndim != 3 or ds.shape[0] != slices:
                raise DataFileError(path, target_key, f"shape ({slices}, h, w) (one image per k-space slice)", f"shape {ds.shape}")
            target = np.asarray(_read(f, target_key, index)).astype(np.float32, copy=False)[None]
    if check:
        check_finite(kspace, path, "kspace")
        if target is not None:
            check_finite(target, path, target_key)
    out: dict[str, Any] = {
        Keys.KSPACE: torch.from_numpy(np.ascontiguousarray(kspace)),
        Keys.MASK: torch.from_numpy(np.ascontiguousarray(mask)),
        Keys.FILENAME: os.path.basename(str(path)),
        Keys.SLICE: int(index) % slices,
    }
    if target is not None:
        out[Keys.TARGET] = MetaTensor(torch.from_numpy(np.ascontiguousarray(target)), meta={"filename_or_obj": str(path)})
    for key in _ATTRS:
        if key in attrs:
            out[key] = attrs[key]
    recon = header.get("recon_size", (height, width, 1))
    out["recon_size"] = (int(recon[0]), int(recon[1]))
    out["encoding_size"] = tuple(int(v) for v in header.get("encoding_size", (height, width, 1))[:2])
    out["padding_left"] = int(header.get("padding_left", 0))
    out["padding_right"] = int(header.get("padding_right", width))
    return out


class FastMRISliceDataset(Dataset):
    """Slice-level dataset over a folder (or list) of fastMRI ``.h5`` volumes; slices are read lazily.

    Args:
        root: a folder (all ``*.h5`` files, sorted) or a sequence of files.
        transform: applied to each slice dict (for example a mask transform and ``EstimateSensitivitiesd``).
        target_key: ``"reconstruction_rss"`` (multi-coil), ``"reconstruction_esc"`` (single-coil) or ``None``.
        slice_range: ``(start, stop)`` slices to keep per volume (negative counts from the end; the outer slices
            of fastMRI volumes are mostly noise).
        check: reject NaN/Inf values when reading.

    Example:
        >>> ds = FastMRISliceDataset("knee/multicoil_val", slice_range=(5, -5))  # doctest: +SKIP
        >>> item = ds[0]; item["kspace"].shape, item["mask"].shape  # doctest: +SKIP
        (torch.Size([15, 640, 368]), torch.Size([1, 640, 368]))
    """

    def __init__(
        self,
        root: str | os.PathLike | Sequence[str | os.PathLike],
        transform: Callable | None = None,
        target_key: str | None = "reconstruction_rss",
        slice_range: Sequence[int] | None = None,
        check: bool = True,
    ) -> None:
        if isinstance(root, (str, os.PathLike)):
            folder = Path(root)
            if not folder.is_dir():
                raise ValueError(f"root: expected a folder of fastMRI .h5 files or a list of files, got {folder}.")
            files = sorted(folder.glob("*.h5"))
        else:
            files = [Path(p) for p in root]
        self.transform, self.target_key, self.check = transform, target_key, check
        self.index: list[tuple[Path, int]] = []
        for path in files:
            with _open(path) as f:
                slices, _ = _kspace_info(f)
            rng = range(slices) if slice_range is None else range(*slice(*slice_range).indices(slices))
            self.index.extend((path, i) for i in rng)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        path, k = self.index[i]
        item = fastmri_slice(path, k, self.target_key, self.check)
        return apply_transform(self.transform, item) if self.transform is not None else item


def center_crop(x: torch.Tensor | np.ndarray, shape: Sequence[int]) -> torch.Tensor | np.ndarray:
    """Crop the last two dimensions of ``x`` to ``shape`` around the centre (fastMRI's ``center_crop``).

    The crop starts at ``(H - h) // 2``, so an image and its recon-size reference line up as in fastMRI.

    Raises:
        ValueError: ``shape`` larger than ``x``.

    Example:
        >>> center_crop(torch.zeros(2, 640, 368), (320, 320)).shape
        torch.Size([2, 320, 320])
    """
    h, w = int(shape[0]), int(shape[1])
    height, width = x.shape[-2], x.shape[-1]
    if h > height or w > width or h < 1 or w < 1:
        raise ValueError(f"shape: expected a crop size within (1, 1)..{(height, width)}, got {(h, w)}.")
    top, left = (height - h) // 2, (width - w) // 2
    return x[..., top : top + h, left : left + w]


class CenterCropToReconSized(MapTransform):
    """Centre-crop image-domain ``keys`` to the slice's recon size (``d[size_key]``, e.g. 320x320).

    Args:
        keys: image-domain entries to crop (``(C, H, W)``).
        size_key: entry holding ``(h, w)`` (set by :class:`FastMRISliceDataset`).
    """

    def __init__(self, keys: KeysCollection, size_key: str = "recon_size", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.size_key = size_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.size_key not in d:
            raise ValueError(f"data: expected the recon size under key '{self.size_key}', got keys {sorted(map(str, d))}.")
        for key in self.key_iterator(d):
            d[key] = center_crop(d[key], d[self.size_key])
        return d


def write_fastmri_reconstruction(
    path: str | os.PathLike,
    reconstruction: np.ndarray | torch.Tensor,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a volume in the fastMRI submission layout: dataset ``reconstruction`` ``(slices, h, w)`` float32 + attrs.

    The file is written to a temporary name in the same folder and renamed, so readers never see a partial file.

    Args:
        path: the output ``.h5`` (fastMRI expects the input file's name).
        reconstruction: ``(slices, h, w)`` real magnitude images (a ``(slices, 1, h, w)`` channel axis is dropped).
        attrs: HDF5 attributes to store (for example ``acquisition``, ``max``, ``patient_id``).
        overwrite: replace an existing file; otherwise ``FileExistsError`` names it.

    Raises:
        ValueError: wrong dimensions, a complex array, or NaN/Inf values.
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    recon = reconstruction.detach().cpu().numpy() if isinstance(reconstruction, torch.Tensor) else np.asarray(reconstruction)
    if recon.ndim == 4 and recon.shape[1] == 1:
        recon = recon[:, 0]
    if recon.ndim != 3 or np.iscomplexobj(recon):
        raise ValueError(f"reconstruction: expected a real (slices, h, w) array, got shape {recon.shape}, dtype {recon.dtype}.")
    if not np.isfinite(recon).all():
        raise ValueError(f"reconstruction: contains NaN or Inf values (writing {os.fspath(path)}).")
    with atomic_write(path, overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("reconstruction", data=recon.astype(np.float32))
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
    return Path(path)


class FastMRISubmissionWriter:
    """Collect per-slice reconstructions and write one fastMRI submission file per input volume.

    Args:
        output_dir: folder for the ``.h5`` files (named like the inputs).
        overwrite: replace existing outputs.

    Example:
        >>> writer = FastMRISubmissionWriter("out")  # doctest: +SKIP
        >>> for batch in loader:  # doctest: +SKIP
        ...     writer.add(batch["filename"], batch["slice"], net(...).abs())
        >>> writer.write()  # doctest: +SKIP
    """

    def __init__(self, output_dir: str | os.PathLike, overwrite: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite
        self._slices: dict[str, dict[int, np.ndarray]] = {}

    def add(self, filenames: Sequence[str] | str, slices: Sequence[int] | torch.Tensor | int, images: torch.Tensor) -> None:
        """Add a batch: ``filenames`` and ``slices`` of length B, ``images`` ``(B, 1, h, w)`` or ``(B, h, w)`` real."""
        if isinstance(filenames, str):
            filenames, slices, images = [filenames], [int(slices)], images[None]
        images = images.detach().cpu()
        if images.ndim == 4:
            images = images[:, 0]
        for name, k, image in zip(filenames, [int(s) for s in slices], images):
            self._slices.setdefault(os.path.basename(name), {})[k] = image.numpy()

    def write(self, attrs: Mapping[str, Mapping[str, Any]] | None = None) -> list[Path]:
        """Write every collected volume (slices sorted by index); returns the written paths."""
        written = []
        for name, by_index in sorted(self._slices.items()):
            volume = np.stack([by_index[k] for k in sorted(by_index)])
            written.append(
                write_fastmri_reconstruction(self.output_dir / name, volume, (attrs or {}).get(name), self.overwrite)
            )
        self._slices.clear()
        return written

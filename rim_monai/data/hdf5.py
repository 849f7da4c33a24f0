"""Generic HDF5 readers and slice datasets, including LoDoPaB-CT sinogram/image pairs.

LoDoPaB-CT stores each split as numbered file pairs ``observation_{part}_{NNN}.hdf5`` (post-log sinograms,
``data`` ``(128, 1000, 513)``) and ``ground_truth_{part}_{NNN}.hdf5`` (images, ``data`` ``(128, 362, 362)``), 128
samples per file along the first axis. :class:`HDF5SliceDataset` covers that layout and any other one where several
files (or several datasets of one file) hold aligned stacks of samples along one axis.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import apply_transform
from torch.utils.data import Dataset

from rim_monai.data.file_utils import DataFileError, check_finite, open_hdf5, read_hdf5_key
from rim_monai.data.keys import Keys

__all__ = [
    "read_hdf5",
    "HDF5SliceDataset",
    "lodopab_files",
    "LoDoPaBDataset",
    "OBSERVATION_PATTERN",
    "sinogram_records",
    "sinogram_files",
    "check_sinograms",
]

OBSERVATION_PATTERN = r"observation_(?P<stem>.+)\.(?:hdf5|h5)"
"""File names of post-log sinogram stacks in the LoDoPaB layout (``observation_<stem>.hdf5``)."""


def _dataset(f, key: str):
    if key not in f:
        raise DataFileError(f.filename, key, "an HDF5 dataset of that name", f"keys {sorted(f.keys())}")
    return f[key]


def read_hdf5(path: str | os.PathLike, keys: Sequence[str] | None = None, check: bool = True) -> dict[str, Any]:
    """Read datasets (all top-level ones by default) and the file attributes of an HDF5 file.

    Args:
        path: the file.
        keys: dataset names to read; a missing one raises.
        check: reject NaN/Inf values in floating/complex datasets.

    Returns:
        ``{name: ndarray, ..., "attrs": dict, "filename": str}``.

    Raises:
        DataFileError: missing, truncated or corrupt file, a missing key, NaN/Inf values.
    """
    with open_hdf5(path) as f:
        names = list(keys) if keys is not None else [k for k in f.keys() if hasattr(f[k], "shape")]
        out: dict[str, Any] = {}
        for name in names:
            _dataset(f, name)  # raises naming the available keys
            out[name] = np.asarray(read_hdf5_key(f, name))
        out["attrs"] = {k: v for k, v in f.attrs.items()}
    if check:
        for name in names:
            check_finite(out[name], path, name)
    out["filename"] = str(path)
    return out


class HDF5SliceDataset(Dataset):
    """Samples stacked along one axis of HDF5 datasets, read lazily, aligned across several files or keys.

    Args:
        data: one record per group of aligned files: ``{output_key: path}`` (for LoDoPaB,
            ``{"sinogram": observation file, "image": ground-truth file}``).
        keys: ``{output_key: dataset name}``; default ``"data"`` for every output key of the records.
        axis: the sample axis of every dataset.
        transform: applied to each sample dict.
        add_channel: add a leading channel axis (MONAI channel-first), so a sinogram becomes ``(1, angles, det)``.
        dtype: cast samples to this dtype (``None`` keeps the stored one).
        check: reject NaN/Inf values.

    Each item is ``{output_key: MetaTensor, "filename": path of the first key, "slice": index in the file}``.

    Raises:
        DataFileError: a missing file or key, or datasets of one record with different sample counts.

    Example:
        >>> ds = HDF5SliceDataset([{"sinogram": "obs.h5", "image": "gt.h5"}])  # doctest: +SKIP
        >>> ds[0]["sinogram"].shape  # doctest: +SKIP
        torch.Size([1, 1000, 513])
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, str | os.PathLike]],
        keys: Mapping[str, str] | None = None,
        axis: int = 0,
        transform: Callable | None = None,
        add_channel: bool = True,
        dtype: torch.dtype | None = torch.float32,
        check: bool = True,
    ) -> None:
        self.data = [dict(r) for r in data]
        self.keys = dict(keys) if keys is not None else {}
        self.axis, self.transform, self.add_channel, self.dtype, self.check = axis, transform, add_channel, dtype, check
        self.index: list[tuple[int, int]] = []
        for r, record in enumerate(self.data):
            counts = {}
            for out_key, path in record.items():
                name = self.keys.get(out_key, "data")
                with open_hdf5(path) as f:
                    ds = _dataset(f, name)
                    if ds.ndim < 1 or not -ds.ndim <= axis < ds.ndim:
                        raise DataFileError(path, name, f"an array with a sample axis {axis}", f"shape {ds.shape}")
                    counts[out_key] = ds.shape[axis]
            if len(set(counts.values())) > 1:
                first = next(iter(record))
                raise DataFileError(
                    record[first], self.keys.get(first, "data"),
                    f"the same number of samples as the other files of the record ({counts})", "a mismatch",
                )
            self.index.extend((r, i) for i in range(next(iter(counts.values()), 0)))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r, k = self.index[i]
        record = self.data[r]
        item: dict[str, Any] = {}
        for out_key, path in record.items():
            name = self.keys.get(out_key, "data")
            with open_hdf5(path) as f:
                ds = _dataset(f, name)
                index = (slice(None),) * (self.axis % ds.ndim) + (k,)
                array = np.asarray(read_hdf5_key(f, name, index))
            if self.check:
                check_finite(array, path, name)
            tensor = torch.from_numpy(np.ascontiguousarray(array))
            if self.dtype is not None:
                tensor = tensor.to(self.dtype)
            if self.add_channel:
                tensor = tensor[None]
            item[out_key] = MetaTensor(tensor, meta={"filename_or_obj": str(path), "slice_index": k})
        item[Keys.FILENAME] = str(next(iter(record.values())))
        item[Keys.SLICE] = k
        return apply_transform(self.transform, item) if self.transform is not None else item


def lodopab_files(
    root: str | os.PathLike, part: str = "train", sinogram_key: str = Keys.SINOGRAM, image_key: str = Keys.IMAGE
) -> list[dict[str, str]]:
    """Pair LoDoPaB-CT ``observation_{part}_NNN.hdf5`` / ``ground_truth_{part}_NNN.hdf5`` files in ``root``.

    Args:
        root: folder with the unpacked LoDoPaB files.
        part: ``"train"``, ``"validation"`` or ``"test"``.
        sinogram_key, image_key: output keys of the records.

    Raises:
        ValueError: no observation files for ``part``, or an observation file without its ground truth.
    """
    root = Path(root)
    pattern = re.compile(rf"observation_{re.escape(part)}_(\d+)\.hdf5$")
    records = []
    for obs in sorted(root.iterdir() if root.is_dir() else []):
        match = pattern.match(obs.name)
        if match:
            gt = root / f"ground_truth_{part}_{match.group(1)}.hdf5"
            if not gt.exists():
                raise DataFileError(gt, None, f"the ground truth paired with {obs.name}", "no such file")
            records.append({sinogram_key: str(obs), image_key: str(gt)})
    if not records:
        raise ValueError(f"root: expected observation_{part}_NNN.hdf5 files in {root}, found none.")
    return records


class LoDoPaBDataset(HDF5SliceDataset):
    """LoDoPaB-CT pairs as ``{"sinogram": (1, 1000, 513), "image": (1, 362, 362)}`` slice dicts.

    Args:
        root: folder with the LoDoPaB files.
        part: ``"train"``, ``"validation"`` or ``"test"``.
        transform: applied to each sample dict.
    """

    def __init__(self, root: str | os.PathLike, part: str = "train", transform: Callable | None = None) -> None:
        super().__init__(lodopab_files(root, part), transform=transform)


def sinogram_records(observations: Sequence[str | os.PathLike]) -> list[dict[str, str]]:
    """Records of LoDoPaB-style sinogram files, each paired with its ground truth when one lies next to it.

    ``observation_<stem>.hdf5`` (or ``.h5``) is paired with ``ground_truth_<stem>.hdf5`` (or ``.h5``) of the same
    folder; files whose name does not match :data:`OBSERVATION_PATTERN` are skipped.

    Returns:
        ``[{"sinogram": path, "target": path}, ...]`` (no ``"target"`` for observations without ground truth), for
        :class:`HDF5SliceDataset`.
    """
    records = []
    for obs in (Path(o) for o in observations):
        match = re.fullmatch(OBSERVATION_PATTERN, obs.name)
        if not match:
            continue
        record = {Keys.SINOGRAM: str(obs)}
        for suffix in (".hdf5", ".h5"):
            gt = obs.parent / f"ground_truth_{match.group('stem')}{suffix}"
            if gt.is_file():
                record[Keys.TARGET] = str(gt)
                break
        records.append(record)
    return records


def sinogram_files(folder: str | os.PathLike) -> list[dict[str, str]]:
    """:func:`sinogram_records` of every ``observation_<stem>.hdf5`` (or ``.h5``) of ``folder``, sorted.

    Example:
        >>> sinogram_files("lodopab_style")  # doctest: +SKIP
        [{'sinogram': 'lodopab_style/observation_test_000.hdf5', 'target': 'lodopab_style/ground_truth_test_000.hdf5'}]
    """
    return sinogram_records(sorted(Path(folder).iterdir()))


def check_sinograms(records: Sequence[Mapping[str, str]], range_shape: Sequence[int]) -> None:
    """Reject sinogram stacks whose ``data`` is not ``(N, *range_shape)`` (another geometry), naming the file.

    Raises:
        DataFileError: a file without ``data``, or sinograms of another shape.
    """
    expected = tuple(int(v) for v in range_shape)
    for record in records:
        with open_hdf5(record[Keys.SINOGRAM]) as f:
            shape = tuple(_dataset(f, "data").shape)
        if len(shape) != 3 or shape[1:] != expected:
            raise DataFileError(record[Keys.SINOGRAM], "data", f"sinograms (N, {expected[0]}, {expected[1]}) (the "
                                "protocol's geometry: angles x detectors)", f"shape {shape}")

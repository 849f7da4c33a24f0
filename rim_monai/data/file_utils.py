"""Shared file helpers for the data layer: the error type every reader raises, and atomic writes.

Every reader in :mod:`rim_monai.data` reports bad input through :class:`DataFileError`, a ``ValueError`` whose message
names the file, the key (HDF5 dataset, DICOM tag, header field...) and what was expected, so a user can fix the file
without reading the reader's code. Every writer writes to a temporary file in the destination folder and renames it
(:func:`atomic_write`), so a crash never leaves a half-written output behind, and refuses to replace an existing
output unless asked.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

__all__ = [
    "DataFileError",
    "atomic_write",
    "check_finite",
    "check_overwrite",
    "open_hdf5",
    "read_hdf5_key",
    "atomic_write_text",
    "as_tensor",
    "item_kspace",
]

PathLike = str | os.PathLike


class DataFileError(ValueError):
    """A file does not hold what a reader expects.

    Args:
        filename: the offending file.
        key: the dataset, tag or field inside the file (``None`` for the file as a whole).
        expected: what the reader expected there.
        found: what it found instead.

    Example:
        >>> str(DataFileError("a.h5", "kspace", "a complex array", "missing"))
        "a.h5: key 'kspace': expected a complex array, found missing."
    """

    def __init__(self, filename: PathLike, key: str | None, expected: str, found: str) -> None:
        self.filename = str(filename)
        self.key = key
        self.expected = expected
        self.found = found
        where = f"{self.filename}: key '{key}'" if key is not None else self.filename
        super().__init__(f"{where}: expected {expected}, found {found}.")


def check_finite(array: Any, filename: PathLike, key: str) -> None:
    """Raise :class:`DataFileError` when ``array`` holds NaN or Inf values.

    Args:
        array: a NumPy array or torch tensor.
        filename: the file it came from (for the message).
        key: the key it was read from (for the message).

    Raises:
        DataFileError: naming the file, the key and the number of non-finite values.
    """
    values = np.asarray(array)
    if values.dtype.kind in "fc":
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            raise DataFileError(filename, key, "finite values", f"{bad} NaN/Inf value(s)")


def check_overwrite(path: PathLike, overwrite: bool) -> None:
    """Raise ``FileExistsError`` naming ``path`` when it exists and ``overwrite`` is false."""
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{os.fspath(path)}: output exists; pass overwrite=True to replace it.")


@contextlib.contextmanager
def atomic_write(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary path that replaces ``path`` atomically on success.

    The temporary file lives in the destination folder (so :func:`os.replace` is a rename on the same file system)
    and keeps the destination's suffixes (``.nii.gz``, ``.h5``) so that format-sniffing writers still work. On an
    exception the temporary file is removed and ``path`` is left untouched.

    Args:
        path: the final destination.
        overwrite: replace an existing ``path``; otherwise ``FileExistsError`` is raised before anything is written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false (checked before and again just before the rename).

    Example:
        >>> with atomic_write("/tmp/out.txt", overwrite=True) as tmp:  # doctest: +SKIP
        ...     tmp.write_text("done")
    """
    path = Path(path)
    check_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        check_overwrite(path, overwrite)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files; give the result the usual permissions
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` (replacing it) through :func:`atomic_write`: a reader never sees half of it.

    Example:
        >>> atomic_write_text("/tmp/table.md", "| a |\\n")  # doctest: +SKIP
        PosixPath('/tmp/table.md')
    """
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def open_hdf5(path: PathLike) -> h5py.File:
    """Open an HDF5 file read-only; a missing, truncated or corrupt file raises :class:`DataFileError`."""
    if not Path(path).exists():
        raise DataFileError(path, None, "an HDF5 file", "no such file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataFileError(path, None, "a readable HDF5 file", f"a truncated or corrupt file ({e})") from e


def read_hdf5_key(f: h5py.File, key: str, index: Any = ()) -> np.ndarray:
    """Read ``f[key][index]``; a missing key or a truncated data block raises :class:`DataFileError`."""
    if key not in f:
        raise DataFileError(f.filename, key, "an HDF5 dataset of that name", f"keys {sorted(f.keys())}")
    try:
        return f[key][index]
    except (OSError, RuntimeError) as e:  # truncated data blocks surface on read
        raise DataFileError(f.filename, key, "readable data", f"a truncated or corrupt dataset ({e})") from e


def as_tensor(value: Any) -> torch.Tensor:
    """A plain ``torch.Tensor`` view of a tensor, ``MetaTensor`` or array (no meta)."""
    if isinstance(value, torch.Tensor):
        return value.as_tensor() if hasattr(value, "as_tensor") else value
    return torch.as_tensor(np.asarray(value))


def item_kspace(data: Mapping[Hashable, Any], key: str) -> torch.Tensor:
    """The multi-coil k-space ``data[key]`` of an item, checked to be complex ``(coils, H, W)``.

    Raises:
        ValueError: a missing key, or k-space of another shape or a real dtype.
    """
    if key not in data:
        raise ValueError(f"data: expected k-space under key '{key}', got keys {sorted(map(str, data))}.")
    kspace = torch.as_tensor(data[key])
    if kspace.ndim != 3 or not kspace.is_complex():
        raise ValueError(f"{key}: expected complex (coils, H, W), got shape {tuple(kspace.shape)} {kspace.dtype}.")
    return kspace

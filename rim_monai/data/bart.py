"""BART ``.cfl`` / ``.hdr`` files: complex64 arrays in column-major (Fortran) order with a text header.

A BART array ``name`` is two files: ``name.hdr`` (text; the line after ``# Dimensions`` lists up to 16 sizes) and
``name.cfl`` (raw little-endian complex64, first dimension fastest). BART's dimension order is ``READ, PHS1, PHS2,
COIL, MAPS, TE, ...``; :func:`bart_to_channel_first` turns a 2D multi-coil array into the ``(coils, H, W)`` layout the
operators use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rim_monai.data.file_utils import DataFileError, atomic_write, check_finite

__all__ = ["read_bart", "write_bart", "bart_to_channel_first"]

BART_COIL_DIM = 3


def _base(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".cfl", ".hdr") else path


def _read_dims(hdr: Path) -> tuple[int, ...]:
    try:
        lines = hdr.read_text().splitlines()
    except OSError as e:
        raise DataFileError(hdr, None, "a readable BART header", f"an unreadable file ({e.strerror})") from e
    for i, line in enumerate(lines):
        if line.strip() == "# Dimensions" and i + 1 < len(lines):
            try:
                dims = tuple(int(v) for v in lines[i + 1].split())
            except ValueError:
                break
            if dims and all(d > 0 for d in dims):
                return dims
            break
    raise DataFileError(hdr, "# Dimensions", "a line of positive integer sizes after '# Dimensions'", "none")


def read_bart(path: str | os.PathLike, check: bool = True) -> dict[str, Any]:
    """Read a BART array.

    Args:
        path: ``name``, ``name.cfl`` or ``name.hdr``.
        check: reject NaN/Inf values.

    Returns:
        ``{"data": complex64 array, "dims": the 16 BART sizes, "filename": str}``; ``data`` has BART's dimension order
        with trailing singleton dimensions dropped (the BART brain k-space is ``(1, 180, 230, 8)``).

    Raises:
        DataFileError: missing or malformed header, a ``.cfl`` whose size does not match the header (truncated
        file), or NaN/Inf values.

    Example:
        >>> bart = read_bart("../shared/data/mri_kspace/bart_brain_8ch/ksp")  # doctest: +SKIP
        >>> bart_to_channel_first(bart["data"]).shape  # doctest: +SKIP
        (8, 180, 230)
    """
    base = _base(path)
    hdr, cfl = base.with_suffix(".hdr"), base.with_suffix(".cfl")
    if not hdr.exists():
        raise DataFileError(hdr, None, "a BART header next to the .cfl file", "no such file")
    dims = _read_dims(hdr)
    count = int(np.prod(dims))
    if not cfl.exists():
        raise DataFileError(cfl, None, "a BART .cfl data file", "no such file")
    size = cfl.stat().st_size
    if size != 8 * count:
        raise DataFileError(cfl, "data", f"{8 * count} bytes (complex64, dims {dims} from {hdr.name})", f"{size} bytes")
    data = np.fromfile(cfl, dtype="<c8", count=count).reshape(dims, order="F")
    ndim = len(dims)
    while ndim > 1 and dims[ndim - 1] == 1:
        ndim -= 1
    data = data.reshape(dims[:ndim], order="F").astype(np.complex64, copy=False)
    if check:
        check_finite(data, cfl, "data")
    full = tuple(dims) + (1,) * (16 - len(dims))
    return {"data": data, "dims": full, "filename": str(cfl)}


def write_bart(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> None:
    """Write ``array`` as a BART ``.cfl``/``.hdr`` pair (complex64, column-major), atomically.

    Args:
        path: ``name`` or ``name.cfl``.
        array: any array castable to complex64, in BART's dimension order (at most 16 dimensions).
        overwrite: replace existing files; otherwise ``FileExistsError`` names the existing file.
    """
    array = np.asarray(array)
    if array.ndim > 16:
        raise ValueError(f"array: BART supports at most 16 dimensions, got {array.ndim}.")
    base = _base(path)
    dims = tuple(array.shape) + (1,) * (16 - array.ndim)
    header = "# Dimensions\n" + " ".join(str(d) for d in dims) + " \n"
    with atomic_write(base.with_suffix(".cfl"), overwrite) as tmp_cfl, atomic_write(base.with_suffix(".hdr"), overwrite) as tmp_hdr:
        np.asarray(array, dtype="<c8").ravel(order="F").tofile(tmp_cfl)
        tmp_hdr.write_text(header)


def bart_to_channel_first(data: np.ndarray, coil_dim: int = BART_COIL_DIM) -> np.ndarray:
    """BART ``(READ, PHS1, PHS2, COIL, ...)`` to ``(coils, H, W)``: coil axis first, singleton axes dropped.

    Args:
        data: an array read by :func:`read_bart` with exactly two non-singleton spatial dimensions among the first
            three, and every dimension after ``coil_dim`` singleton.
        coil_dim: the coil dimension (3 in BART).

    Raises:
        ValueError: when the spatial part is not 2D or dimensions other than coils are not singleton.
    """
    shape = tuple(data.shape) + (1,) * max(0, coil_dim + 1 - data.ndim)
    data = data.reshape(shape)
    spatial = [d for d in range(coil_dim) if shape[d] > 1]
    extra = [d for d in range(coil_dim + 1, len(shape)) if shape[d] > 1]
    if len(spatial) != 2 or extra:
        raise ValueError(
            f"data: expected 2 non-singleton spatial dimensions and only coils beyond them, got shape {tuple(data.shape)}."
        )
    image = np.moveaxis(data, coil_dim, 0)
    return image.reshape((shape[coil_dim], shape[spatial[0]], shape[spatial[1]]))

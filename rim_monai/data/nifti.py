"""Reading a NIfTI volume as stored, with errors that name the file.

MONAI's ``LoadImage`` reads NIfTI through nibabel and wraps every failure in a ``RuntimeError`` chain; a truncated
``.nii.gz`` then surfaces as ``EOFError: Compressed file ended before the end-of-stream marker was reached``, without
the file's name. :func:`read_nifti` reads the header and the voxels directly and raises
:class:`~rim_monai.data.DataFileError` naming the file for every problem, with NaN/Inf counted on the voxels as stored
(before any normalisation can spread them).
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from rim_monai.data.file_utils import DataFileError, check_finite

__all__ = ["read_nifti"]


def read_nifti(path: str | os.PathLike, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one NIfTI volume (``.nii`` / ``.nii.gz``) as stored.

    Args:
        path: the file.
        check: reject NaN/Inf voxels (counted on the stored voxels, scaled by the header's slope and intercept).

    Returns:
        ``(voxels, affine)``: the voxels as float32 (``(X, Y, Z[, ...])``, the header's scaling applied) and the 4x4
        voxel-to-world affine.

    Raises:
        DataFileError: a missing, truncated or corrupt file (the reader's own reason in the message), or NaN/Inf
            voxels (key ``'image'``).

    Example:
        >>> voxels, affine = read_nifti("brain.nii.gz")  # doctest: +SKIP
        >>> voxels.shape, affine.shape  # doctest: +SKIP
        ((197, 233, 189), (4, 4))
    """
    try:
        image = nib.load(os.fspath(path))
        voxels = np.asarray(image.get_fdata(dtype=np.float32))
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as error:  # noqa: BLE001 - nibabel, gzip and zlib raise many types; all mean "unreadable"
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        raise DataFileError(path, None, "a readable NIfTI volume", f"an error ({reason})") from error
    if check:
        check_finite(voxels, path, "image")
    return voxels, affine

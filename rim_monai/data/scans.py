"""The one folder scan: which files of a folder (or of an explicit list) a protocol reads, grouped by format.

A :class:`ScanFormat` names the file suffixes of one format (and optionally a file-name pattern, e.g. LoDoPaB's
``observation_*.hdf5``); :func:`find_scans` returns, for each format in order, the sorted files of ``dataset_dir``
(not recursive) or the given ``files`` that belong to it. The CT, MRI and denoising protocols all read their input
through it, so a folder means the same thing to every bundle.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["NIFTI", "DICOM", "HDF5", "ScanFormat", "scan_files", "find_scans"]

NIFTI = (".nii", ".nii.gz")
"""Suffixes of NIfTI volumes."""
DICOM = (".dcm",)
"""Suffixes of single-slice DICOM files."""
HDF5 = (".h5", ".hdf5")
"""Suffixes of HDF5 files (fastMRI k-space, LoDoPaB sinograms)."""


class ScanFormat(NamedTuple):
    """One input format of a protocol.

    Attributes:
        suffixes: file-name endings of the format.
        description: how error messages name it (e.g. ``"NIfTI (.nii/.nii.gz)"``).
        pattern: a regular expression the whole file name must match too (``None``: any name with the suffix).
        reader: reads one file as stored and raises an error naming it when it is unreadable or holds NaN/Inf
            (``None``: the format's dataset reads it lazily). :meth:`AcquisitionProtocol.reconstruction_dataset
            <rim_monai.data.AcquisitionProtocol.reconstruction_dataset>` calls it once per file, so ``on_error``
            can stop at, or leave out, a bad scan before any slice is reconstructed.
    """

    suffixes: tuple[str, ...]
    description: str
    pattern: str | None = None
    reader: Callable[[Path], Any] | None = None

    def matches(self, path: Path) -> bool:
        """Whether ``path``'s name belongs to this format."""
        name = path.name
        return name.endswith(self.suffixes) and (self.pattern is None or re.fullmatch(self.pattern, name) is not None)


def scan_files(dataset_dir: str | os.PathLike, suffixes: Sequence[str]) -> list[Path]:
    """Sorted files in ``dataset_dir`` (not recursive) whose name ends with one of ``suffixes``.

    Raises:
        ValueError: ``dataset_dir`` is not a folder.

    Example:
        >>> scan_files("scans", NIFTI)  # doctest: +SKIP
        [PosixPath('scans/a.nii.gz'), PosixPath('scans/b.nii')]
    """
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise ValueError(f"dataset_dir: expected a folder of scans, got '{folder}' (not a directory).")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(tuple(suffixes)))


def find_scans(
    formats: Mapping[str, ScanFormat],
    dataset_dir: str | os.PathLike | None = None,
    files: Sequence[str | os.PathLike] | None = None,
    required: bool = True,
) -> dict[str, list[Path]]:
    """The files of each format: those of ``dataset_dir`` (sorted), or those among ``files`` (in the given order).

    Args:
        formats: ``{name: ScanFormat}``, in the order the results are wanted in.
        dataset_dir: a folder of scans (not recursive).
        files: explicit files instead of a folder (take precedence over ``dataset_dir``).
        required: raise when no file of any format is found (otherwise return empty lists).

    Returns:
        ``{name: [paths]}`` for every format (empty lists included), at least one of them non-empty when ``required``.

    Raises:
        ValueError: neither a folder nor files, a folder that does not exist, a given file that does not exist, or
            (when ``required``) no file of any format.

    Example:
        >>> find_scans({"nifti": ScanFormat(NIFTI, "NIfTI")}, files=["a.nii.gz"])  # doctest: +SKIP
        {'nifti': [PosixPath('a.nii.gz')]}
    """
    if files is not None:
        paths = [Path(f) for f in files]
        for p in paths:
            if not p.is_file():
                raise ValueError(f"files: '{p}' does not exist.")
        where = [str(p) for p in paths]
    elif dataset_dir is not None:
        paths = scan_files(dataset_dir, tuple(s for f in formats.values() for s in f.suffixes))
        where = str(dataset_dir)
    else:
        raise ValueError("dataset_dir: expected a folder of scans (or files=[...]), got None.")
    found = {name: [p for p in paths if fmt.matches(p)] for name, fmt in formats.items()}
    if required and not any(found.values()):
        names = [fmt.description for fmt in formats.values()]
        listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        raise ValueError(f"dataset_dir: no {listed} files in '{where}'.")
    return found

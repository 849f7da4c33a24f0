"""The one folder scan."""

from __future__ import annotations

import pytest

from rim_monai.data import ScanFormat, find_scans, scan_files
from rim_monai.data.scans import DICOM, HDF5, NIFTI

FORMATS = {
    "nifti": ScanFormat(NIFTI, "NIfTI (.nii/.nii.gz)"),
    "sinograms": ScanFormat(HDF5, "observation_*.hdf5", r"observation_.+\.(?:hdf5|h5)"),
    "dicom": ScanFormat(DICOM, "DICOM (.dcm)"),
}


def test_folder_files_grouped_by_format_in_order(tmp_path):
    for name in ("b.nii.gz", "a.nii", "x.dcm", "observation_1.hdf5", "ground_truth_1.hdf5", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.nii.gz").mkdir()  # folders are not scans
    found = find_scans(FORMATS, tmp_path)
    assert list(found) == ["nifti", "sinograms", "dicom"]
    assert [p.name for p in found["nifti"]] == ["a.nii", "b.nii.gz"]
    assert [p.name for p in found["sinograms"]] == ["observation_1.hdf5"]  # the pattern excludes ground truths
    assert [p.name for p in scan_files(tmp_path, DICOM)] == ["x.dcm"]
    given = find_scans(FORMATS, files=[tmp_path / "x.dcm", tmp_path / "b.nii.gz"])
    assert [p.name for p in given["nifti"]] == ["b.nii.gz"] and [p.name for p in given["dicom"]] == ["x.dcm"]


def test_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="dataset_dir: expected a folder of scans, got .*not a directory"):
        find_scans(FORMATS, tmp_path / "missing")
    with pytest.raises(ValueError, match=r"dataset_dir: no NIfTI \(.nii/.nii.gz\), observation_\*.hdf5 or DICOM"):
        find_scans(FORMATS, tmp_path)
    assert find_scans(FORMATS, tmp_path, required=False) == {"nifti": [], "sinograms": [], "dicom": []}
    with pytest.raises(ValueError, match="files: .* does not exist"):
        find_scans(FORMATS, files=[tmp_path / "nope.dcm"])
    with pytest.raises(ValueError, match="got None"):
        find_scans(FORMATS)

"""read_nifti: the voxels and affine as stored, and errors that name the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from rim_monai.data import DataFileError, read_nifti


def test_reads_voxels_and_affine(tmp_path):
    affine = np.diag([1.5, 2.0, 3.0, 1.0])
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "v.nii.gz"))
    voxels, read_affine = read_nifti(tmp_path / "v.nii.gz")
    assert voxels.dtype == np.float32 and np.array_equal(voxels, data)
    assert np.array_equal(read_affine, affine)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", r"v\.nii\.gz: expected a readable NIfTI volume, found an error \(EOFError"),
        ("garbage", r"v\.nii\.gz: expected a readable NIfTI volume, found an error"),
        ("missing", r"v\.nii\.gz: expected a readable NIfTI volume"),
        ("inf", r"v\.nii\.gz: key 'image': expected finite values, found 2 NaN/Inf value\(s\)"),
    ],
)
def test_errors_name_the_file(tmp_path, damage, message):
    path = tmp_path / "v.nii.gz"
    data = np.random.default_rng(0).random((16, 16, 4)).astype(np.float32)  # incompressible
    if damage == "inf":
        data[0, 0, 0], data[1, 2, 3] = np.inf, np.nan
    if damage != "missing":
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-500])
    if damage == "garbage":
        path.write_bytes(b"\x00" * 300)
    with pytest.raises(DataFileError, match=message):
        read_nifti(path)
    if damage == "inf":
        assert read_nifti(path, check=False)[0].shape == (16, 16, 4)

"""DICOM slices: HU through rescale slope/intercept, geometry, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pydicom")

from rim_monai.data import DataFileError, DicomSliceDataset, LoadDICOMd, read_dicom, stack_slices  # noqa: E402
from tests.data.conftest import write_dicom  # noqa: E402


def test_hu_from_rescale_and_affine(tmp_path):
    pixels = np.array([[-12, 0, 7, 100], [1, 2, 3, 4], [500, 600, 700, 1200]], dtype=np.int16)
    write_dicom(tmp_path / "ct.dcm", pixels)
    out = read_dicom(tmp_path / "ct.dcm")
    assert out["image"].shape == (1, 3, 4) and out["image"].dtype == np.float32
    np.testing.assert_array_equal(out["image"][0], pixels * 2.0 - 1024.0)  # slope 2, intercept -1024
    np.testing.assert_array_equal(read_dicom(tmp_path / "ct.dcm", rescale=False)["image"][0], pixels)
    assert out["modality"] == "CT" and out["spacing"] == (0.5, 0.7, 3.0)
    # voxel (r, c) -> LPS = IPP + c * 0.7 * row_dir + r * 0.5 * col_dir; RAS negates x and y
    r, c = 2, 3
    lps = np.array([10 + c * 0.7, 20 + r * 0.5, 30.0])
    np.testing.assert_allclose(out["affine"] @ [r, c, 0, 1], [-lps[0], -lps[1], lps[2], 1.0])
    d = LoadDICOMd("image")({"image": str(tmp_path / "ct.dcm")})
    np.testing.assert_allclose(d["image"].affine.numpy(), out["affine"])
    assert d["image"].meta["modality"] == "CT"
    # a one-slice volume for the writers: stack_slices rebuilds (1, rows, columns, 1) at the scan's position
    volume = stack_slices([d["image"]])
    assert tuple(volume.shape) == (1, 3, 4, 1)
    np.testing.assert_allclose(volume.affine.numpy(), out["affine"])
    np.testing.assert_array_equal(volume[0, ..., 0].numpy(), out["image"][0])


@pytest.mark.parametrize(
    "case, match",
    [
        ("unknown_syntax", r"ct\.dcm: key 'TransferSyntaxUID': expected a known DICOM transfer syntax, found unknown UID 1\.2\.3\.4\.5\.6"),
        ("undecodable", r"ct\.dcm: key 'PixelData': expected pixel data decodable under transfer syntax JPEG 2000"),
        ("not_dicom", r"ct\.dcm: expected a readable DICOM file"),
        ("truncated", r"ct\.dcm: (key 'PixelData': )?expected"),
        ("missing", r"nothere\.dcm: expected a DICOM file"),
    ],
)
def test_bad_input(tmp_path, case, match):
    path = tmp_path / "ct.dcm"
    if case == "unknown_syntax":
        write_dicom(path, syntax="1.2.3.4.5.6")
    elif case == "undecodable":
        write_dicom(path, syntax="1.2.840.10008.1.2.4.90", encapsulated=True)
    elif case == "not_dicom":
        path.write_bytes(b"not a dicom file at all" * 10)
    elif case == "truncated":
        write_dicom(path, np.zeros((64, 64), np.int16))
        path.write_bytes(path.read_bytes()[:-4000])
    elif case == "missing":
        path = tmp_path / "nothere.dcm"
    with pytest.raises(DataFileError, match=match):
        read_dicom(path)


def test_dicom_slice_dataset_items_carry_the_scan_geometry(tmp_path):
    write_dicom(tmp_path / "a.dcm", np.full((8, 6), 100, np.int16))
    ds = DicomSliceDataset([tmp_path / "a.dcm"], transform=lambda d: {**d, "seen": True})
    item = ds[0]
    assert len(ds) == 1 and item["seen"] and item["slice"] == 0 and item["filename"] == str(tmp_path / "a.dcm")
    assert item["image"].shape == (1, 8, 6) and item["image"].meta["slice_index"] == 0
    np.testing.assert_allclose(np.asarray(item["image"].affine), read_dicom(tmp_path / "a.dcm")["affine"])

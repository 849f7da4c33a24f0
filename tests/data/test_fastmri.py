"""fastMRI HDF5: volumes, slices, header, crop, submission writer, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from monai.data import DataLoader

from rim_monai.data import (
    CenterCropToReconSized,
    DataFileError,
    FastMRISliceDataset,
    FastMRISubmissionWriter,
    center_crop,
    fastmri_slice,
    parse_ismrmrd_header,
    read_fastmri,
    write_fastmri_reconstruction,
)
from rim_monai.operators import MaskedFourier, fft2c, ifft2c
from tests.data.conftest import HEADER, write_fastmri


@pytest.mark.parametrize("coils, challenge", [(4, "multicoil"), (None, "singlecoil")])
def test_read_volume(tmp_path, coils, challenge):
    written = write_fastmri(tmp_path / "v.h5", coils=coils)
    vol = read_fastmri(tmp_path / "v.h5")
    assert vol["challenge"] == challenge
    np.testing.assert_array_equal(vol["kspace"], written["kspace"])
    np.testing.assert_array_equal(vol["mask"], written["mask"])
    np.testing.assert_array_equal(vol["reconstruction_rss"], written["reconstruction_rss"])
    assert vol["attrs"] == {"max": 2.5, "norm": 10.0, "acquisition": "CORPD_FBK", "patient_id": "p1"}
    assert vol["header"]["encoding_size"] == (16, 12, 1) and vol["header"]["recon_size"] == (8, 8, 1)


def test_header_padding_follows_fastmri_definition():
    header = parse_ismrmrd_header(HEADER.format(ex=640, ey=372, rx=320, ry=320, maxi=367, centre=184))
    # fastMRI: padding_left = enc_y // 2 - center, padding_right = padding_left + maximum + 1
    assert header["padding_left"] == 372 // 2 - 184 and header["padding_right"] == 2 + 368
    assert header["recon_fov_mm"] == (100.0, 100.0, 5.0)


@pytest.mark.parametrize("coils", [4, None])
def test_slice_layout_feeds_masked_fourier(tmp_path, coils):
    written = write_fastmri(tmp_path / "v.h5", coils=coils)
    item = fastmri_slice(tmp_path / "v.h5", 1)
    ncoils = coils or 1
    assert item["kspace"].shape == (ncoils, 16, 12) and item["kspace"].dtype == torch.complex64
    assert item["mask"].shape == (1, 16, 12) and item["mask"].dtype == torch.float32
    np.testing.assert_array_equal(item["mask"][0, 3].numpy(), written["mask"].astype(np.float32))
    assert item["target"].shape == (1, 8, 8) and item["slice"] == 1 and item["filename"] == "v.h5"
    assert item["recon_size"] == (8, 8) and item["max"] == 2.5 and item["acquisition"] == "CORPD_FBK"
    # a collated batch is the operator layout: MaskedFourier(batch["mask"], sens) with x (B, 1, H, W)
    batch = next(iter(DataLoader(FastMRISliceDataset(tmp_path, slice_range=(0, 2)), batch_size=2)))
    sens = torch.ones(2, ncoils, 16, 12, dtype=torch.complex64)
    A = MaskedFourier(batch["mask"], sens)
    x = ifft2c(batch["kspace"][:, :1])
    assert A(x).shape == batch["kspace"].shape
    torch.testing.assert_close(A(x)[:, 0], fft2c(x[:, 0]) * batch["mask"][:, 0])


def test_dataset_over_folder_with_slice_range(tmp_path):
    write_fastmri(tmp_path / "a.h5", slices=5)
    write_fastmri(tmp_path / "b.h5", slices=3, mask=None)
    ds = FastMRISliceDataset(tmp_path, slice_range=(1, -1))
    assert len(ds) == 3 + 1
    assert [(p.name, k) for p, k in ds.index] == [("a.h5", 1), ("a.h5", 2), ("a.h5", 3), ("b.h5", 1)]
    assert bool((ds[3]["mask"] == 1).all())  # no mask in the file: fully sampled


def test_center_crop_matches_fastmri_offsets():
    x = torch.arange(7 * 6).reshape(1, 7, 6)
    out = center_crop(x, (3, 4))
    torch.testing.assert_close(out, x[:, 2:5, 1:5])
    d = CenterCropToReconSized("image")({"image": torch.zeros(2, 16, 12), "recon_size": (8, 8)})
    assert d["image"].shape == (2, 8, 8)
    with pytest.raises(ValueError, match="shape"):
        center_crop(x, (8, 2))


def test_submission_writer(tmp_path):
    writer = FastMRISubmissionWriter(tmp_path / "out")
    images = torch.rand(4, 1, 8, 8)
    writer.add(["a.h5", "a.h5"], torch.tensor([1, 0]), images[:2])
    writer.add(["b.h5", "a.h5"], [0, 2], images[2:])
    paths = writer.write(attrs={"a.h5": {"acquisition": "AXT2"}})
    assert [p.name for p in paths] == ["a.h5", "b.h5"]
    with h5py.File(paths[0]) as f:
        np.testing.assert_array_equal(f["reconstruction"][()], images[[1, 0, 3], 0].numpy())
        assert f.attrs["acquisition"] == "AXT2"
    with pytest.raises(FileExistsError, match="b.h5"):
        write_fastmri_reconstruction(tmp_path / "out" / "b.h5", np.zeros((1, 8, 8)))
    write_fastmri_reconstruction(tmp_path / "out" / "b.h5", np.zeros((1, 8, 8)), overwrite=True)


@pytest.mark.parametrize("recon, match", [(np.zeros((8, 8)), "reconstruction"), (np.full((1, 2, 2), np.nan), "NaN")])
def test_submission_rejects_bad_arrays(tmp_path, recon, match):
    with pytest.raises(ValueError, match=match):
        write_fastmri_reconstruction(tmp_path / "x.h5", recon)


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_key", r"v\.h5: key 'kspace': expected a k-space dataset"),
        ("wrong_dims", r"v\.h5: key 'kspace': expected \(slices, coils, H, W\)"),
        ("mask_mismatch", r"v\.h5: key 'mask': expected shape \(12,\) or \(16, 12\)"),
        ("truncated", r"v\.h5: expected a readable HDF5 file"),
        ("nan", r"v\.h5: key 'kspace': expected finite values"),
        ("missing_file", r"nothere\.h5: expected an HDF5 file"),
        ("bad_header", r"v\.h5: key 'ismrmrd_header': expected ISMRMRD XML"),
    ],
)
def test_bad_input_names_file_key_and_expectation(tmp_path, case, match):
    path = tmp_path / "v.h5"
    write_fastmri(path, mask=np.ones(5) if case == "mask_mismatch" else "1d", nan=case == "nan")
    if case == "missing_key":
        with h5py.File(path, "a") as f:
            del f["kspace"]
    elif case == "wrong_dims":
        with h5py.File(path, "a") as f:
            del f["kspace"]
            f.create_dataset("kspace", data=np.zeros((3, 4), np.complex64))
    elif case == "truncated":
        _truncate(path)
    elif case == "missing_file":
        path = tmp_path / "nothere.h5"
    elif case == "bad_header":
        with h5py.File(path, "a") as f:
            del f["ismrmrd_header"]
            f.create_dataset("ismrmrd_header", data=b"<not xml")
    with pytest.raises(DataFileError, match=match):
        read_fastmri(path)
    with pytest.raises(DataFileError, match=match):
        fastmri_slice(path, 0)

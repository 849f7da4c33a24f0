"""The MRI protocol: fastMRI k-space as stored, NIfTI / DICOM magnitude simulated, training and validation slabs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from rim_monai.data import Keys, MRIProtocol, make_mri_sample, read_fastmri, training_dataset, validation_dataset
from rim_monai.operators import MaskedFourier


def _nifti(path, shape=(24, 28, 5)):
    data = np.zeros(shape, np.float32)
    data[4:20, 6:22] = np.arange(1, shape[2] + 1, dtype=np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 4.0, 1.0])), str(path))
    return path


def test_reconstruction_dataset_reads_fastmri_nifti_and_dicom(tmp_path):
    from tests.data.conftest import write_dicom

    make_mri_sample(tmp_path / "scan.h5", shape=(24, 24), coils=4, slices=2)
    _nifti(tmp_path / "vol.nii.gz")
    yy, xx = np.mgrid[:24, :24]
    write_dicom(tmp_path / "slice.dcm", (((yy - 12) ** 2 + (xx - 11) ** 2 < 60) * 300 + 1030).astype(np.int16))
    ds = MRIProtocol(acceleration=4, coils=2).reconstruction_dataset(tmp_path)
    assert len(ds) == 2 + 5 + 1  # fastMRI slices, then NIfTI slices, then DICOM slices
    h5_item, nifti_item, dicom_item = ds[0], ds[2], ds[7]
    assert h5_item["kspace"].shape == (4, 24, 24) and h5_item["sens"].shape == (4, 24, 24)
    assert 0 < float(h5_item["mask"].mean()) < 0.5
    assert nifti_item["kspace"].shape == (2, 24, 28) and nifti_item["target"].shape == (1, 24, 28)
    assert nifti_item["target"].meta["slice_index"] == 0
    assert dicom_item["kspace"].shape == (2, 24, 24) and dicom_item["filename"].endswith("slice.dcm")
    # the measurements are consistent with the operator of the batch
    batch = {k: v[None] for k, v in nifti_item.items() if isinstance(v, torch.Tensor)}
    op = MRIProtocol().operator_for(batch)
    torch.testing.assert_close(op(nifti_item["target"].as_tensor()[None])[0], nifti_item["kspace"], rtol=1e-4, atol=1e-5)


def test_dicom_slices_are_seeded_by_the_protocol(tmp_path):
    from tests.data.conftest import write_dicom

    write_dicom(tmp_path / "slice.dcm", np.full((16, 16), 1100, np.int16))
    first = MRIProtocol(snr_db=20.0, seed=1).reconstruction_dataset(tmp_path)[0]
    again = MRIProtocol(snr_db=20.0, seed=1).reconstruction_dataset(tmp_path)[0]
    other = MRIProtocol(snr_db=20.0, seed=2).reconstruction_dataset(tmp_path)[0]
    torch.testing.assert_close(first["kspace"], again["kspace"])
    assert not torch.equal(first["kspace"], other["kspace"])


def test_reconstruction_dataset_errors_name_the_argument(tmp_path):
    protocol = MRIProtocol()
    with pytest.raises(ValueError, match="dataset_dir: expected a folder"):
        protocol.reconstruction_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"dataset_dir: no \.h5 \(fastMRI layout\), NIfTI"):
        protocol.reconstruction_dataset(tmp_path)
    with pytest.raises(ValueError, match="files: .* does not exist"):
        protocol.reconstruction_dataset(files=[tmp_path / "nope.h5"])
    with pytest.raises(ValueError, match="dataset_dir: expected a folder of scans .*got None"):
        protocol.reconstruction_dataset()
    with pytest.raises(ValueError, match="mask_func: expected one of"):
        MRIProtocol(mask_func="spiral")


def test_training_dataset_patches_and_splits(tmp_path):
    vol = _nifti(tmp_path / "vol.nii.gz", shape=(24, 28, 10))
    protocol = MRIProtocol(coils=3, snr_db=40.0)
    ds = training_dataset(protocol, files=[vol], slice_ranges=[[0, 3], [6, 10]], patch_size=(16, 16), seed=0)
    assert len(ds) == 7
    item = ds[0]
    assert item["kspace"].shape == (3, 16, 16) and item["target"].dtype == torch.complex64
    val = validation_dataset(protocol, files=[vol], slice_ranges=[[4, 5]])
    assert len(val) == 1 and val[0]["kspace"].shape == (3, 24, 28)
    with pytest.raises(ValueError, match="files"):
        protocol.training_dataset([])


def test_validation_items_are_the_same_every_epoch(tmp_path):
    vol = _nifti(tmp_path / "vol.nii.gz", shape=(24, 28, 6))
    val = MRIProtocol(coils=2).validation_dataset([vol], slice_ranges=[[0, 4]], seed=3)
    first = [val[i]["kspace"] for i in range(len(val))]
    again = [val[i]["kspace"] for i in reversed(range(len(val)))][::-1]  # any order gives the same items
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    assert not torch.equal(val[0]["mask"], val[1]["mask"]) or not torch.equal(first[0], first[1])


def test_protocol_is_seeded_and_matches_its_operator():
    image = torch.rand(20, 24)
    y1, op = MRIProtocol(acceleration=4, coils=3, seed=1)(image)
    y2, _ = MRIProtocol(acceleration=4, coils=3, seed=1)(image)
    torch.testing.assert_close(y1, y2)
    assert y1.shape == (1, 3, 20, 24) and op.domain_shape == (1, 20, 24)
    with pytest.raises(ValueError, match="image: expected a 2D"):
        MRIProtocol()(torch.rand(1, 20, 24))


@pytest.mark.parametrize("mask_func", ["random", "equispaced", "poisson_disc"])
def test_every_registered_mask_family_runs_through_the_protocol(mask_func):
    y, op = MRIProtocol(mask_func=mask_func, coils=2)(torch.rand(48, 40))
    mask = op.mask.reshape(48, 40)
    assert 2.5 < mask.numel() / float(mask.sum()) < 6
    assert Keys.KSPACE == "kspace" and y.shape == (1, 2, 48, 40)


def test_sample_file_is_fastmri_layout(tmp_path):
    path = make_mri_sample(tmp_path / "s.h5", shape=(16, 16), coils=2, slices=2)
    data = read_fastmri(path)
    assert data["kspace"].shape == (2, 2, 16, 16)
    assert data["reconstruction_rss"].shape == (2, 16, 16)
    with pytest.raises(FileExistsError):
        make_mri_sample(path)


def test_map_estimator_reaches_simulated_and_measured_kspace(tmp_path):
    image = torch.rand(48, 48, generator=torch.Generator().manual_seed(0)) + 0.5
    true_maps = MRIProtocol(coils=4)(image)[1].sens
    for estimator in ("lowres", "espirit"):
        protocol = MRIProtocol(coils=4, acceleration=2, center_fraction=0.3, map_estimator=estimator)
        assert not torch.allclose(protocol(image)[1].sens, true_maps)
    make_mri_sample(tmp_path / "scan.h5", shape=(48, 48), coils=4, slices=1)
    read = {e: MRIProtocol(acceleration=2, center_fraction=0.3, map_estimator=e).read_scans(
        "kspace", [tmp_path / "scan.h5"], None, -1)[0]["sens"] for e in (None, "lowres", "espirit")}
    torch.testing.assert_close(read[None], read["lowres"])  # measured k-space: low-resolution maps by default
    assert not torch.allclose(read["lowres"], read["espirit"])
    with pytest.raises(ValueError, match="map_estimator"):
        MRIProtocol(map_estimator="true")

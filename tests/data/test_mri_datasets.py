import nibabel as nib
import numpy as np
import pytest
import torch

from rim_monai.data import MRIProtocol, make_mri_sample, mri_reconstruction_dataset, mri_training_dataset, read_fastmri
from rim_monai.operators import MaskedFourier


def _nifti(path, shape=(24, 28, 5)):
    data = np.zeros(shape, np.float32)
    data[4:20, 6:22] = np.arange(1, shape[2] + 1, dtype=np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 4.0, 1.0])), str(path))
    return path


def test_reconstruction_dataset_reads_fastmri_and_nifti(tmp_path):
    make_mri_sample(tmp_path / "scan.h5", shape=(24, 24), coils=4, slices=2)
    _nifti(tmp_path / "vol.nii.gz")
    ds = mri_reconstruction_dataset(tmp_path, acceleration=4, coils=2)
    assert len(ds) == 2 + 5
    h5_item, nifti_item = ds[0], ds[2]
    assert h5_item["kspace"].shape == (4, 24, 24) and h5_item["sens"].shape == (4, 24, 24)
    assert 0 < float(h5_item["mask"].mean()) < 0.5
    assert nifti_item["kspace"].shape == (2, 24, 28) and nifti_item["target"].shape == (1, 24, 28)
    assert nifti_item["target"].meta["slice_index"] == 0
    # the measurements are consistent with the operator the engines build
    op = MaskedFourier(nifti_item["mask"][None], nifti_item["sens"][None])
    y = op(nifti_item["target"].as_tensor()[None])
    torch.testing.assert_close(y[0], nifti_item["kspace"], rtol=1e-4, atol=1e-5)


def test_reconstruction_dataset_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="dataset_dir: expected a folder"):
        mri_reconstruction_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="dataset_dir: no .h5"):
        mri_reconstruction_dataset(tmp_path)
    with pytest.raises(ValueError, match="files: .* does not exist"):
        mri_reconstruction_dataset(files=[tmp_path / "nope.h5"])


def test_training_dataset_patches_and_splits(tmp_path):
    vol = _nifti(tmp_path / "vol.nii.gz", shape=(24, 28, 10))
    ds = mri_training_dataset([vol], slice_ranges=[[0, 3], [6, 10]], patch_size=(16, 16), coils=3, seed=0)
    assert len(ds) == 7
    item = ds[0]
    assert item["kspace"].shape == (3, 16, 16) and item["target"].dtype == torch.complex64
    val = mri_training_dataset([vol], slice_ranges=[[4, 5]], patch_size=None, augment=False, coils=3)
    assert len(val) == 1 and val[0]["kspace"].shape == (3, 24, 28)
    with pytest.raises(ValueError, match="files"):
        mri_training_dataset([])


def test_protocol_is_seeded_and_matches_its_operator():
    image = torch.rand(20, 24)
    y1, op = MRIProtocol(acceleration=4, coils=3, seed=1)(image)
    y2, _ = MRIProtocol(acceleration=4, coils=3, seed=1)(image)
    torch.testing.assert_close(y1, y2)
    assert y1.shape == (1, 3, 20, 24) and op.domain_shape == (1, 20, 24)
    with pytest.raises(ValueError, match="image: expected a 2D"):
        MRIProtocol()(torch.rand(1, 20, 24))


def test_sample_file_is_fastmri_layout(tmp_path):
    path = make_mri_sample(tmp_path / "s.h5", shape=(16, 16), coils=2, slices=2)
    data = read_fastmri(path)
    assert data["kspace"].shape == (2, 2, 16, 16)
    assert data["reconstruction_rss"].shape == (2, 16, 16)
    with pytest.raises(FileExistsError):
        make_mri_sample(path)


def test_validation_items_are_the_same_every_epoch(tmp_path):
    vol = _nifti(tmp_path / "vol.nii.gz", shape=(24, 28, 6))
    val = mri_training_dataset([vol], slice_ranges=[[0, 4]], patch_size=None, augment=False, coils=2, seed=3)
    first = [val[i]["kspace"] for i in range(len(val))]
    again = [val[i]["kspace"] for i in range(len(val))]
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b)
    assert not torch.equal(val[0]["mask"], val[1]["mask"]) or not torch.equal(first[0], first[1])

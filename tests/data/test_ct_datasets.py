"""CT bundle datasets: the protocol (HU -> attenuation -> Poisson sinogram), grid fitting, readers, splits."""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

from rim_monai.classical import default_weight_scale, fbp, tv_pdhg
from rim_monai.data import AttenuationToHU, DataFileError, MU_WATER, SliceDataset
from rim_monai.data.ct_datasets import (
    CTProtocol,
    FitToGridd,
    HounsfieldBaseline,
    HounsfieldOutputd,
    attenuation_to_hu,
    ct_operator,
    ct_reconstruction_dataset,
    ct_training_dataset,
    phantom_to_hu,
    scaled_tv,
    sinogram_files,
)
from rim_monai.data.samples import make_ct_sample

SHAPE = (32, 32)
DICOM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ct" / "dicom"


@pytest.fixture(scope="module")
def operator():
    return ct_operator(image_shape=SHAPE, num_angles=10)


def test_protocol_shapes_seed_and_noise_free_limit(operator):
    image = torch.full(SHAPE, 0.0)  # water
    y, A = CTProtocol(operator, seed=3)(image)
    assert A is operator and y.shape == (1, 1, *operator.range_shape) and y.dtype == torch.float32
    torch.testing.assert_close(CTProtocol(operator, seed=3)(image)[0], y)
    assert not torch.equal(CTProtocol(operator, seed=4)(image)[0], y)
    # with very many photons the post-log sinogram is the line integral of mu = mu_water on the fine grid
    y_clean, _ = CTProtocol(operator, photons=1e12, upsample=1)(image)
    expected = operator(torch.full((1, 1, *SHAPE), MU_WATER))
    torch.testing.assert_close(y_clean, expected, rtol=1e-4, atol=1e-5)


def test_protocol_poisson_statistics_against_numpy(operator):
    """Mean and variance of y = -log(N/I0) over noise draws match the photon-count model (delta method)."""
    image = torch.full(SHAPE, 500.0)  # 1.5 x water
    draws = torch.stack([CTProtocol(operator, photons=1e4, upsample=1, seed=s)(image)[0] for s in range(200)])
    clean = operator(torch.full((1, 1, *SHAPE), 1.5 * MU_WATER)).numpy()
    counts = 1e4 * np.exp(-clean)
    mask = clean > 0.2
    np.testing.assert_allclose(draws.mean(0).numpy()[mask], clean[mask], atol=4 * np.sqrt(1 / counts[mask] / 200).max() + 1e-3)
    np.testing.assert_allclose(draws.var(0).numpy()[mask].mean(), (1 / counts[mask]).mean(), rtol=0.15)


@pytest.mark.parametrize("bad", [torch.zeros(16, 16), torch.zeros(1, 32, 32)])
def test_protocol_rejects_images_off_the_grid(operator, bad):
    with pytest.raises(ValueError, match="image"):
        CTProtocol(operator)(bad)


def test_hounsfield_helpers_match_the_data_layer():
    mu = torch.tensor([[0.0, 0.01, 0.02, 0.05]])
    torch.testing.assert_close(attenuation_to_hu(mu), AttenuationToHU(MU_WATER)(mu).as_tensor())
    out = HounsfieldOutputd()({"pred": mu, "label": mu.clone(), "other": mu})
    torch.testing.assert_close(out["pred"], torch.tensor([[-1000.0, -500.0, 0.0, 1500.0]]))
    assert out["other"] is mu
    torch.testing.assert_close(phantom_to_hu(torch.tensor([-0.5, 0.0, 1.0, 1.2])), torch.tensor([-1000.0, -1000.0, 0.0, 200.0]))


def test_hounsfield_baseline_converts_fbp(operator):
    y = operator(torch.full((1, 1, *SHAPE), MU_WATER))
    plain = fbp(y, operator)
    torch.testing.assert_close(HounsfieldBaseline(fbp)(y, operator), attenuation_to_hu(plain))
    torch.testing.assert_close(HounsfieldBaseline(fbp, hounsfield=False)(y, operator), plain)
    with pytest.raises(ValueError, match="method"):
        HounsfieldBaseline("fbp")


def test_scaled_tv_is_tv_pdhg_with_the_scaled_default_weight(operator):
    image = torch.full((1, 1, *SHAPE), 0.0)
    image[..., 8:24, 10:20] = MU_WATER
    y = operator(image)
    lam = 0.3 * default_weight_scale(y, operator)
    x0 = operator.fbp(y, filter="hann").clamp_min(0.0)
    torch.testing.assert_close(scaled_tv(y, operator, 0.3, iterations=20), tv_pdhg(y, operator, lam=lam, iterations=20, x0=x0))
    torch.testing.assert_close(scaled_tv(y, operator, 0.3, warm_start=False, iterations=20),
                               tv_pdhg(y, operator, lam=lam, iterations=20))
    with pytest.raises(ValueError, match="weight"):
        scaled_tv(y, operator, -1.0)


def test_fit_to_grid_resamples_and_keeps_world_coordinates(tmp_path):
    volume = np.random.default_rng(0).normal(size=(64, 64, 3)).astype(np.float32)
    affine = np.array([[0.5, 0, 0, -10.0], [0, 0.7, 0, 4.0], [0, 0, 3.0, 1.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "v.nii.gz"))
    item = SliceDataset([{"image": str(tmp_path / "v.nii.gz")}], axis=-1)[1]
    out = FitToGridd("image", SHAPE, fine_factor=2)(item)
    block = volume[:, :, 1].reshape(32, 2, 32, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out["image"][0].numpy(), block, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["image_fine"][0], torch.from_numpy(volume[:, :, 1]))
    new = np.asarray(out["image"].meta["volume_affine"])
    # the centre of new voxel (0, 0, k) is the mean of the centres of old voxels (0..1, 0..1, k)
    old_centre = affine @ np.array([0.5, 0.5, 1, 1])
    np.testing.assert_allclose(new @ np.array([0, 0, 1, 1]), old_centre)
    assert tuple(out["image"].meta["volume_shape"]) == (32, 32, 3)
    same = FitToGridd("image", (64, 64))(item)
    assert same["image"] is item["image"] and "image_fine" not in same


def test_reconstruction_dataset_reads_nifti_hdf5_and_phantoms(tmp_path, operator):
    make_ct_sample(tmp_path / "head.nii.gz", shape=SHAPE, slices=2)
    sino = np.random.default_rng(1).random((3, *operator.range_shape)).astype(np.float32)
    with h5py.File(tmp_path / "observation_test_000.hdf5", "w") as f:
        f["data"] = sino
    with h5py.File(tmp_path / "ground_truth_test_000.hdf5", "w") as f:
        f["data"] = np.zeros((3, *SHAPE), np.float32)
    ds = ct_reconstruction_dataset(tmp_path, operator=operator, phantoms=2)
    assert len(ds) == 2 + 3 + 2
    nifti, h5, phantom = ds[0], ds[2], ds[5]
    assert nifti["sinogram"].shape == (1, *operator.range_shape) and nifti["target"].shape == (1, *SHAPE)
    assert float(nifti["target"].min()) >= 0.0  # attenuation, air clamped at 0
    np.testing.assert_allclose(np.asarray(nifti["target"].meta["volume_affine"]), nib.load(str(tmp_path / "head.nii.gz")).affine)
    torch.testing.assert_close(h5["sinogram"][0], torch.from_numpy(sino[0]))
    assert h5["target"].shape == (1, *SHAPE)
    assert phantom["filename"] == "ellipses_seed2_000"
    torch.testing.assert_close(ct_reconstruction_dataset(tmp_path, operator=operator, phantoms=2)[5]["sinogram"], phantom["sinogram"])
    assert sinogram_files(tmp_path) == [{"sinogram": str(tmp_path / "observation_test_000.hdf5"),
                                         "target": str(tmp_path / "ground_truth_test_000.hdf5")}]


def test_reconstruction_dataset_rejects_bad_input(tmp_path, operator):
    with pytest.raises(ValueError, match="dataset_dir"):
        ct_reconstruction_dataset(tmp_path / "missing", operator=operator)
    with pytest.raises(ValueError, match="no NIfTI"):
        ct_reconstruction_dataset(tmp_path, operator=operator)
    with pytest.raises(ValueError, match="files"):
        ct_reconstruction_dataset(files=[tmp_path / "nope.nii.gz"], operator=operator)
    with h5py.File(tmp_path / "observation_x.hdf5", "w") as f:
        f["data"] = np.zeros((1, 7, 9), np.float32)
    with pytest.raises(DataFileError, match="angles x detectors"):
        ct_reconstruction_dataset(tmp_path, operator=operator)


def test_training_dataset_draws_fresh_phantoms_and_mixes_real_slices(tmp_path, operator):
    ds = ct_training_dataset(length=4, operator=operator, seed=0)
    a, b = ds[0], ds[0]
    assert not torch.equal(a["target"], b["target"])  # a new phantom on every access
    again = ct_training_dataset(length=4, operator=operator, seed=0)[0]
    torch.testing.assert_close(again["target"], a["target"])  # but the stream is seeded
    with pytest.raises(ValueError, match="real_fraction"):
        ct_training_dataset(length=4, operator=operator, real_fraction=2.0)
    with pytest.raises(ValueError, match="length"):
        ct_training_dataset(length=0, operator=operator)


@pytest.mark.skipif(not (DICOM / "WG04" / "CT2_UNC.dcm").is_file(), reason="../shared/data/ct/dicom is absent")
def test_real_dicom_slices_fit_the_grid_with_their_fine_original():
    A = ct_operator(image_shape=(64, 64), num_angles=8)
    files = [DICOM / "WG04" / "CT1_UNC.dcm"]
    ds = ct_training_dataset(length=4, operator=A, dicom_files=files, real_fraction=0.5, seed=0)
    item = ds[3]  # a real slice (the last half), flipped / rotated
    assert item["target"].shape == (1, 64, 64) and float(item["target"].max()) > MU_WATER  # bone
    held_out = ct_reconstruction_dataset(files=[DICOM / "WG04" / "CT2_UNC.dcm"], operator=A)
    assert len(held_out) == 1 and held_out[0]["filename"].endswith("CT2_UNC.dcm")


def test_make_ct_sample_writes_hu_with_affine(tmp_path):
    path = make_ct_sample(tmp_path / "s.nii.gz", shape=SHAPE, slices=2, pixel_mm=1.0)
    image = nib.load(str(path))
    data = np.asarray(image.dataobj)
    assert data.shape == (*SHAPE, 2) and data.dtype == np.int16
    assert data.min() == -1000 and data[..., 0].max() == 1000  # air and skull
    assert image.affine[2, 2] == 5.0
    with pytest.raises(FileExistsError):
        make_ct_sample(path, shape=SHAPE)

"""The CT protocol: HU -> attenuation -> Poisson sinogram, its readers, phantom sets and training stream."""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

from rim_monai.data import (
    MU_WATER,
    CTProtocol,
    DataFileError,
    Keys,
    ct_operator,
    reconstruction_dataset,
    training_dataset,
    validation_dataset,
)
from rim_monai.data.samples import make_ct_sample

SHAPE = (32, 32)
DICOM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ct" / "dicom"


@pytest.fixture(scope="module")
def operator():
    return ct_operator(image_shape=SHAPE, num_angles=10)


@pytest.fixture(scope="module")
def protocol(operator):
    return CTProtocol(operator)


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
def test_protocol_rejects_images_off_the_grid(protocol, bad):
    with pytest.raises(ValueError, match="image: expected a 2D reference image of shape"):
        protocol(bad)


@pytest.mark.parametrize("kwargs", [{"photons": 0.0}, {"mu_water": -1.0}, {"pixel_mm": 0.0}])
def test_protocol_rejects_non_positive_physics(operator, kwargs):
    with pytest.raises(ValueError, match="photons, mu_water, pixel_mm"):
        CTProtocol(operator, **kwargs)


def test_pipeline_drops_the_fine_image_and_builds_the_batch_operator(protocol, operator):
    item = protocol.pipeline()({Keys.IMAGE: torch.zeros(1, 64, 64)})  # a 2x original: the fine simulation grid
    assert Keys.IMAGE_FINE not in item and item[Keys.SINOGRAM].shape == (1, *operator.range_shape)
    assert protocol.operator_for({Keys.SINOGRAM: item[Keys.SINOGRAM][None]}) is operator


def test_reconstruction_dataset_reads_nifti_hdf5_and_phantoms(tmp_path, protocol, operator):
    make_ct_sample(tmp_path / "head.nii.gz", shape=SHAPE, slices=2)
    sino = np.random.default_rng(1).random((3, *operator.range_shape)).astype(np.float32)
    with h5py.File(tmp_path / "observation_test_000.hdf5", "w") as f:
        f["data"] = sino
    with h5py.File(tmp_path / "ground_truth_test_000.hdf5", "w") as f:
        f["data"] = np.zeros((3, *SHAPE), np.float32)
    ds = protocol.reconstruction_dataset(tmp_path, phantoms=2)
    assert len(ds) == 2 + 3 + 2
    nifti, h5, phantom = ds[0], ds[2], ds[5]
    assert nifti["sinogram"].shape == (1, *operator.range_shape) and nifti["target"].shape == (1, *SHAPE)
    assert float(nifti["target"].min()) >= 0.0  # attenuation, air clamped at 0
    np.testing.assert_allclose(np.asarray(nifti["target"].meta["volume_affine"]), nib.load(str(tmp_path / "head.nii.gz")).affine)
    torch.testing.assert_close(h5["sinogram"][0], torch.from_numpy(sino[0]))
    assert h5["target"].shape == (1, *SHAPE) and type(h5["sinogram"]) is torch.Tensor  # no slice geometry
    assert phantom["filename"] == "ellipses_seed2_000"
    again = reconstruction_dataset(protocol, dataset_dir=tmp_path, phantoms=2)[5]  # the config form
    torch.testing.assert_close(again["sinogram"], phantom["sinogram"])


def test_reconstruction_dataset_rejects_bad_input(tmp_path, protocol):
    with pytest.raises(ValueError, match="dataset_dir: expected a folder"):
        protocol.reconstruction_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="dataset_dir: expected a folder of scans .*got None"):
        protocol.reconstruction_dataset()
    with pytest.raises(ValueError, match="no NIfTI"):
        protocol.reconstruction_dataset(tmp_path)
    assert len(protocol.reconstruction_dataset(tmp_path, phantoms=1)) == 1  # an empty folder is fine with phantoms
    with pytest.raises(ValueError, match="files: .* does not exist"):
        protocol.reconstruction_dataset(files=[tmp_path / "nope.nii.gz"])
    with h5py.File(tmp_path / "observation_x.hdf5", "w") as f:
        f["data"] = np.zeros((1, 7, 9), np.float32)
    with pytest.raises(DataFileError, match="angles x detectors"):
        protocol.reconstruction_dataset(tmp_path)


def test_validation_phantoms_are_fixed_and_differ_by_seed(protocol):
    val = validation_dataset(protocol, length=2, seed=1)
    a, b = val[1], val[1]
    torch.testing.assert_close(a["sinogram"], b["sinogram"])  # the same phantom and noise every epoch
    assert a["filename"] == "ellipses_seed1_001"
    assert not torch.equal(protocol.validation_dataset(2, seed=2)[1]["target"], a["target"])


def test_training_dataset_draws_fresh_phantoms(protocol):
    ds = training_dataset(protocol, length=4, seed=0)
    a, b = ds[0], ds[0]
    assert not torch.equal(a["target"], b["target"])  # a new phantom on every access
    again = protocol.training_dataset(length=4, seed=0)[0]
    torch.testing.assert_close(again["target"], a["target"])  # but the stream is seeded
    with pytest.raises(ValueError, match="real_fraction"):
        protocol.training_dataset(length=4, real_fraction=2.0)
    with pytest.raises(ValueError, match="length"):
        protocol.training_dataset(length=0)


def test_training_dataset_mixes_augmented_dicom_slices(tmp_path, protocol):
    from tests.data.conftest import write_dicom

    yy, xx = np.mgrid[:64, :64]
    write_dicom(tmp_path / "ct.dcm", (((yy - 32) ** 2 + (xx - 30) ** 2 < 500) * 500 + 12).astype(np.int16))
    ds = protocol.training_dataset(length=4, dicom_files=[tmp_path / "ct.dcm"], real_fraction=0.5, seed=0)
    assert len(ds) == 4
    real = ds[3]  # the last half are real slices, fitted to the grid (their 64x64 original is the fine grid)
    assert real["target"].shape == (1, *SHAPE) and Keys.IMAGE_FINE not in real
    assert real["filename"].endswith("ct.dcm")


@pytest.mark.skipif(not (DICOM / "WG04" / "CT2_UNC.dcm").is_file(), reason="../shared/data/ct/dicom is absent")
def test_real_dicom_slices_fit_the_grid():
    protocol = CTProtocol(ct_operator(image_shape=(64, 64), num_angles=8))
    ds = protocol.training_dataset(length=4, dicom_files=[DICOM / "WG04" / "CT1_UNC.dcm"], real_fraction=0.5, seed=0)
    item = ds[3]  # a real slice (the last half), flipped / rotated
    assert item["target"].shape == (1, 64, 64) and float(item["target"].max()) > MU_WATER  # bone
    held_out = protocol.reconstruction_dataset(files=[DICOM / "WG04" / "CT2_UNC.dcm"])
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

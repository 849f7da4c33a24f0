"""Integration: the readers on the real public files of ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rim_monai.data import (
    FastMRISliceDataset,
    SliceDataset,
    bart_to_channel_first,
    read_bart,
    read_dicom,
    read_fastmri,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not available")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def test_fastmri_layout_h5():
    path = _need(DATA / "mri_kspace/derived/DERIVED_bart_brain_8ch_fastmri_layout.h5")
    vol = read_fastmri(path)
    assert vol["kspace"].shape == (1, 8, 180, 230) and vol["kspace"].dtype == np.complex64
    assert vol["challenge"] == "multicoil" and vol["header"]["recon_size"] == (180, 230, 1)
    assert vol["reconstruction_rss"].shape == (1, 180, 230)
    assert abs(float(vol["reconstruction_rss"].max()) - vol["attrs"]["max"]) < 1e-4
    item = FastMRISliceDataset([path])[0]
    assert item["kspace"].shape == (8, 180, 230) and item["mask"].shape == (1, 180, 230)
    assert 0.10 < float(item["mask"].mean()) < 0.15  # ~12.7 % Poisson-disc sampling (README)
    assert bool((item["kspace"][:, item["mask"][0] == 0] == 0).all())


def test_bart_brain_matches_the_h5_repack():
    bart = read_bart(_need(DATA / "mri_kspace/bart_brain_8ch/ksp.cfl"))
    assert bart["data"].shape == (1, 180, 230, 8) and bart["data"].dtype == np.complex64
    kspace = bart_to_channel_first(bart["data"])
    assert kspace.shape == (8, 180, 230)
    h5 = read_fastmri(_need(DATA / "mri_kspace/derived/DERIVED_bart_brain_8ch_fastmri_layout.h5"))
    np.testing.assert_array_equal(kspace, h5["kspace"][0])
    image = read_bart(DATA / "mri_kspace/bart_brain_8ch/img")["data"]
    assert image.shape == (1, 180, 230, 1, 2)
    rss = np.sqrt((np.abs(image[0, :, :, 0, :]) ** 2).sum(-1))
    np.testing.assert_allclose(rss, h5["reconstruction_rss"][0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["CT1_UNC.dcm", "CT2_UNC.dcm"])
def test_wg04_ct_in_hounsfield_units(name):
    pytest.importorskip("pydicom")
    ct = read_dicom(_need(DATA / "ct/dicom/WG04" / name))
    assert ct["image"].shape == (1, 512, 512) and ct["image"].dtype == np.float32 and ct["modality"] == "CT"
    assert ct["image"].min() >= -3100 and 200 < ct["image"].max() < 4000
    air = np.percentile(ct["image"], 5)
    assert air < -900  # outside the body: air (or the -3024 padding)
    assert np.isclose(abs(np.linalg.det(ct["affine"][:3, :3])), np.prod(ct["spacing"]), rtol=1e-4)


def test_mni_template_slices():
    path = _need(DATA / "mri_image/nifti/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    ds = SliceDataset([{"image": str(path)}], axis=2, slice_range=(60, 70))
    assert len(ds) == 10
    image = ds[0]["image"]
    assert image.shape == (1, 197, 233) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and 50 < float(image.max()) <= 255  # uint8 template
    assert ds[0]["image"].meta["slice_index"] == 60
    np.testing.assert_allclose(ds[0]["image"].meta["volume_affine"][:3, :3].abs().sum(0).numpy(), [1, 1, 1])

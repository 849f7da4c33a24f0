"""The CT training corpus (issue 14): HU calibration, readers, random acquisitions, training and validation items."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from rim_monai.data import (
    AcquisitionBatchSampler,
    CTAcquisitionSampler,
    CTAcquisitionSettings,
    CTCorpus,
    CTTrainingPatches,
    CTValidationSlices,
    read_ct_slices,
    read_mr_volume,
)
from rim_monai.data.ct_corpus import VALIDATION_ACQUISITIONS, batch_operator, hounsfield, simulate_ct
from rim_monai.data.intensity import MU_WATER


def _body(shape=(48, 40), hu=40.0) -> np.ndarray:
    """An ellipse of soft tissue (``hu``) in air (-1000 HU)."""
    y, x = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    return np.where((x / 0.8) ** 2 + (y / 0.7) ** 2 < 1, hu, -1000.0).astype(np.float32)


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """A fake data root: a NIfTI volume in HU, a 16-bit PNG stored as HU + 1024, an 8-bit PNG, a vtk.js folder and
    a folder of natural images."""
    volume = np.stack([_body() for _ in range(6)], axis=-1)
    nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 1.0, 1.0])), str(tmp_path / "chest.nii.gz"))
    Image.fromarray((_body() + 1024).astype(np.uint16)).save(tmp_path / "head16.png")
    Image.fromarray(((_body() + 1000) / 2000 * 255).astype(np.uint8)).save(tmp_path / "head8.png")
    vti = tmp_path / "abdomen.vti"
    (vti / "data").mkdir(parents=True)
    raw = np.ascontiguousarray(np.stack([(_body() + 1000) / 2000 * 255] * 4)).astype(np.uint8)  # (z, y, x)
    (vti / "data" / "abc.gz").write_bytes(gzip.compress(raw.tobytes()))
    index = {"extent": [0, 39, 0, 47, 0, 3], "spacing": [1.0, 1.0, 2.5],
             "pointData": {"arrays": [{"data": {"dataType": "Uint8Array", "ref": {"basepath": "data", "id": "abc"}}}]}}
    (vti / "index.json").write_text(json.dumps(index))
    (tmp_path / "natural").mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "natural" / f"{k}.png")
    return tmp_path


@pytest.mark.parametrize("stored, expected", [([-1024.0, 40.0], [-1024.0, 40.0]),  # HU as stored
                                              ([0.0, 2000.0], [-1024.0, 976.0]),   # unsigned: HU + 1024
                                              ([24.0, 1064.0], [-1000.0, 40.0]),
                                              ([0.0, 255.0], [-1000.0, 1000.0])])  # 8-bit windowed
def test_hounsfield_calibration(stored, expected):
    np.testing.assert_allclose(hounsfield(np.array(stored)), expected)


@pytest.mark.parametrize("name", ["chest.nii.gz", "head16.png", "head8.png", "abdomen.vti"])
def test_read_ct_slices_gives_relative_attenuation(scans, name):
    """Air is 0 and soft tissue about 1 (water) whatever the file stores."""
    slices = read_ct_slices(scans / name, max_per_axis=2)
    assert slices and all(s.ndim == 2 and s.dtype == np.float32 for s in slices)
    image = slices[0]
    assert float(image.min()) == pytest.approx(0.0, abs=0.03)
    assert float(np.median(image[image > 0.5])) == pytest.approx(1.04, abs=0.05)


def test_vtkjs_folder_is_read_with_its_spacing(scans):
    volume, spacing, stack = read_mr_volume(scans / "abdomen.vti")
    assert volume.shape == (4, 48, 40) and spacing == (2.5, 1.0, 1.0) and not stack


def test_corpus_groups_files_by_patient_and_names_missing_paths(scans):
    corpus = CTCorpus(scans, [["chest.nii.gz", "head16.png"], "head8.png"], natural_dir="natural", max_per_axis=2)
    assert len(corpus) == 2 and corpus.names == ["chest.nii.gz", "head8.png"]
    assert len(corpus.natural) == 2 and 1.5 < max(float(n.max()) for n in corpus.natural) < 2.6  # bone-like top
    with pytest.raises(ValueError, match="subjects: missing.dcm"):
        CTCorpus(scans, ["missing.dcm"])


def test_sampler_draws_within_its_ranges():
    sampler = CTAcquisitionSampler(views=[30, 120], photons=(1e3, 1e5), fov_mm=(200, 300))
    rng = np.random.default_rng(0)
    draws = [sampler.draw(rng) for _ in range(400)]
    assert {d.geometry for d in draws} == {"parallel", "fan"} and {d.views for d in draws} == {30, 120}
    photons = np.log10([d.photons for d in draws])
    assert photons.min() >= 3 and photons.max() <= 5 and abs(photons.mean() - 4) < 0.15  # log-uniform
    assert all(200 <= d.fov_mm <= 300 for d in draws)
    assert sampler.draw(rng, ("fan", 45)).views == 45


@pytest.mark.parametrize("kwargs, name", [({"geometries": ["cone"]}, "geometries"), ({"views": []}, "views"),
                                          ({"photons": (1e5, 1e3)}, "photons"), ({"fov_mm": (0, 1)}, "fov_mm")])
def test_sampler_names_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CTAcquisitionSampler(**kwargs)


def test_simulation_matches_the_batch_operator():
    """Noise-free limit (I0 = 1e9): the sinogram is the line integrals of the target, simulated 2x finer."""
    fine = torch.zeros(64, 64)
    fine[16:48, 12:52] = 1.0
    item = simulate_ct(fine, CTAcquisitionSettings("fan", 12, 1e9, 32.0), 32, np.random.default_rng(0))
    assert item["sinogram"].shape == (1, *batch_operator("fan", 32, 12).range_shape)
    assert item["target"].shape == (1, 32, 32) and float(item["target"].max()) == pytest.approx(MU_WATER)
    expected = batch_operator("fan", 32, 12)(item["target"][None])[0]
    assert float((item["sinogram"] - expected).norm() / expected.norm()) < 0.05
    with pytest.raises(ValueError, match="fine"):
        simulate_ct(torch.zeros(32, 32), CTAcquisitionSettings(), 32, np.random.default_rng(0))


def test_training_batches_share_geometry_views_and_size(scans):
    corpus = CTCorpus(scans, ["chest.nii.gz", "head16.png"], natural_dir="natural", max_per_axis=2)
    sampler = CTAcquisitionSampler(views=[8, 12])
    dataset = CTTrainingPatches(corpus, sampler, sizes=[32, 48], ellipse_fraction=0.3)
    batches = AcquisitionBatchSampler(sampler, sizes=[32, 48], pixels_per_batch=2 * 32 * 32, seed=3, length=6)
    for batch in batches:
        assert len({(g, v) for _, (g, v), _ in batch}) == 1 and len({s for _, _, s in batch}) == 1
        items = [dataset[index] for index in batch]
        _, (geometry, views), size = batch[0]
        operator = batch_operator(geometry, size, views)
        assert all(i["sinogram"].shape == (1, *operator.range_shape) for i in items)
        assert all(i["target"].shape == (1, size, size) and float(i["target"].min()) >= 0 for i in items)
    index = batch[0]
    torch.testing.assert_close(dataset[index]["sinogram"], dataset[index]["sinogram"])  # seeded by the index


def test_an_empty_corpus_trains_on_ellipses():
    dataset = CTTrainingPatches(CTCorpus(".", []), CTAcquisitionSampler(views=[8]), sizes=[32])
    item = dataset[0]
    assert item["target"].shape == (1, 32, 32) and float(item["target"].max()) > 0


def test_validation_items_are_fixed_and_cycle_the_acquisitions(scans):
    corpus = CTCorpus(scans, ["chest.nii.gz", "head8.png"], max_per_axis=2)
    first = CTValidationSlices(corpus, slices_per_subject=2, size=32, seed=5, ellipses=1)
    again = CTValidationSlices(corpus, slices_per_subject=2, size=32, seed=5, ellipses=1)
    assert len(first) == 2 + 1 + 1  # two slices of the volume, the one slice of the PNG, one phantom
    for k, (a, b) in enumerate(zip(first, again)):
        torch.testing.assert_close(a["sinogram"], b["sinogram"])
        settings = VALIDATION_ACQUISITIONS[k % len(VALIDATION_ACQUISITIONS)]
        assert (a["geometry"], int(a["views"])) == (settings.geometry, settings.views)
    assert first[3]["name"] == "ellipses_0" and first[0]["name"].startswith("chest.nii.gz#")

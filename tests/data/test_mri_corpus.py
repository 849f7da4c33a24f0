"""The MRI training corpus (issue 13): readers of many formats, random acquisitions, training and validation items."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from rim_monai.data import (
    AcquisitionBatchSampler,
    AcquisitionSampler,
    AcquisitionSettings,
    MRICorpus,
    MRITrainingPatches,
    MRIValidationSlices,
    read_mr_slices,
    read_mr_volume,
    simulate_acquisition,
    varied_coil_maps,
    write_bart,
)
from rim_monai.data.brain_phantom import brain_phantom
from rim_monai.data.mri_corpus import filled_square
from rim_monai.operators import MaskedFourier


def _head(shape=(40, 48), value=100.0) -> np.ndarray:
    y, x = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    return (((x / 0.8) ** 2 + (y / 0.9) ** 2) < 1).astype(np.float32) * value


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """One file of each format under tmp_path (a fake data root)."""
    volume = np.stack([_head() * (1 + 0.1 * k) for k in range(10)], axis=-1)
    nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 1.2, 1.0])), str(tmp_path / "head.nii.gz"))
    np.savez(tmp_path / "vol.npz", data=volume.astype(np.uint8))
    Image.fromarray(_head((50, 30)).astype(np.uint8)).save(tmp_path / "slice.png")
    raw = np.ascontiguousarray(volume.transpose(2, 0, 1)).astype("<i2")
    header = b"NRRD0004\ntype: short\ndimension: 3\nsizes: 48 40 10\nendian: little\nencoding: gzip\n\n"
    (tmp_path / "vol.nrrd").write_bytes(header + gzip.compress(raw.tobytes()))
    write_bart(tmp_path / "complex", (_head() * np.exp(0.3j)).astype(np.complex64)[None])
    return tmp_path


def test_readers_give_scaled_slices_of_every_format(scans):
    for name, complex_ in [("head.nii.gz", False), ("vol.npz", False), ("slice.png", False), ("vol.nrrd", False),
                           ("complex.cfl", True)]:
        slices = read_mr_slices(scans / name, max_per_axis=4)
        assert slices, name
        assert all(s.ndim == 2 and np.iscomplexobj(s) == complex_ for s in slices), name
        assert 0.9 < max(float(np.abs(s).max()) for s in slices) < 1.5, name  # 99.5th percentile scaled to 1
    volume, spacing, stack = read_mr_volume(scans / "vol.nrrd")
    assert volume.shape == (10, 40, 48) and stack


def test_readers_name_the_path():
    with pytest.raises(ValueError, match="path"):
        read_mr_volume("/nonexistent/scan.nii.gz")


def test_acquisition_model_with_true_maps_is_exact():
    """Noise-free, true maps: the k-space is the operator applied to the target."""
    rng = np.random.default_rng(0)
    image = torch.polar(torch.rand(32, 32) + 0.5, torch.zeros(32, 32))
    item = simulate_acquisition(image, AcquisitionSettings(4, "random", 4.0, None, None, "true"), rng)
    A = MaskedFourier(item["mask"][None], item["sens"][None])
    torch.testing.assert_close(A(item["target"][None])[0], item["kspace"], rtol=1e-4, atol=1e-5)
    assert float(item["sigma"]) == 0.0


@pytest.mark.parametrize("estimator", ["lowres", "espirit"])
def test_estimated_maps_are_normalised_and_close_to_the_true_ones(estimator):
    rng = np.random.default_rng(1)
    image = torch.polar(torch.ones(64, 64), torch.zeros(64, 64))
    item = simulate_acquisition(image, AcquisitionSettings(8, "equispaced", 4.0, None, 40.0, estimator), rng)
    rss = item["sens"].abs().square().sum(0).sqrt()[16:48, 16:48]
    covered = rss > 0.5  # ESPIRiT zeroes the maps where its eigenvalue is small
    assert float(covered.float().mean()) > 0.8
    torch.testing.assert_close(rss[covered], torch.ones_like(rss[covered]), rtol=0, atol=1e-3)
    assert item["kspace"].shape == (8, 64, 64) and item["mask"].shape == (1, 64, 64)
    assert float(item["sigma"]) > 0


def test_varied_maps_cover_one_to_sixteen_coils():
    rng = np.random.default_rng(2)
    for coils in (1, 3, 16):
        maps = varied_coil_maps(coils, (24, 20), rng)
        assert maps.shape == (coils, 24, 20) and maps.dtype == torch.complex64
        torch.testing.assert_close(maps.abs().square().sum(0), torch.ones(24, 20), rtol=1e-4, atol=1e-4)


def test_sampler_draws_within_its_ranges():
    sampler = AcquisitionSampler(coils=[2, 16], accelerations=[2, 12], snr_db=[20, 50], noise_free=0.5)
    rng = np.random.default_rng(3)
    draws = [sampler.draw(rng) for _ in range(200)]
    assert {d.coils for d in draws} == {2, 16}
    assert all(2 <= d.acceleration <= 12 for d in draws)
    assert any(d.snr_db is None for d in draws) and all(d.snr_db is None or 20 <= d.snr_db <= 50 for d in draws)
    assert {d.mask_func for d in draws} == {"random", "equispaced", "poisson_disc"}
    assert {d.estimator for d in draws} == {"lowres", "espirit"}
    with pytest.raises(ValueError, match="accelerations"):
        AcquisitionSampler(accelerations=[1, 4])
    with pytest.raises(ValueError, match="coils"):
        AcquisitionSampler(coils=[0])


def test_training_batches_share_coils_and_size(scans):
    corpus = MRICorpus(scans, ["head.nii.gz", ["vol.npz", "vol.nrrd"], "slice.png", "complex.cfl"], max_per_axis=3)
    assert len(corpus) == 4 and not corpus.natural
    sampler = AcquisitionSampler(coils=[1, 4], accelerations=[2, 6])
    dataset = MRITrainingPatches(corpus, sampler, sizes=[32, 48])
    batches = AcquisitionBatchSampler(sampler, [32, 48], pixels_per_batch=3 * 32 * 32, seed=0, length=4)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches)
    for batch in loader:
        b, coils, h, w = batch["kspace"].shape
        assert h == w and h in (32, 48) and coils in (1, 4) and b == max(1, 3 * 32 * 32 // (h * w))
        assert batch["sens"].shape == batch["kspace"].shape and batch["target"].shape == (b, 1, h, w)
        assert torch.isfinite(batch["kspace"]).all() and batch["target"].abs().amax() > 0
    first = dataset[(7, 4, 32)]
    torch.testing.assert_close(dataset[(7, 4, 32)]["kspace"], first["kspace"])  # items are seeded


def test_natural_images_and_validation_slices(scans):
    (scans / "natural").mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(scans / "natural" / "a.png")
    corpus = MRICorpus(scans, ["head.nii.gz"], natural_dir="natural", max_per_axis=3)
    assert len(corpus.natural) == 1
    patches = MRITrainingPatches(corpus, AcquisitionSampler(coils=[2]), sizes=[32], natural_fraction=1.0)
    assert patches[(0, 2, 32)]["kspace"].shape == (2, 32, 32)
    validation = MRIValidationSlices(MRICorpus(scans, ["head.nii.gz"]), slices_per_subject=3, max_size=32)
    assert len(validation) == 3
    assert all(item["target"].shape[-1] <= 32 for item in validation.items)
    settings = [AcquisitionSettings(2, "random", 4.0, None, None, "true"), AcquisitionSettings(1, "random", 8.0, None, None, "true")]
    every = MRIValidationSlices(MRICorpus(scans, ["head.nii.gz"]), slices_per_subject=3, max_size=32,
                                acquisitions=settings, every_acquisition=True)
    cycled = MRIValidationSlices(MRICorpus(scans, ["head.nii.gz"]), slices_per_subject=3, max_size=32,
                                 acquisitions=settings)
    assert len(every) == 6 and [item["kspace"].shape[0] for item in every.items] == [2, 1] * 3
    torch.testing.assert_close(every[0]["kspace"], cycled[0]["kspace"])  # the same first item, then every setting
    torch.testing.assert_close(every[1]["target"].abs(), every[0]["target"].abs(), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="subjects"):
        MRICorpus(scans, ["missing.nii.gz"])


def test_brain_phantoms_as_a_training_source(scans):
    corpus = MRICorpus(scans, ["slice.png"], phantoms=2, phantom_seed=5, phantom_size=48)
    assert len(corpus.phantoms) == 2 and corpus.phantoms[0].shape == (48, 48) and "2 phantoms" in corpus.summary()
    expected = brain_phantom((48, 48), seed=6)
    np.testing.assert_allclose(corpus.phantoms[1], expected / np.percentile(expected, 99.5), rtol=1e-6)
    corpus.slices = [[np.zeros((48, 48), np.float32)]]  # a blank subject: any signal must come from a phantom
    sampler = AcquisitionSampler(coils=[2])
    with_phantoms = MRITrainingPatches(corpus, sampler, sizes=[32], natural_fraction=0.0, phantom_fraction=1.0)
    without = MRITrainingPatches(corpus, sampler, sizes=[32], natural_fraction=0.0, phantom_fraction=0.0)
    rng = np.random.default_rng(0)
    assert float(with_phantoms.image(rng, 32).abs().amax()) > 0.5
    assert float(without.image(np.random.default_rng(0), 32).abs().amax()) == 0.0
    with pytest.raises(ValueError, match="phantom_fraction"):
        MRITrainingPatches(corpus, sampler, natural_fraction=0.5, phantom_fraction=0.6)
    with pytest.raises(ValueError, match="phantoms"):
        MRICorpus(scans, ["slice.png"], phantoms=-1)


def test_an_empty_image_keeps_the_true_maps():
    """No calibration region (all-zero, noise-free k-space): the item keeps the simulation's maps instead of failing."""
    rng = np.random.default_rng(4)
    for estimator in ("lowres", "espirit"):
        item = simulate_acquisition(torch.zeros(32, 32, dtype=torch.complex64),
                                    AcquisitionSettings(4, "random", 4.0, None, None, estimator), rng)
        assert item["sens"].shape == (4, 32, 32) and torch.isfinite(item["sens"]).all()


@pytest.mark.parametrize("estimator", ["lowres", "espirit"])
def test_target_is_the_combination_with_the_estimated_maps(estimator):
    """Estimated maps absorb the object's phase: the target is sum_c conj(S_hat_c) S_c x, whose magnitude is |x|
    where the maps are good, and the zero-filled image with the estimated maps is in phase with it."""
    rng = np.random.default_rng(5)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    magnitude = ((xx**2 + yy**2) < 0.6).float() * (1 + 0.3 * xx)
    image = torch.polar(magnitude, 1.5 * xx + 0.5)  # a smooth phase, as the training items have
    item = simulate_acquisition(image, AcquisitionSettings(8, "random", 2.0, 0.3, None, estimator), rng)
    inside = magnitude > 0.5
    ratio = item["target"][0].abs()[inside] / magnitude[inside]
    assert float((ratio - 1).abs().median()) < 0.05
    zero_filled = MaskedFourier(item["mask"][None], item["sens"][None]).adjoint(item["kspace"][None])[0, 0]
    agreement = (zero_filled.conj() * item["target"][0])[inside]
    assert float(agreement.sum().abs() / agreement.abs().sum()) > 0.9  # no phase left between the two


def test_aligned_oracle_maps_are_the_true_ones_in_the_estimates_convention():
    """maps="aligned": the same k-space and mask as the estimate's item, maps of unit root-sum-of-squares that are the
    true ones up to one phase per pixel, that phase the low-resolution estimate's (so the target is in phase with the
    estimate's), and a data model that is exact; a bad ``maps`` names the argument."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    magnitude = ((xx**2 + yy**2) < 0.6).float() * (1 + 0.3 * xx)
    image = torch.polar(magnitude, 1.5 * xx + 0.5)
    settings = AcquisitionSettings(8, "equispaced", 8.0, None, None, "espirit")
    estimated = simulate_acquisition(image, settings, np.random.default_rng(7))
    aligned = simulate_acquisition(image, settings, np.random.default_rng(7), maps="aligned")
    true = simulate_acquisition(image, settings, np.random.default_rng(7), maps="true")
    for item in (aligned, true):
        torch.testing.assert_close(item["kspace"], estimated["kspace"])
        torch.testing.assert_close(item["mask"], estimated["mask"])  # the ESPIRiT calibration box kept
    inside = magnitude > 0.5
    torch.testing.assert_close(aligned["sens"].abs().square().sum(0)[inside], torch.ones(int(inside.sum())),
                               rtol=0, atol=1e-4)
    unit = true["sens"] / true["sens"].abs().square().sum(0, keepdim=True).sqrt()
    coherence = (aligned["sens"].conj() * unit).sum(0).abs()[inside]
    assert float(coherence.min()) > 0.999  # the true maps, up to a phase per pixel
    agreement = (aligned["target"][0].conj() * estimated["target"][0])[inside]
    assert float(agreement.sum().abs() / agreement.abs().sum()) > 0.9  # the estimate's phase convention
    A = MaskedFourier(aligned["mask"][None], aligned["sens"][None])
    torch.testing.assert_close(A(aligned["target"][None])[0], aligned["kspace"], rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="^maps"):
        simulate_acquisition(image, settings, np.random.default_rng(7), maps="oracle")


def test_filled_square_lies_inside_the_anatomy():
    image = torch.from_numpy(_head((160, 200), value=1.0))
    top, left, side = filled_square(image, 256)
    assert side >= 64 and side % 2 == 0
    assert float((image[top : top + side, left : left + side] > 0.1).float().mean()) >= 0.8
    assert filled_square(image, 64)[2] == 64  # capped by max_size
    assert filled_square(torch.zeros(100, 100), 256) is None  # no anatomy
    assert filled_square(torch.from_numpy(_head((40, 48), value=1.0)), 256) is None  # smaller than min_size


def test_fill_validation_items_have_anatomy_at_every_edge(tmp_path):
    volume = np.stack([_head((160, 180), value=100.0) * (1 + 0.1 * k) for k in range(4)], axis=-1)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "big.nii.gz"))
    corpus = MRICorpus(tmp_path, ["big.nii.gz"], max_per_axis=2)
    settings = [AcquisitionSettings(1, "random", 4.0, None, None, "true")]
    fill = MRIValidationSlices(corpus, slices_per_subject=2, acquisitions=settings, field_of_view="fill")
    centre = MRIValidationSlices(corpus, slices_per_subject=2, acquisitions=settings)
    assert len(fill) >= 1
    for item in fill.items:
        target = item["target"].abs()[0]
        for edge in (target[0], target[-1], target[:, 0], target[:, -1]):
            assert float((edge > 0.05).float().mean()) > 0.5  # anatomy along every edge
    for item in centre.items:
        assert float(item["target"].abs()[..., 0, :].max()) < 0.05  # air at the top edge
    with pytest.raises(ValueError, match="field_of_view"):
        MRIValidationSlices(corpus, field_of_view="zoom")


def test_fill_fraction_draws_crops_that_fill_the_field_of_view(tmp_path):
    volume = np.stack([_head((160, 180), value=100.0) for _ in range(4)], axis=-1)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "big.nii.gz"))
    corpus = MRICorpus(tmp_path, ["big.nii.gz"], max_per_axis=2)
    sampler = AcquisitionSampler(coils=[1])

    def foreground(patches):
        images = [patches.image(np.random.default_rng(seed), 48) for seed in range(12)]
        return [float((image.abs() > 0.1).float().mean()) for image in images]

    plain = MRITrainingPatches(corpus, sampler, sizes=[48], zooms=(2.0, 2.0), natural_fraction=0.0)
    filled = MRITrainingPatches(corpus, sampler, sizes=[48], zooms=(2.0, 2.0), natural_fraction=0.0, fill_fraction=1.0)
    assert min(foreground(filled)) >= 0.8 and min(foreground(plain)) < 0.8
    with pytest.raises(ValueError, match="fill_fraction"):
        MRITrainingPatches(corpus, sampler, fill_fraction=1.5)


def test_validation_map_estimator_replaces_the_multi_coil_estimator_only(tmp_path):
    """MRIValidationSlices(map_estimator=...): the same k-space, masks and noise, with the named maps for every
    multi-coil acquisition ("aligned": the simulation's own in the estimate's convention); single-coil acquisitions
    keep theirs; an unknown estimator names the argument."""
    volume = np.stack([_head((96, 96), value=100.0) * (1 + 0.1 * k) for k in range(4)], axis=-1)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "head.nii.gz"))
    corpus = MRICorpus(tmp_path, ["head.nii.gz"], max_per_axis=2)
    settings = [AcquisitionSettings(4, "equispaced", 8.0, None, 40.0, "espirit"),
                AcquisitionSettings(1, "random", 4.0, None, None, "lowres")]
    estimated = MRIValidationSlices(corpus, slices_per_subject=2, acquisitions=settings, every_acquisition=True)
    true = MRIValidationSlices(corpus, slices_per_subject=2, acquisitions=settings, every_acquisition=True,
                               map_estimator="aligned")
    assert len(true) == len(estimated) == 4
    for a, b in zip(estimated.items, true.items):
        torch.testing.assert_close(a["kspace"], b["kspace"])
        torch.testing.assert_close(a["mask"], b["mask"])
        if a["kspace"].shape[0] > 1:
            assert not torch.allclose(a["sens"], b["sens"])
        else:
            torch.testing.assert_close(a["sens"], b["sens"])
    with pytest.raises(ValueError, match="map_estimator"):
        MRIValidationSlices(corpus, map_estimator="oracle")

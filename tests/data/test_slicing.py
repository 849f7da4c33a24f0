"""Volumes to slices and back, with the slice geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from rim_monai.data import (
    FitToGridd,
    SliceDataset,
    SliceVolume,
    SliceVolumed,
    rescale_slice_meta,
    slice_affine,
    stack_slices,
    zoom_affine,
)
from tests.data.conftest import write_nifti


def _load(path):
    return Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image")])({"image": str(path)})


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_affine_maps_voxels_to_the_volume_world(axis):
    rng = np.random.default_rng(axis)
    affine = np.eye(4)
    affine[:3] = rng.standard_normal((3, 4))
    k = 3
    sa = slice_affine(affine, axis, k).numpy()
    keep = [a for a in range(3) if a != axis]
    for i, j in [(0, 0), (2, 5), (4, 1)]:
        voxel = np.zeros(3)
        voxel[keep], voxel[axis] = (i, j), k
        np.testing.assert_allclose(sa @ [i, j, 0, 1], affine @ [*voxel, 1])


def test_slicing_range_skip_empty_and_stack_round_trip(tmp_path):
    data, affine = write_nifti(tmp_path / "v.nii.gz", shape=(6, 7, 8), empty_slices=(0, 5))
    volume = _load(tmp_path / "v.nii.gz")["image"]
    slices = SliceVolume(axis=2)(volume)
    assert [s.meta["slice_index"] for s in slices] == [1, 2, 3, 4, 6, 7]
    assert [s.meta["slice_index"] for s in SliceVolume(axis=-1, slice_range=(2, -1))(volume)] == [2, 3, 4, 6]
    assert len(SliceVolume(axis=2, skip_empty=False)(volume)) == 8
    np.testing.assert_array_equal(slices[2][0].numpy(), data[..., 3])
    rebuilt = stack_slices(slices[::-1])
    np.testing.assert_array_equal(rebuilt[0].numpy(), data)  # the empty slices come back as zeros
    np.testing.assert_allclose(rebuilt.affine.numpy(), affine, atol=1e-6)


def test_dict_version_keeps_keys_aligned_and_loader_flattens(tmp_path):
    write_nifti(tmp_path / "v.nii.gz", shape=(4, 5, 6), empty_slices=(2,))
    volume = _load(tmp_path / "v.nii.gz")["image"]
    label = MetaTensor(torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(1, 4, 5, 6), meta=dict(volume.meta))
    items = SliceVolumed(["image", "label"], axis=2)({"image": volume, "label": label, "id": 7})
    assert len(items) == 5 and all(it["id"] == 7 for it in items)
    for it in items:
        k = it["image"].meta["slice_index"]
        assert it["label"].meta["slice_index"] == k
        torch.testing.assert_close(it["label"].as_tensor(), label[..., k].as_tensor())
    ds = Dataset([{"image": str(tmp_path / "v.nii.gz")}], Compose([
        LoadImaged("image", image_only=True), EnsureChannelFirstd("image"), SliceVolumed("image", axis=2)]))
    batch = next(iter(DataLoader(ds, batch_size=1)))
    assert batch["image"].shape == (5, 1, 4, 5)


def test_slice_dataset_indexes_all_volumes(tmp_path):
    write_nifti(tmp_path / "a.nii.gz", shape=(4, 5, 6), empty_slices=(0,))
    write_nifti(tmp_path / "b.nii.gz", shape=(4, 5, 3), empty_slices=())
    ds = SliceDataset([{"image": str(tmp_path / "a.nii.gz")}, {"image": str(tmp_path / "b.nii.gz")}], axis=-1,
                      transform=lambda d: {**d, "t": 1}, cache=False)
    assert len(ds) == 5 + 3
    assert ds[5]["image"].meta["slice_index"] == 0 and ds[5]["t"] == 1


@pytest.mark.parametrize("case, match", [
    ("truncated", r"v\.nii\.gz: key 'image': expected a volume LoadImaged can read"),
    ("nan", r"v\.nii\.gz: key 'image': expected finite values, found 1 NaN/Inf"),
    ("missing", r"nothere\.nii\.gz: key 'image': expected a volume LoadImaged can read"),
])
def test_bad_files_name_file_and_key(tmp_path, case, match):
    import nibabel as nib

    path = tmp_path / "v.nii.gz"
    data, affine = write_nifti(path)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif case == "nan":
        data[1, 1, 1] = np.nan
        nib.save(nib.Nifti1Image(data, affine), str(path))
    elif case == "missing":
        path = tmp_path / "nothere.nii.gz"
    from rim_monai.data import DataFileError

    with pytest.raises(DataFileError, match=match):
        SliceDataset([{"image": str(path)}])


def test_bad_input():
    with pytest.raises(ValueError, match="axis"):
        SliceVolume(axis=3)
    with pytest.raises(ValueError, match=r"expected a channel-first volume \(C, X, Y, Z\)"):
        SliceVolume()(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="slices"):
        stack_slices([torch.zeros(1, 2, 2)])


def test_zoom_affine_keeps_voxel_centres():
    m = zoom_affine([2.0, 4.0], [0, 1]).numpy()
    np.testing.assert_allclose(m @ [0, 0, 0, 1], [0.5, 1.5, 0, 1])  # new voxel 0 = mean of old voxels 0..s-1
    np.testing.assert_allclose(m @ [1, 1, 0, 1], [2.5, 5.5, 0, 1])


def test_fit_to_grid_resamples_and_keeps_world_coordinates(tmp_path):
    import nibabel as nib

    volume = np.random.default_rng(0).normal(size=(64, 64, 3)).astype(np.float32)
    affine = np.array([[0.5, 0, 0, -10.0], [0, 0.7, 0, 4.0], [0, 0, 3.0, 1.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "v.nii.gz"))
    item = SliceDataset([{"image": str(tmp_path / "v.nii.gz")}], axis=-1)[1]
    out = FitToGridd("image", (32, 32), fine_factor=2)(item)
    block = volume[:, :, 1].reshape(32, 2, 32, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out["image"][0].numpy(), block, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["image_fine"][0], torch.from_numpy(volume[:, :, 1]))
    new = np.asarray(out["image"].meta["volume_affine"])
    # the centre of new voxel (0, 0, k) is the mean of the centres of old voxels (0..1, 0..1, k)
    np.testing.assert_allclose(new @ np.array([0, 0, 1, 1]), affine @ np.array([0.5, 0.5, 1, 1]))
    assert tuple(out["image"].meta["volume_shape"]) == (32, 32, 3)
    assert stack_slices([out["image"]]).shape == (1, 32, 32, 3)  # the resampled volume can be rebuilt
    same = FitToGridd("image", (64, 64))(item)
    assert same["image"] is item["image"] and "image_fine" not in same
    with pytest.raises(ValueError, match="image: expected a slice"):
        FitToGridd("image", (8, 8))({"image": torch.zeros(8, 8)})
    with pytest.raises(ValueError, match="meta: expected the slice geometry"):
        rescale_slice_meta({"affine": np.eye(4)}, (2.0, 2.0))

"""NIfTI writers: the reconstruction of a loaded volume keeps its affine and spacing; overwrite protection."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImage, LoadImaged

from rim_monai.data import SaveNifti, SaveNiftid, SliceVolume, stack_slices
from tests.data.conftest import write_nifti


def _load(path):
    return Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image")])({"image": str(path)})["image"]


def test_reconstructed_volume_keeps_affine_and_spacing(tmp_path):
    data, affine = write_nifti(tmp_path / "scan.nii.gz", shape=(6, 7, 5))
    volume = _load(tmp_path / "scan.nii.gz")
    recon = [MetaTensor(s * 2 + 1, meta=s.meta) for s in SliceVolume(axis=2)(volume)]  # a stand-in "network"
    SaveNiftid("pred", output_dir=tmp_path / "out")({"pred": stack_slices(recon, fill_value=1.0)})
    saved = nib.load(tmp_path / "out" / "scan_recon.nii.gz")
    np.testing.assert_allclose(saved.affine, affine, atol=1e-5)
    np.testing.assert_allclose(saved.header.get_zooms(), np.linalg.norm(affine[:3, :3], axis=0), rtol=1e-5)
    np.testing.assert_allclose(saved.get_fdata(), data * 2 + 1, rtol=1e-6)
    reloaded = LoadImage(image_only=True)(str(tmp_path / "out" / "scan_recon.nii.gz"))
    np.testing.assert_allclose(reloaded.affine.numpy(), volume.affine.numpy(), atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_single_slice_lands_at_its_world_position(tmp_path, axis):
    data, affine = write_nifti(tmp_path / "scan.nii.gz", shape=(6, 7, 5))
    slices = SliceVolume(axis=axis, skip_empty=False)(_load(tmp_path / "scan.nii.gz"))
    k = 3
    SaveNifti(tmp_path / "out")(slices[k])
    saved = nib.load(tmp_path / "out" / f"scan_recon_slice{k:03d}.nii.gz")
    np.testing.assert_allclose(saved.get_fdata(), np.take(data, k, axis=axis), rtol=1e-6)
    keep = [a for a in range(3) if a != axis]
    voxel = np.zeros(3)
    voxel[keep], voxel[axis] = (2, 1), k
    np.testing.assert_allclose(saved.affine @ [2, 1, 0, 1], affine @ [*voxel, 1], atol=1e-5)


def test_never_overwrites_unless_asked(tmp_path):
    write_nifti(tmp_path / "scan.nii.gz")
    volume = _load(tmp_path / "scan.nii.gz")
    saver = SaveNiftid("pred", output_dir=tmp_path / "out")
    saver({"pred": volume})
    target = tmp_path / "out" / "scan_recon.nii.gz"
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="scan_recon.nii.gz"):
        saver({"pred": volume * 5})
    assert target.read_bytes() == before
    SaveNiftid("pred", output_dir=tmp_path / "out", overwrite=True)({"pred": volume * 5})
    np.testing.assert_allclose(nib.load(target).get_fdata(), volume[0].numpy() * 5, rtol=1e-6)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan_recon.nii.gz"]  # no temporaries


def test_rejects_other_formats():
    with pytest.raises(ValueError, match="output_ext"):
        SaveNifti("out", output_ext=".png")

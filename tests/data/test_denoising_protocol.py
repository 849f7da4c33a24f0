"""A third modality in a few lines: Gaussian denoising on the shared protocol base (docs/bundles.md)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from rim_monai.data import DenoisingProtocol, Keys, reconstruction_dataset, training_dataset, validation_dataset
from rim_monai.operators import Identity


def _volume(path, shape=(20, 24, 4)):
    data = np.random.default_rng(0).random(shape).astype(np.float32) * 300
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), str(path))
    return path


def test_measurement_is_the_image_plus_seeded_white_noise():
    image = torch.rand(64, 64)
    y, A = DenoisingProtocol(sigma=0.1, seed=3)(image)
    assert isinstance(A, Identity) and A.domain_shape == (64, 64) and y.shape == (1, 1, 64, 64)
    noise = (y - image).flatten()
    assert abs(float(noise.std()) - 0.1) < 0.005 and abs(float(noise.mean())) < 0.005
    torch.testing.assert_close(DenoisingProtocol(sigma=0.1, seed=3)(image)[0], y)
    assert not torch.equal(DenoisingProtocol(sigma=0.1, seed=4)(image)[0], y)
    torch.testing.assert_close(A(image[None, None]), image[None, None])


def test_datasets_come_from_the_base(tmp_path):
    vol = _volume(tmp_path / "vol.nii.gz")
    protocol = DenoisingProtocol(sigma=0.05)
    item = reconstruction_dataset(protocol, dataset_dir=tmp_path)[1]
    target = item[Keys.TARGET]
    assert float(target.min()) >= 0.0 and float(target.max()) <= 1.0  # scaled to [0, 1] per volume
    assert 0.03 < float((item[Keys.MEASUREMENT] - target).std()) < 0.07
    assert target.meta["slice_index"] == 1  # slices keep their place in the volume for the writer
    train = training_dataset(protocol, files=[vol], patch_size=(16, 16))
    assert len(train) == 4 and train[0][Keys.MEASUREMENT].shape == (1, 16, 16)
    val = validation_dataset(protocol, files=[vol], slice_ranges=[[0, 2]])
    torch.testing.assert_close(val[1][Keys.MEASUREMENT], val[1][Keys.MEASUREMENT])
    batch = {Keys.MEASUREMENT: train[0][Keys.MEASUREMENT][None]}
    assert protocol.operator_for(batch).domain_shape == (16, 16)


def test_bad_sigma_is_named():
    with pytest.raises(ValueError, match="sigma"):
        DenoisingProtocol(sigma=-1.0)

"""The deprecated functional forms still give the protocols' datasets (with a DeprecationWarning)."""

from __future__ import annotations

import pytest
import torch

from rim_monai.data import (
    CTProtocol,
    ct_operator,
    ct_phantom_dataset,
    ct_reconstruction_dataset,
    ct_training_dataset,
    mri_reconstruction_dataset,
    mri_training_dataset,
)
from rim_monai.data.samples import make_mri_sample


def test_ct_forms_match_the_protocol():
    A = ct_operator(image_shape=(32, 32), num_angles=8)
    with pytest.warns(DeprecationWarning, match="CTProtocol"):
        old = ct_reconstruction_dataset(operator=A, phantoms=1, photons=1e5, seed=3)
    new = CTProtocol(A, photons=1e5, seed=3).reconstruction_dataset(phantoms=1)
    torch.testing.assert_close(old[0]["sinogram"], new[0]["sinogram"])
    with pytest.warns(DeprecationWarning):
        torch.testing.assert_close(ct_phantom_dataset(1, operator=A)[0]["sinogram"],
                                   CTProtocol(A).validation_dataset(1)[0]["sinogram"])
    with pytest.warns(DeprecationWarning):
        assert len(ct_training_dataset(3, operator=A)) == 3


def test_mri_forms_match_the_protocol(tmp_path):
    make_mri_sample(tmp_path / "a.h5", shape=(16, 16), coils=2, slices=1)
    with pytest.warns(DeprecationWarning, match="MRIProtocol"):
        assert mri_reconstruction_dataset(tmp_path, acceleration=4)[0]["kspace"].shape == (2, 16, 16)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="files"):
        mri_training_dataset([], augment=False)

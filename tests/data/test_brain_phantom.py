"""The procedural brain phantom: deterministic per seed, brain-like tissue composition, clear errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from rim_monai.data.brain_phantom import T1_INTENSITIES, brain_phantom
from rim_monai.data.samples import make_mri_sample


def test_same_seed_same_slice_other_seed_other_slice():
    a, b, c = brain_phantom((64, 80), seed=3), brain_phantom((64, 80), seed=3), brain_phantom((64, 80), seed=4)
    assert a.shape == (64, 80) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.01


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tissue_composition_is_brain_like(seed):
    image = brain_phantom((192, 192), seed=seed, oversample=1)
    y, x = np.mgrid[-1:1:192j, -1:1:192j]
    head, centre = image > 0.02, np.hypot(x, y) < 0.5
    white = image > 0.82
    grey = (image > 0.5) & (image < 0.8)
    # the head fills most of the field of view, with background around it
    assert 0.4 < head.mean() < 0.8 and not head[0].any() and not head[:, 0].any()
    # deep inside: mostly white matter, with grey nuclei and dark ventricles
    assert white[centre].mean() > 0.3 and grey[centre].mean() > 0.03 and (image[centre] < 0.3).mean() > 0.02
    # grey matter takes a real share of the head, and the cortex is folded: its boundary is far longer than that
    # of a smooth ring at 70 % of the radius (two circles, 4/pi for the pixel grid's L1 length)
    assert grey[head].mean() > 0.08
    edges = np.abs(np.diff(grey.astype(int), axis=0)).sum() + np.abs(np.diff(grey.astype(int), axis=1)).sum()
    assert edges > 1.3 * (4 / np.pi) * 2 * (2 * np.pi * 0.7 * 96)


@pytest.mark.parametrize(("shape", "oversample", "match"), [((4, 64), 2, "shape"), ((64,), 2, "shape"),
                                                               ((64, 64), 0, "oversample")])
def test_bad_arguments_name_the_argument(shape, oversample, match):
    with pytest.raises(ValueError, match=match):
        brain_phantom(shape, oversample=oversample)


def test_mri_sample_is_the_brain_phantom_in_fastmri_layout(tmp_path):
    path = make_mri_sample(tmp_path / "brain.h5", shape=(48, 40), coils=4, slices=2, snr_db=60.0)
    with h5py.File(path) as f:
        kspace, reference = f["kspace"][()], f["reconstruction_rss"][()]
    assert kspace.shape == (2, 4, 48, 40) and reference.shape == (2, 48, 40)
    for s in range(2):
        truth = brain_phantom((48, 40), seed=s)
        assert np.corrcoef(reference[s].ravel(), truth.ravel())[0, 1] > 0.99
    with pytest.raises(ValueError, match="phantom"):
        make_mri_sample(tmp_path / "x.h5", phantom="cat")

"""Physics-valid augmentations: seeded, shape-preserving, and applied before simulation."""

from __future__ import annotations

import pytest
import torch

from rim_monai.data import RandIntensityScaled, physics_augmentations


def _image():
    return torch.arange(36.0).reshape(1, 6, 6)


def test_each_output_is_a_flip_rotation_and_scale_of_the_input():
    aug = physics_augmentations(prob=0.5, scale_range=(0.5, 2.0))
    aug.set_random_state(seed=0)
    x = _image()
    candidates = []
    for k in range(4):
        r = torch.rot90(x, k, dims=(1, 2))
        candidates += [r, r.flip(1), r.flip(2), r.flip(1).flip(2)]
    seen_scale = set()
    for _ in range(20):
        y = torch.as_tensor(aug({"image": x})["image"])
        scale = float(y.abs().max() / x.max())
        assert 0.5 - 1e-6 <= scale <= 2.0 + 1e-6
        assert any(torch.allclose(y / scale, c, atol=1e-4) for c in candidates)
        seen_scale.add(round(scale, 3))
    assert len(seen_scale) > 2


def test_seeded_and_cropped():
    a = physics_augmentations(crop_size=(4, 4))
    b = physics_augmentations(crop_size=(4, 4))
    a.set_random_state(seed=5)
    b.set_random_state(seed=5)
    outs_a = [torch.as_tensor(a({"image": _image()})["image"]) for _ in range(3)]
    outs_b = [torch.as_tensor(b({"image": _image()})["image"]) for _ in range(3)]
    for u, v in zip(outs_a, outs_b):
        assert u.shape == (1, 4, 4)
        torch.testing.assert_close(u, v)


def test_intensity_scale_is_log_uniform_and_validated():
    t = RandIntensityScaled(scale_range=(0.25, 4.0), prob=1.0).set_random_state(seed=0)
    factors = torch.tensor([float(t({"image": torch.ones(1)})["image"]) for _ in range(2000)])
    assert abs(float(factors.log().mean())) < 0.08  # symmetric in log scale
    with pytest.raises(ValueError, match="scale_range"):
        RandIntensityScaled(scale_range=(0.0, 1.0))

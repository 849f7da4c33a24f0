"""Patches of grey images for the random-projection experiment: reading, synthetic images, grid sampling."""

import numpy as np
import pytest

from rim_monai.experiments.patches import PatchSampler, load_grey_images, synthetic_images


def test_patch_sampler_draws_grid_patches():
    widths = (44, 36)
    images = [np.arange(40 * 44, dtype=np.float32).reshape(40, 44), 10_000 + np.arange(36 * 36, dtype=np.float32).reshape(36, 36)]
    sampler = PatchSampler(images, patch=32, stride=4)
    assert sampler.grid_size == 3 * 4 + 2 * 2
    patches = sampler.sample(300, np.random.default_rng(0)).numpy()
    assert patches.shape == (300, 1, 32, 32)
    seen = set()
    for p in patches[:, 0]:
        i = int(p[0, 0] >= 10_000)  # the top-left value encodes the image and the position
        r, c = divmod(int(p[0, 0]) - 10_000 * i, widths[i])
        assert r % 4 == 0 and c % 4 == 0 and np.array_equal(p, images[i][r : r + 32, c : c + 32])
        seen.add((i, r, c))
    assert len(seen) == sampler.grid_size  # 300 draws from 16 grid patches reach all of them


def test_patch_sampler_rejects_small_images():
    with pytest.raises(ValueError, match="images"):
        PatchSampler([np.zeros((20, 40), np.float32)], patch=32)


def test_load_grey_images_bt601(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    (grey,) = load_grey_images(tmp_path)
    expected = (rgb / 255.0) @ np.array([0.298936, 0.587043, 0.114021])
    np.testing.assert_allclose(grey, expected, atol=1e-6)
    pil = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255.0  # PIL's integer BT.601
    np.testing.assert_allclose(grey, pil, atol=1.0 / 255)


def test_load_grey_images_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        load_grey_images(tmp_path / "nowhere")


def test_synthetic_images_are_smooth_grey_images_on_the_unit_interval():
    images = synthetic_images(3, (40, 48), seed=1)
    assert len(images) == 3 and all(im.shape == (40, 48) and im.dtype == np.float32 for im in images)
    assert all(0.0 <= im.min() and im.max() <= 1.0 for im in images)
    np.testing.assert_array_equal(images[0], synthetic_images(1, (40, 48), seed=1)[0])

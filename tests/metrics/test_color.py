"""rgb_to_y: MATLAB rgb2ycbcr luma on [0, 255], and border shaving."""

from __future__ import annotations

import pytest
import torch

from rim_monai.metrics import rgb_to_y, shave_border


@pytest.mark.parametrize(
    "rgb, y",
    [((0, 0, 0), 16.0), ((255, 255, 255), 235.0), ((255, 0, 0), 81.481), ((0, 255, 0), 144.553),
     ((0, 0, 255), 40.966), ((100, 150, 200), 16 + (65.481 * 100 + 128.553 * 150 + 24.966 * 200) / 255)],
)
def test_hand_computed(rgb, y):
    img = torch.tensor(rgb, dtype=torch.float64).reshape(1, 3, 1, 1)
    assert abs(float(rgb_to_y(img)) - y) < 1e-10


def test_matches_skimage_and_layouts():
    color = pytest.importorskip("skimage.color")
    img = torch.rand(2, 3, 8, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    ref = torch.from_numpy(color.rgb2ycbcr(img.permute(0, 2, 3, 1).numpy() / 255)[..., 0])
    torch.testing.assert_close(rgb_to_y(img)[:, 0], ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(rgb_to_y(img.permute(0, 2, 3, 1), channel_dim=-1)[..., 0], ref, rtol=0, atol=1e-10)
    assert rgb_to_y(img.float()).dtype == torch.float32


def test_uint8_quantize_like_matlab():
    img = torch.tensor([255, 0, 0], dtype=torch.uint8).reshape(3, 1, 1)  # 81.481 -> 81
    assert float(rgb_to_y(img, quantize=True)) == 81.0
    img = torch.tensor([0, 0, 255], dtype=torch.uint8).reshape(3, 1, 1)  # 40.966 -> 41
    assert float(rgb_to_y(img, quantize=True)) == 41.0


@pytest.mark.parametrize(
    "img, kwargs, name",
    [(torch.zeros(1, 4, 5, 5), {}, "img"), (torch.zeros(3, 5, 5, dtype=torch.complex64), {}, "img"),
     (torch.zeros(3, 5, 5), {"channel_dim": 3}, "channel_dim"), ("rgb", {}, "img")],
)
def test_bad_input(img, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        rgb_to_y(img, **kwargs)


def test_shave_border():
    x = torch.arange(36.0).reshape(1, 6, 6)
    torch.testing.assert_close(shave_border(x, 1), x[:, 1:-1, 1:-1])
    assert shave_border(x, 0) is x

"""ssim: agreement with scikit-image's structural_similarity (fastMRI's SSIM) on 2D batches and 3D volumes."""

from __future__ import annotations

import pytest
import torch

from rim_monai.metrics import ssim

skm = pytest.importorskip("skimage.metrics")
skd = pytest.importorskip("skimage.data")


def _rand(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _structured() -> torch.Tensor:
    """Two real photographs (scikit-image's bundled camera and coins), cropped to 96 x 96, on [0, 1]."""
    cam = torch.from_numpy(skd.camera()[100:196, 200:296].astype("float64")) / 255
    coins = torch.from_numpy(skd.coins()[50:146, 100:196].astype("float64")) / 255
    return torch.stack([cam, coins])


@pytest.mark.parametrize("kind", ["random", "structured"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_2d_batch_matches_skimage(kind, dtype):
    target = _rand((2, 40, 33), 1) if kind == "random" else _structured()
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    pred = (target + 0.1 * noise).clamp(0, 1)
    got = ssim(pred.to(dtype)[:, None], target.to(dtype)[:, None], reduction="none")
    for i in range(target.shape[0]):
        t, p = target[i].to(dtype).double().numpy(), pred[i].to(dtype).double().numpy()
        ref = skm.structural_similarity(t, p, data_range=t.max() - t.min(), win_size=7)
        assert abs(float(got[i]) - ref) < 1e-5


def test_volume_protocol_matches_fastmri():
    """fastMRI: mean over slices of structural_similarity(gt[s], pred[s], data_range=gt.max())."""
    gt = _rand((2, 4, 24, 20), 3)
    pred = gt + 0.2 * _rand((2, 4, 24, 20), 4)
    got = ssim(pred, gt, protocol="volume", reduction="none")
    for v in range(2):
        g, p = gt[v].numpy(), pred[v].numpy()
        ref = sum(skm.structural_similarity(g[s], p[s], data_range=g.max()) for s in range(4)) / 4
        assert abs(float(got[v]) - ref) < 1e-10


def test_channels_like_skimage_channel_axis_and_options():
    target = _rand((1, 3, 30, 30), 5) * 255
    pred = (target + 20 * _rand((1, 3, 30, 30), 6)).clamp(0, 255)
    ref = skm.structural_similarity(target[0].numpy(), pred[0].numpy(), data_range=255, channel_axis=0,
                                    win_size=11, K1=0.02, K2=0.05)
    got = ssim(pred, target, protocol="8bit", win_size=11, k1=0.02, k2=0.05)
    assert abs(float(got) - ref) < 1e-10
    shaved = ssim(pred, target, protocol="8bit", shave=4)
    ref_shaved = skm.structural_similarity(target[0, :, 4:-4, 4:-4].numpy(), pred[0, :, 4:-4, 4:-4].numpy(),
                                           data_range=255, channel_axis=0)
    assert abs(float(shaved) - ref_shaved) < 1e-10


def test_identical_and_inverted():
    x = _rand((3, 1, 16, 16), 7)
    torch.testing.assert_close(ssim(x, x, reduction="none"), torch.ones(3, dtype=torch.float64))
    assert float(ssim(1 - x, x)) < 0


@pytest.mark.parametrize(
    "kwargs, name",
    [({"win_size": 6}, "win_size"), ({"win_size": 17}, "win_size"), ({"k1": 0.0}, "k1"), ({"k2": -1.0}, "k2"),
     ({"protocol": "x"}, "protocol"), ({"reduction": "max"}, "reduction")],
)
def test_bad_arguments(kwargs, name):
    x = _rand((2, 16, 16), 8)
    with pytest.raises(ValueError, match=rf"^{name}:"):
        ssim(x, x, **kwargs)


def test_shape_mismatch_names_pred():
    with pytest.raises(ValueError, match=r"^pred:"):
        ssim(torch.rand(1, 16, 16), torch.rand(1, 16, 17))

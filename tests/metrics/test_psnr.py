"""psnr: hand-computed cases, scikit-image and fastMRI protocols, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rim_monai.metrics import psnr

skm = pytest.importorskip("skimage.metrics")


def _rand(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_known_mse():
    target = torch.zeros(2, 1, 10, 10, dtype=torch.float64)
    target[:, :, 0, 0] = 2.0  # max - min = 2
    pred = target + 0.2  # MSE 0.04 -> 10 log10(4 / 0.04) = 20 dB
    torch.testing.assert_close(psnr(pred, target, reduction="none"), torch.full((2,), 20.0, dtype=torch.float64))
    torch.testing.assert_close(psnr(pred, target, data_range=1.0), torch.tensor(10 * math.log10(1 / 0.04), dtype=torch.float64))
    assert psnr(target, target) == float("inf")


@pytest.mark.parametrize("shape", [(3, 1, 33, 40), (2, 24, 24), (2, 3, 16, 20)])
def test_per_image_matches_skimage(shape):
    target = _rand(shape, 1) * 3 - 1
    pred = target + 0.1 * torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got = psnr(pred, target, reduction="none")
    for i in range(shape[0]):
        t = target[i].numpy()
        ref = skm.peak_signal_noise_ratio(t, pred[i].numpy(), data_range=t.max() - t.min())
        assert abs(float(got[i]) - ref) < 1e-10
    assert abs(float(psnr(pred, target)) - float(got.mean())) < 1e-12


def test_volume_protocol_is_fastmri():
    """fastMRI: psnr(gt, pred, maxval=gt.max()) over the whole volume."""
    gt = _rand((2, 5, 16, 16), 3)
    pred = gt + 0.05 * _rand((2, 5, 16, 16), 4)
    got = psnr(pred, gt, protocol="volume", reduction="none")
    for v in range(2):
        ref = skm.peak_signal_noise_ratio(gt[v].numpy(), pred[v].numpy(), data_range=gt[v].numpy().max())
        assert abs(float(got[v]) - ref) < 1e-10


def test_8bit_and_shave():
    target = _rand((1, 1, 20, 20), 5) * 255
    pred = target.clone()
    pred[..., :2, :] += 50  # only the border differs
    assert psnr(pred, target, protocol="8bit", shave=2) == float("inf")
    pred[..., 5, 5] += 10.0  # one inner pixel, MSE over the 16 x 16 crop = 100 / 256
    expected = 10 * math.log10(255**2 / (100 / 256))
    assert abs(float(psnr(pred, target, protocol="8bit", shave=2)) - expected) < 1e-10


def test_uint8_and_single_image():
    target = (_rand((12, 12), 6) * 255).to(torch.uint8)
    pred = target.clone()
    pred[0, 0] = pred[0, 0] // 2
    ref = skm.peak_signal_noise_ratio(target.numpy(), pred.numpy(), data_range=255)
    assert abs(float(psnr(pred, target, protocol="8bit")) - ref) < 1e-10


def test_per_sample_data_range_override():
    target = _rand((2, 8, 8), 7)
    pred = target + 0.1
    got = psnr(pred, target, data_range=torch.tensor([1.0, 10.0]), reduction="none")
    np.testing.assert_allclose(got.numpy(), [20.0, 40.0], atol=1e-10)


@pytest.mark.parametrize(
    "pred, target, kwargs, name",
    [
        (torch.zeros(2, 8, 8), torch.zeros(2, 8, 9), {}, "pred"),
        (torch.zeros(8), torch.zeros(8), {}, "pred"),
        (torch.zeros(2, 8, 8), "target", {}, "target"),
        (torch.zeros(2, 8, 8, dtype=torch.complex64), torch.zeros(2, 8, 8), {}, "pred"),
        (torch.full((2, 8, 8), float("nan")), torch.zeros(2, 8, 8), {}, "pred"),
        (torch.zeros(2, 8, 8), torch.ones(2, 8, 8), {}, "target"),  # max - min = 0
        (torch.zeros(2, 8, 8), torch.rand(2, 8, 8), {"protocol": "slice"}, "protocol"),
        (torch.zeros(2, 8, 8), torch.rand(2, 8, 8), {"data_range": -1.0}, "data_range"),
        (torch.zeros(2, 8, 8), torch.rand(2, 8, 8), {"data_range": torch.ones(3)}, "data_range"),
        (torch.zeros(2, 8, 8), torch.rand(2, 8, 8), {"shave": 4}, "shave"),
        (torch.zeros(2, 8, 8), torch.rand(2, 8, 8), {"shave": -1}, "shave"),
        (torch.zeros(2, 8, 8), torch.rand(2, 8, 8), {"reduction": "sum"}, "reduction"),
    ],
)
def test_bad_input(pred, target, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        psnr(pred, target, **kwargs)

"""image_quality: the one PSNR / SSIM / NMSE path of magnitude images, and has_data_range."""

import pytest
import torch
from monai.data import MetaTensor

from rim_monai.metrics import has_data_range, image_quality, magnitude, nmse, psnr, ssim


def _pair(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(3, 1, 16, 16, generator=g)
    pred = ref + 0.05 * torch.randn(3, 1, 16, 16, generator=g)
    return pred.to(dtype), ref


@pytest.mark.parametrize("protocol", ["per_image", "volume", "8bit"])
def test_equals_the_metric_functions(protocol):
    pred, ref = _pair()
    values = image_quality(pred, ref, protocol)
    assert list(values) == ["psnr", "ssim", "nmse"]
    assert torch.equal(values["psnr"], psnr(pred, ref, protocol=protocol))
    assert torch.equal(values["ssim"], ssim(pred, ref, protocol=protocol))
    assert torch.equal(values["nmse"], nmse(pred, ref))
    per_sample = image_quality(pred, ref, protocol, ("ssim",), reduction="none")
    assert per_sample["ssim"].shape == (3,)


def test_complex_and_meta_tensors_are_scored_by_magnitude():
    pred, ref = _pair()
    phase = torch.exp(1j * torch.rand(3, 1, 16, 16))
    values = image_quality(MetaTensor(pred) * phase, ref * phase)
    expected = image_quality(pred.abs(), ref)  # the magnitude of a real image is its absolute value
    for name in values:
        torch.testing.assert_close(values[name], expected[name])
    assert not isinstance(magnitude(MetaTensor(pred)), MetaTensor)


def test_bad_metric_names_and_shapes():
    pred, ref = _pair()
    with pytest.raises(ValueError, match="metrics"):
        image_quality(pred, ref, metrics=("mae",))
    with pytest.raises(ValueError, match="pred"):
        image_quality(pred[:2], ref)
    with pytest.raises(ValueError, match="image"):
        magnitude([1.0])


def test_has_data_range_follows_the_protocol():
    ref = torch.stack([torch.zeros(1, 4, 4), torch.full((1, 4, 4), 2.0), torch.eye(4)[None]])
    assert has_data_range(ref, "per_image").tolist() == [False, False, True]
    assert has_data_range(ref, "volume").tolist() == [False, True, True]
    assert has_data_range(ref, "8bit").tolist() == [True, True, True]
    with pytest.raises(ValueError, match="protocol"):
        has_data_range(ref, "db")

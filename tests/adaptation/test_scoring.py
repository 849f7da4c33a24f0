"""reference_quality: the PSNR/SSIM an adaptation report states, through rim_monai.metrics.image_quality."""

import pytest
import torch

from rim_monai.adaptation import reference_quality
from rim_monai.metrics import psnr, ssim


def test_fastmri_volume_protocol_crops_reconstructions_to_the_references():
    """Under "volume" a larger reconstruction is centre-cropped to the reference (fastMRI); "per_image" refuses it."""
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 1, 8, 6, generator=g)
    pred = torch.zeros(2, 1, 12, 10)
    pred[..., 2:10, 2:8] = ref  # the reference is the centre crop (start (12 - 8) // 2, (10 - 6) // 2)
    psnr_value, _, described = reference_quality(pred, ref, "volume")
    assert psnr_value > 100 and "centre-cropped" in described
    with pytest.raises(ValueError, match="references"):
        reference_quality(pred, ref, "per_image")
    with pytest.raises(ValueError, match="references"):
        reference_quality(ref, pred, "volume")  # a reference larger than the reconstruction is an error


@pytest.mark.parametrize("protocol", ["per_image", "volume"])
def test_numbers_are_the_metrics_of_the_magnitudes(protocol):
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(3, 1, 12, 12, generator=g)
    pred = (ref + 0.05 * torch.randn(3, 1, 12, 12, generator=g)) * torch.exp(1j * torch.rand(3, 1, 12, 12))
    psnr_value, ssim_value, described = reference_quality(pred, ref, protocol)
    assert psnr_value == float(psnr(pred.abs().double(), ref.double(), protocol=protocol))
    assert ssim_value == float(ssim(pred.abs().double(), ref.double(), protocol=protocol))
    assert repr(protocol) in described and "left out" not in described


def test_samples_without_a_data_range_are_left_out_and_small_images_have_no_ssim():
    ref = torch.rand(3, 1, 5, 5)
    ref[1] = 0.0
    psnr_value, ssim_value, described = reference_quality(ref + 0.01, ref)
    assert psnr_value == float(psnr(ref[[0, 2]] + 0.01, ref[[0, 2]]))
    assert ssim_value is None  # 5x5 images are smaller than the 7x7 window
    assert "1 reference sample(s) without a data range left out" in described
    assert reference_quality(ref[1:2], ref[1:2])[:2] == (None, None)

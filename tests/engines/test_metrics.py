import pytest
import torch

from rim_monai.engines import ImageQualityMetric
from rim_monai.metrics import psnr, ssim


@pytest.mark.parametrize("name, fn", [("psnr", psnr), ("ssim", ssim)])
def test_cumulative_metric_matches_the_function(name, fn):
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(4, 1, 16, 16, generator=g)
    pred = ref + 0.05 * torch.randn(4, 1, 16, 16, generator=g)
    metric = ImageQualityMetric(name)
    metric(y_pred=pred[:2], y=ref[:2])
    metric(y_pred=pred[2:], y=ref[2:])
    torch.testing.assert_close(metric.aggregate().double(), fn(pred, ref).double(), rtol=1e-5, atol=1e-6)


def test_complex_predictions_are_scored_on_magnitude():
    ref = torch.rand(2, 1, 8, 8)
    metric = ImageQualityMetric("nmse")
    metric(y_pred=ref * torch.exp(1j * torch.rand(2, 1, 8, 8)), y=ref)
    assert float(metric.aggregate()) < 1e-10


def test_bad_metric_name():
    with pytest.raises(ValueError, match="metric"):
        ImageQualityMetric("mae")

"""Image-quality metrics with stated protocols: PSNR, SSIM, NMSE (see ``docs/metrics.md``)."""

from rim_monai.metrics.color import rgb_to_y
from rim_monai.metrics.nmse import nmse
from rim_monai.metrics.psnr import psnr
from rim_monai.metrics.quality import QUALITY_METRICS, image_quality, magnitude
from rim_monai.metrics.ssim import ssim, ssim_map
from rim_monai.metrics.utils import PROTOCOLS, data_range_for, has_data_range, shave_border

# -- further metric modules register their public names below (one import line each) --

__all__ = [
    "rgb_to_y",
    "nmse",
    "psnr",
    "ssim",
    "ssim_map",
    "image_quality",
    "magnitude",
    "QUALITY_METRICS",
    "PROTOCOLS",
    "data_range_for",
    "has_data_range",
    "shave_border",
]

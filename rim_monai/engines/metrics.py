"""Reconstruction metrics as MONAI cumulative metrics, so ``IgniteMetricHandler`` can make them key metrics."""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric

from rim_monai.metrics import QUALITY_METRICS, image_quality

__all__ = ["ImageQualityMetric"]


class ImageQualityMetric(CumulativeIterationMetric):
    """PSNR, SSIM or NMSE of (magnitude) reconstructions, accumulated over an epoch.

    The values are :func:`rim_monai.metrics.image_quality` of each sample (complex images, MRI, are scored on their
    magnitude). One value per sample is buffered; ``aggregate`` returns the
    mean over all samples seen (across processes when distributed).

    Args:
        metric: ``"psnr"``, ``"ssim"`` or ``"nmse"`` (from :mod:`rim_monai.metrics`).
        protocol: data-range protocol of PSNR/SSIM, ``"per_image"`` (max − min of each reference) by default.

    Example:
        >>> m = ImageQualityMetric("psnr")
        >>> _ = m(y_pred=torch.zeros(2, 1, 8, 8), y=torch.ones(2, 1, 8, 8).cumsum(-1))
        >>> float(m.aggregate()) > 0
        True
    """

    def __init__(self, metric: str = "psnr", protocol: str = "per_image") -> None:
        super().__init__()
        if metric not in QUALITY_METRICS:
            raise ValueError(f"metric: expected one of {sorted(QUALITY_METRICS)}, got '{metric}'.")
        self.metric, self.protocol = metric, protocol

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("y: a reference image is needed to score the reconstruction, got None.")
        values = image_quality(y_pred, y, self.protocol, (self.metric,), reduction="none")
        return values[self.metric][:, None]

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("no values to aggregate: run the metric on at least one batch first.")
        return data.float().mean()

r"""A third modality on the shared protocol base: Gaussian denoising, :math:`y = x + \sigma n`, :math:`A = I`.

The whole modality is the :class:`DenoisingProtocol` below: a simulation made of MONAI transforms
(:class:`~monai.transforms.CopyItemsd` keeps the clean image as the reference,
:class:`~monai.transforms.RandGaussianNoised` adds white noise of standard deviation ``sigma`` to the measurement)
and the operator of a batch (:class:`~rim_monai.operators.Identity`). The folder scan, the NIfTI / DICOM readers,
the seeded pipelines and the training and validation datasets come from
:class:`~rim_monai.data.protocol.AcquisitionProtocol` (see ``docs/bundles.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from monai.transforms import Compose, CopyItemsd, RandGaussianNoised, ScaleIntensityRangePercentilesd

from rim_monai.data.keys import Keys
from rim_monai.data.protocol import AcquisitionProtocol
from rim_monai.operators import Identity

__all__ = ["DenoisingProtocol"]


class DenoisingProtocol(AcquisitionProtocol):
    r"""Additive white Gaussian noise: ``{"image": x}`` -> ``{"measurement": x + sigma n, "target": x}``, :math:`A = I`.

    Scans are read as magnitude images scaled to [0, 1] by their volume's 0.5th and 99.5th percentiles (clipped), so
    ``sigma`` is on the [0, 1] scale (the RIM paper's :math:`\sigma` = 15, 25, 50 on [0, 255] are 15 / 255 ...).

    Args:
        sigma: noise standard deviation.
        seed: seed of the noise (``protocol(image)`` and the reconstruction datasets).

    Raises:
        ValueError: a negative ``sigma``.

    Example:
        >>> y, A = DenoisingProtocol(sigma=0.1, seed=0)(torch.zeros(16, 16))
        >>> y.shape, A.domain_shape, round(float(y.std()), 1)
        (torch.Size([1, 1, 16, 16]), (16, 16), 0.1)
    """

    measurement_key: ClassVar[str] = Keys.MEASUREMENT

    def __init__(self, sigma: float = 25.0 / 255.0, seed: int = 0) -> None:
        super().__init__(seed)
        if not sigma >= 0:
            raise ValueError(f"sigma: expected a noise standard deviation >= 0, got {sigma}.")
        self.sigma = float(sigma)

    def simulation(self) -> Compose:
        """Copy the image to ``"target"`` and ``"measurement"``, then add noise to the measurement."""
        return Compose([
            CopyItemsd(Keys.IMAGE, times=2, names=[Keys.TARGET, Keys.MEASUREMENT]),
            RandGaussianNoised(Keys.MEASUREMENT, prob=1.0, std=self.sigma, sample_std=False),
        ])

    def operator_for(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> Identity:
        """The identity on the images of the batch."""
        return Identity(tuple(batch[Keys.MEASUREMENT].shape[-2:])).to(device or "cpu")

    def intensity(self) -> list[Callable]:
        """Scale each volume (or DICOM slice) to [0, 1] by its 0.5th and 99.5th percentiles, clipped."""
        return [ScaleIntensityRangePercentilesd(Keys.IMAGE, lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)]

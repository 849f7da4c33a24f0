"""Coil sensitivities for measured multi-coil k-space, as a dictionary transform."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.transforms import Transform

from rim_monai.data.file_utils import item_kspace
from rim_monai.data.keys import Keys
from rim_monai.operators import estimate_sensitivities_or_none

__all__ = ["EstimateSensitivitiesd"]


class EstimateSensitivitiesd(Transform):
    """Add ``d[sens_key]`` = ``rim_monai.operators.estimate_sensitivities_or_none(d[kspace_key], **kwargs)``: the
    estimated maps (for single-coil k-space the phase of the low-resolution image), low-resolution maps where ESPIRiT
    lacks calibration lines.

    Measured data (fastMRI, BART) come without coil maps; this estimates them from the fully sampled k-space centre
    so that ``MaskedFourier(batch["mask"], batch["sens"])`` can be built for the batch.

    Args:
        kspace_key: k-space entry ``(coils, H, W)`` complex.
        sens_key: output entry ``(coils, H, W)`` complex64.
        kwargs: passed on (``method="espirit"``, ``calib_width``...).

    Raises:
        ValueError: k-space missing or not complex ``(coils, H, W)``, or without a calibration region.
    """

    def __init__(self, kspace_key: str = Keys.KSPACE, sens_key: str = Keys.SENS, **kwargs: Any) -> None:
        self.kspace_key, self.sens_key, self.kwargs = kspace_key, sens_key, kwargs

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        kspace = item_kspace(d, self.kspace_key)
        sens = estimate_sensitivities_or_none(kspace, **self.kwargs)
        if sens is None:
            raise ValueError(f"{self.kspace_key}: no fully sampled calibration region to estimate coil maps from.")
        d[self.sens_key] = sens.to(torch.complex64)
        return d

"""Retrospective undersampling of measured k-space, as a dictionary transform.

Fully sampled scans (a fastMRI file's ``kspace`` with an all-ones mask, a raw Siemens/BART acquisition) are
undersampled the way the bundles' protocol says; scans that are already undersampled are passed through untouched.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.transforms import MapTransform

from rim_monai.operators import center_fraction_for, equispaced_mask, ifft2c, poisson_disc_mask, random_mask, rss

__all__ = ["UndersampleKSpaced", "MASK_FUNCTIONS"]

MASK_FUNCTIONS = {"random": random_mask, "equispaced": equispaced_mask, "poisson_disc": poisson_disc_mask}


class UndersampleKSpaced(MapTransform):
    """Apply a sampling mask to fully sampled k-space; leave undersampled k-space as it is.

    The k-space counts as fully sampled when ``d[mask_key]`` is absent or has no zero. The mask is then drawn with
    ``mask_func`` at ``acceleration`` (centre fraction from :func:`~rim_monai.operators.center_fraction_for` unless
    given) and seeded by ``seed`` and the file name, so every slice of a volume shares one mask (as in a real 2D
    Cartesian acquisition) and a rerun reproduces it.

    Args:
        kspace_key: k-space ``(coils, H, W)`` complex.
        mask_key: mask ``(1, H, W)`` (written when the k-space is undersampled here).
        acceleration: undersampling factor (4 or 8 in the fastMRI protocol).
        mask_func: ``"random"``, ``"equispaced"`` or ``"poisson_disc"``.
        center_fraction: fully sampled centre fraction (default 0.08 at 4x, 0.04 at 8x); for ``"poisson_disc"`` the
            calibration box spans this fraction of each axis (at least 4 samples).
        seed: base seed.
        filename_key: key whose value seeds the mask together with ``seed``.
        reference_key: when the k-space is fully sampled and the dict has no reference yet, the root-sum-of-squares
            image of the full k-space is stored here (``(1, H, W)`` float32) before undersampling; ``None``: never.

    Raises:
        ValueError: missing k-space, a k-space that is not complex ``(coils, H, W)``, an unknown ``mask_func``.

    Example:
        >>> t = UndersampleKSpaced(acceleration=4)
        >>> out = t({"kspace": torch.ones(2, 16, 16, dtype=torch.complex64)})
        >>> out["mask"].shape, bool((out["kspace"][:, :, out["mask"][0, 0] == 0] == 0).all())
        (torch.Size([1, 16, 16]), True)
    """

    def __init__(
        self,
        kspace_key: str = "kspace",
        mask_key: str = "mask",
        acceleration: float = 4.0,
        mask_func: str = "random",
        center_fraction: float | None = None,
        seed: int = 0,
        filename_key: str = "filename",
        reference_key: str | None = "target",
    ) -> None:
        super().__init__(kspace_key)
        if mask_func not in MASK_FUNCTIONS:
            raise ValueError(f"mask_func: expected one of {sorted(MASK_FUNCTIONS)}, got '{mask_func}'.")
        if acceleration < 1:
            raise ValueError(f"acceleration: expected a value >= 1, got {acceleration}.")
        self.kspace_key, self.mask_key = kspace_key, mask_key
        self.acceleration, self.mask_func = float(acceleration), mask_func
        self.center_fraction, self.seed, self.filename_key = center_fraction, int(seed), filename_key
        self.reference_key = reference_key

    def make_mask(self, shape: tuple[int, int], name: str = "") -> torch.Tensor:
        """The ``(H, W)`` mask this transform applies to a scan called ``name``."""
        seed = (self.seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)
        cf = self.center_fraction if self.center_fraction is not None else center_fraction_for(self.acceleration)
        if self.mask_func == "poisson_disc":  # a calibration box of the centre fraction on each axis
            calib = tuple(max(4, round(n * cf)) for n in shape)
            return poisson_disc_mask(shape, self.acceleration, calib=calib, seed=seed)
        return MASK_FUNCTIONS[self.mask_func](shape, self.acceleration, cf, seed=seed)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.kspace_key not in d:
            raise ValueError(f"data: expected k-space under key '{self.kspace_key}', got keys {sorted(map(str, d))}.")
        kspace = torch.as_tensor(d[self.kspace_key])
        if kspace.ndim != 3 or not kspace.is_complex():
            raise ValueError(
                f"{self.kspace_key}: expected complex (coils, H, W), got shape {tuple(kspace.shape)} {kspace.dtype}."
            )
        mask = d.get(self.mask_key)
        if mask is not None and bool((torch.as_tensor(mask) == 0).any()):
            return d  # already undersampled: keep the acquisition's own mask
        if self.reference_key is not None and d.get(self.reference_key) is None:
            d[self.reference_key] = rss(ifft2c(kspace), dim=0)[None].to(torch.float32)
        name = str(d.get(self.filename_key, ""))
        new_mask = self.make_mask(tuple(kspace.shape[-2:]), name).to(torch.float32)
        d[self.mask_key] = new_mask[None]
        d[self.kspace_key] = kspace * new_mask.to(kspace.dtype)
        return d

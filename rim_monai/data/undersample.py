"""Retrospective undersampling of measured k-space, as a dictionary transform.

Fully sampled scans (a fastMRI file's ``kspace`` with an all-ones mask, a raw Siemens/BART acquisition) are
undersampled the way the bundles' protocol says; scans that are already undersampled are passed through untouched.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.transforms import MapTransform

from rim_monai.data.file_utils import item_kspace
from rim_monai.data.keys import Keys
from rim_monai.data.seeding import item_seed
from rim_monai.operators import MASK_FUNCTIONS, ifft2c, mask_function, rss

__all__ = ["UndersampleKSpaced"]


class UndersampleKSpaced(MapTransform):
    """Apply a sampling mask to fully sampled k-space; leave undersampled k-space as it is.

    The k-space counts as fully sampled when ``d[mask_key]`` is absent or has no zero. The mask is then drawn with
    ``mask_func`` of :data:`~rim_monai.operators.MASK_FUNCTIONS` at ``acceleration`` (centre fraction from
    :func:`~rim_monai.operators.center_fraction_for` unless given) and seeded with
    :func:`~rim_monai.data.seeding.item_seed` ``(seed, file name)``, so every slice of a volume shares one mask (as in
    a real 2D Cartesian acquisition) and a rerun reproduces it.

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
        kspace_key: str = Keys.KSPACE,
        mask_key: str = Keys.MASK,
        acceleration: float = 4.0,
        mask_func: str = "random",
        center_fraction: float | None = None,
        seed: int = 0,
        filename_key: str = Keys.FILENAME,
        reference_key: str | None = Keys.TARGET,
    ) -> None:
        super().__init__(kspace_key)
        if not isinstance(mask_func, str) or mask_func not in MASK_FUNCTIONS:
            raise ValueError(f"mask_func: expected one of {sorted(MASK_FUNCTIONS)}, got {mask_func!r}.")
        if acceleration < 1:
            raise ValueError(f"acceleration: expected a value >= 1, got {acceleration}.")
        self.kspace_key, self.mask_key = kspace_key, mask_key
        self.acceleration, self.mask_func = float(acceleration), mask_func
        self.center_fraction, self.seed, self.filename_key = center_fraction, int(seed), filename_key
        self.reference_key = reference_key

    def make_mask(self, shape: tuple[int, int], name: str = "") -> torch.Tensor:
        """The ``(H, W)`` mask this transform applies to a scan called ``name``."""
        make = mask_function(self.mask_func)
        return make(shape, self.acceleration, self.center_fraction, seed=item_seed(self.seed, name))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        kspace = item_kspace(d, self.kspace_key)
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

"""Training augmentations that keep the physics valid: applied to the *image* before a measurement is simulated.

Flips, 90-degree rotations, crops and a global intensity scale of the reference image produce another plausible
image; simulating the measurement afterwards (``SimulateKSpaced`` / ``SimulateSinogramd``) keeps the pair consistent
with the forward model. Augmenting a measured k-space or sinogram instead would not (a rotated sinogram is not the
sinogram of the rotated image for a limited or offset arc; a flipped k-space conjugates the phase).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    MapTransform,
    RandFlipd,
    Randomizable,
    RandRotate90d,
    RandSpatialCropd,
)

from rim_monai.data.keys import Keys

__all__ = ["RandIntensityScaled", "physics_augmentations"]


class RandIntensityScaled(Randomizable, MapTransform):
    """Multiply ``keys`` by one factor drawn log-uniformly from ``scale_range`` (with probability ``prob``).

    Log-uniform, so halving and doubling are equally likely; one factor for all keys of a sample.

    Args:
        keys: entries to scale (default ``"image"``).
        scale_range: ``(low, high)`` with ``0 < low <= high``.
        prob: probability of scaling a sample.
    """

    def __init__(
        self, keys: KeysCollection = Keys.IMAGE, scale_range: Sequence[float] = (0.5, 2.0), prob: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high:
            raise ValueError(f"scale_range: expected 0 < low <= high, got {tuple(scale_range)}.")
        self.low, self.high, self.prob = low, high, prob
        self._factor = 1.0

    def randomize(self, data: Any = None) -> None:
        apply = self.R.rand() < self.prob
        self._factor = float(self.low * (self.high / self.low) ** self.R.rand()) if apply else 1.0

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            d[key] = d[key] * self._factor
        return d


def physics_augmentations(
    keys: KeysCollection = Keys.IMAGE,
    prob: float = 0.5,
    flips: bool = True,
    rot90: bool = True,
    crop_size: Sequence[int] | None = None,
    scale_range: Sequence[float] | None = (0.5, 2.0),
) -> Compose:
    """A seeded ``Compose`` of flips (both axes), 90-degree rotations, a random crop and an intensity scale.

    Put it before the simulator: ``Compose([physics_augmentations(), SimulateKSpaced(...)])``. ``set_random_state``
    on the outer ``Compose`` seeds every step. 90-degree rotations of a non-square image swap its height and width,
    so they are only enabled for square images or together with a square ``crop_size``.

    Args:
        keys: image entries to augment together (default ``"image"``; add ``"image_fine"`` for supersampled phantoms
            only when no crop is used, since the crop would differ between grids).
        prob: probability of each flip / rotation / scale.
        flips, rot90: enable them.
        crop_size: ``(h, w)`` random crop (``None``: no crop).
        scale_range: log-uniform intensity scale range (``None``: no scaling).

    Example:
        >>> aug = physics_augmentations(crop_size=(32, 32)); aug.set_random_state(seed=0)  # doctest: +ELLIPSIS
        <...Compose object at ...>
        >>> aug({"image": torch.rand(1, 48, 48)})["image"].shape
        torch.Size([1, 32, 32])
    """
    transforms = []
    if crop_size is not None:
        transforms.append(RandSpatialCropd(keys, roi_size=tuple(crop_size), random_size=False))
    if flips:
        transforms += [RandFlipd(keys, prob=prob, spatial_axis=0), RandFlipd(keys, prob=prob, spatial_axis=1)]
    if rot90:
        transforms.append(RandRotate90d(keys, prob=prob, max_k=3, spatial_axes=(0, 1)))
    if scale_range is not None:
        transforms.append(RandIntensityScaled(keys, scale_range, prob))
    return Compose(transforms)

r"""Invertible intensity transforms for scans: MRI magnitude percentile scaling and CT Hounsfield units.

- :class:`PercentileScale` maps the ``lower`` and ``upper`` percentiles of a magnitude image to 0 and 1:
  :math:`x' = (x - p_l) / (p_u - p_l)`; the two percentiles are recorded in the MetaTensor so the map can be undone.
- :class:`HUToAttenuation` converts Hounsfield units to linear attenuation,
  :math:`\mu = \mu_\text{water} (1 + \text{HU} / 1000)`, and :class:`AttenuationToHU` is its inverse,
  :math:`\text{HU} = 1000 (\mu - \mu_\text{water}) / \mu_\text{water}`.

Each comes as an array transform and a dictionary twin (``...d``) following MONAI's conventions; all are
:class:`monai.transforms.InvertibleTransform`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, Transform
from monai.utils import convert_to_tensor

from rim_monai.data.keys import Keys

__all__ = [
    "MU_WATER",
    "PercentileScale",
    "PercentileScaled",
    "HUToAttenuation",
    "HUToAttenuationd",
    "AttenuationToHU",
    "AttenuationToHUd",
]

MU_WATER = 0.02
"""Default linear attenuation of water, per mm (about 0.0206 mm^-1 at 60 keV, the value LoDoPaB-CT uses)."""


class PercentileScale(InvertibleTransform, Transform):
    r"""Scale a (magnitude) image so its ``lower`` / ``upper`` percentiles map to 0 / 1.

    :math:`x' = (x - p_l) / (p_u - p_l)`, computed on ``|x|`` percentiles over the whole image (all channels).
    Complex input is scaled by :math:`1 / (p_u - p_l)` only when ``lower`` is ``None`` (no shift, phase kept).

    Args:
        lower: lower percentile in [0, 100], or ``None`` for no shift (:math:`p_l = 0`, the usual choice for MRI
            magnitude, which keeps zero at zero and makes the map a pure scaling).
        upper: upper percentile in (0, 100].
        clip: clip the output to [0, 1] (then the inverse is exact only inside the range).

    Example:
        >>> t = PercentileScale(upper=99.0)
        >>> x = MetaTensor(torch.rand(1, 8, 8) * 500)
        >>> torch.allclose(t.inverse(t(x)), x, rtol=1e-5)
        True
    """

    def __init__(self, lower: float | None = None, upper: float = 99.5, clip: bool = False) -> None:
        if lower is not None and not 0.0 <= lower < upper:
            raise ValueError(f"lower: expected a percentile in [0, upper={upper}), got {lower}.")
        if not 0.0 < upper <= 100.0:
            raise ValueError(f"upper: expected a percentile in (0, 100], got {upper}.")
        self.lower, self.upper, self.clip = lower, upper, clip

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=True)
        magnitude = img.abs().reshape(-1).double()
        if self.lower is not None and img.is_complex():
            raise ValueError("img: a percentile shift (lower is not None) needs a real image, got a complex one.")
        lo = float(torch.quantile(magnitude, self.lower / 100.0)) if self.lower is not None else 0.0
        hi = float(torch.quantile(magnitude, self.upper / 100.0))
        if hi <= lo:
            hi = lo + 1.0  # a constant image: shift only
        out = (img - lo) / (hi - lo)
        if self.clip:
            out = out.clamp(0.0, 1.0)
        if isinstance(out, MetaTensor):
            self.push_transform(out, extra_info={"lo": lo, "hi": hi})
        return out

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Undo the scaling using the percentiles recorded in ``data.applied_operations``."""
        info = self.pop_transform(data)["extra_info"]
        return data * (info["hi"] - info["lo"]) + info["lo"]


class _Affine(InvertibleTransform, Transform):
    """``x -> a x + b`` with recorded inverse; base of the HU transforms."""

    def __init__(self, scale: float, offset: float, clip_min: float | None) -> None:
        self.scale, self.offset, self.clip_min = float(scale), float(offset), clip_min

    def __call__(self, img: torch.Tensor | np.ndarray) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=True)
        if not img.is_floating_point():
            img = img.float()
        out = img * self.scale + self.offset
        if self.clip_min is not None:
            out = out.clamp_min(self.clip_min)
        if isinstance(out, MetaTensor):
            self.push_transform(out)
        return out

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Apply the inverse affine map (values clipped on the way in stay clipped).

        The map is stateless, so any instance with the same parameters may invert it (the trace is popped unchecked).
        """
        if isinstance(data, MetaTensor) and data.applied_operations:
            self.pop_transform(data, check=False)
        return (data - self.offset) / self.scale


class HUToAttenuation(_Affine):
    r"""Hounsfield units to linear attenuation: :math:`\mu = \mu_\text{water} (1 + \text{HU}/1000)`.

    Args:
        mu_water: attenuation of water in the unit wanted for :math:`\mu` (default :data:`MU_WATER` per mm).
        clip_negative: clamp :math:`\mu` at 0 (air is -1000 HU; scanners pad outside the field of view with
            -2048 or -3024 HU, which has no physical attenuation). The inverse is exact for HU >= -1000.

    Example:
        >>> HUToAttenuation(mu_water=0.02)(torch.tensor([[-1000.0, 0.0, 1000.0]])).tolist()
        [[0.0, 0.019999999552965164, 0.03999999910593033]]
    """

    def __init__(self, mu_water: float = MU_WATER, clip_negative: bool = True) -> None:
        if mu_water <= 0:
            raise ValueError(f"mu_water: expected a positive attenuation, got {mu_water}.")
        self.mu_water = float(mu_water)
        super().__init__(mu_water / 1000.0, mu_water, 0.0 if clip_negative else None)


class AttenuationToHU(_Affine):
    r"""Linear attenuation to Hounsfield units: :math:`\text{HU} = 1000 (\mu - \mu_\text{water}) / \mu_\text{water}`.

    Args:
        mu_water: attenuation of water in the unit of the input.

    Example:
        >>> AttenuationToHU(mu_water=0.02)(torch.tensor([[0.0, 0.04]])).tolist()
        [[-1000.0, 1000.0]]
    """

    def __init__(self, mu_water: float = MU_WATER) -> None:
        if mu_water <= 0:
            raise ValueError(f"mu_water: expected a positive attenuation, got {mu_water}.")
        self.mu_water = float(mu_water)
        super().__init__(1000.0 / mu_water, -1000.0, None)


class _Dict(MapTransform, InvertibleTransform):
    """Dictionary wrapper applying one invertible array transform to every key (entries that are ``None``, such as
    the reference of a scan without one, are passed through)."""

    def __init__(self, keys: KeysCollection, transform: InvertibleTransform, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = transform

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            if d[key] is not None:
                d[key] = self.transform(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            if d[key] is not None:
                d[key] = self.transform.inverse(d[key])
        return d


class PercentileScaled(_Dict):
    """Dictionary version of :class:`PercentileScale` (``keys`` default ``"image"``)."""

    def __init__(
        self,
        keys: KeysCollection = Keys.IMAGE,
        lower: float | None = None,
        upper: float = 99.5,
        clip: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, PercentileScale(lower, upper, clip), allow_missing_keys)


class HUToAttenuationd(_Dict):
    """Dictionary version of :class:`HUToAttenuation` (``keys`` default ``"image"``)."""

    def __init__(
        self, keys: KeysCollection = Keys.IMAGE, mu_water: float = MU_WATER, clip_negative: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, HUToAttenuation(mu_water, clip_negative), allow_missing_keys)


class AttenuationToHUd(_Dict):
    """Dictionary version of :class:`AttenuationToHU` (``keys`` default ``"image"``)."""

    def __init__(self, keys: KeysCollection = Keys.IMAGE, mu_water: float = MU_WATER, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, AttenuationToHU(mu_water), allow_missing_keys)

r"""A procedural T1-weighted axial brain slice: the MRI bundle's shipped input, since no real scan may be shipped.

The phantom is built from tissue label maps on a grid ``oversample`` times finer than the output, then averaged
down, so every boundary carries partial-volume mixing as in an acquired image:

- **head**: an ellipse whose radius varies smoothly with angle, :math:`R(\theta) = R_0 (1 + \sum_k a_k
  \cos(k\theta + \varphi_k))`; the normalised radius :math:`\rho = r / R(\theta)` places the shells below.
- **scalp** (fat, bright), **skull** (dark), **outer CSF**: shells in :math:`\rho`.
- **cortex and sulci**: a folded depth :math:`d = \rho + a\, e^{-(n(x)/q)^2} + b\, m(x)`, with :math:`n` a smooth
  Gaussian random field at gyral scale and :math:`m` a coarser one: along the zero lines of :math:`n` the depth
  rises, so CSF-filled sulci (:math:`d > 0.86`) cut into the brain, lined by grey matter (:math:`0.72 < d \le 0.86`)
  around white-matter cores (:math:`d \le 0.72`) that reach into the gyri.
- **ventricles** (CSF, a butterfly of two ellipses), **deep grey nuclei** (four ellipses) and a few small
  hypointense **white-matter lesions** (where a third field exceeds 2.6 standard deviations).
- **texture**: the tissues' intensities are modulated by :math:`1 + 0.04\, t(x)` (fine correlated noise) and the
  whole image by a smooth bias field :math:`1 + 0.05\, u(x)`, as a receive-coil profile would.

Intensities (T1 weighting, white matter = 1): scalp fat 0.95, skull 0.08, CSF 0.18, grey matter 0.62, deep grey
0.72, lesions 0.45, background 0. Every random choice comes from ``seed``, so a seed names one slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["T1_INTENSITIES", "brain_phantom"]

#: T1-weighted intensities of the phantom's tissues, white matter = 1
T1_INTENSITIES: dict[str, float] = {
    "background": 0.0, "scalp": 0.95, "skull": 0.08, "csf": 0.18, "grey": 0.62, "deep_grey": 0.72,
    "white": 1.0, "lesion": 0.45,
}


def _random_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """White noise smoothed by a Gaussian of ``sigma`` pixels, scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def _ellipse(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], axes: tuple[float, float],
             angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    u, v = x - centre[0], y - centre[1]
    return ((c * u + s * v) / axes[0]) ** 2 + ((-s * u + c * v) / axes[1]) ** 2 <= 1.0


def brain_phantom(shape: Sequence[int] = (192, 192), seed: int = 0, oversample: int = 2) -> np.ndarray:
    """A T1-weighted-like axial brain slice, float32 ``(H, W)`` in ``[0, ~1.1]`` (white matter about 1).

    Args:
        shape: output size ``(H, W)``; the head fills about 85 % of the shorter side.
        seed: seeds every random choice (head outline, folding, sulci, nuclei, lesions, texture, bias field).
        oversample: labels are drawn on a grid this many times finer and averaged down (partial volume).

    Raises:
        ValueError: for a shape that is not two sides of at least 8 pixels, or ``oversample < 1``.
    """
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"brain_phantom: shape must be two sides of at least 8 pixels, got {tuple(shape)}.")
    if oversample < 1:
        raise ValueError(f"brain_phantom: oversample must be at least 1, got {oversample}.")
    rng = np.random.default_rng(seed)
    h, w = int(shape[0]) * oversample, int(shape[1]) * oversample
    side = min(h, w)
    y, x = np.meshgrid(np.linspace(-h / side, h / side, h), np.linspace(-w / side, w / side, w), indexing="ij")
    theta, r = np.arctan2(y, x), np.hypot(x / 0.82, y / 0.95)

    harmonics = sum(
        rng.uniform(0.0, 0.04 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in range(2, 6)
    )
    rho = r / (0.88 * (1.0 + harmonics))
    sulcal = _random_field(rng, (h, w), 0.02 * side)
    lesion_field = _random_field(rng, (h, w), 0.02 * side)
    depth = rho + 0.22 * np.exp(-((sulcal / 0.25) ** 2)) + 0.03 * _random_field(rng, (h, w), 0.08 * side)

    value = T1_INTENSITIES
    image = np.zeros((h, w))
    image[rho <= 1.0] = value["scalp"]
    image[rho <= 0.93] = value["skull"]
    image[rho <= 0.88] = value["csf"]
    brain = (rho <= 0.88) & (depth <= 0.86)
    image[brain] = value["grey"]
    white = depth <= 0.72
    image[white] = value["white"]

    for cx, cy in ((-0.16, 0.05), (0.16, 0.05), (-0.22, -0.15), (0.22, -0.15)):
        nucleus = _ellipse(x, y, (cx * rng.uniform(0.9, 1.1), cy + rng.uniform(-0.03, 0.03)),
                           (rng.uniform(0.05, 0.08), rng.uniform(0.08, 0.12)), rng.uniform(-0.4, 0.4))
        image[nucleus & brain] = value["deep_grey"]
    tilt = rng.uniform(-0.2, 0.2)
    for sign in (-1.0, 1.0):
        ventricle = _ellipse(x, y, (sign * rng.uniform(0.06, 0.09), rng.uniform(-0.08, 0.02)),
                             (rng.uniform(0.035, 0.06), rng.uniform(0.20, 0.28)), sign * (0.25 + tilt))
        image[ventricle] = value["csf"]
    image[white & (lesion_field > 2.6)] = value["lesion"]

    texture = _random_field(rng, (h, w), 0.006 * side)
    bias = _random_field(rng, (h, w), 0.3 * side)
    tissue = image > 0
    image = image * np.where(tissue, 1.0 + 0.04 * texture, 1.0) * (1.0 + 0.05 * bias)
    image = image.reshape(int(shape[0]), oversample, int(shape[1]), oversample).mean(axis=(1, 3))
    return np.clip(image, 0.0, None).astype(np.float32)

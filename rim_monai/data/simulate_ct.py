r"""Image to sinogram: CT measurement simulation with Gaussian or Poisson (photon-count) noise.

- ``noise="gaussian"``: :math:`y = A x + \sigma n`, :math:`n \sim \mathcal N(0, I)`,
  :math:`\sigma = \eta \cdot \operatorname{mean}|A x|` (``noise_level`` :math:`\eta`, e.g. 0.05 for the 5 % of the
  learned primal-dual paper).
- ``noise="poisson"``: photon counts :math:`N \sim \operatorname{Poisson}(I_0 e^{-s A x})` per detector bin, zero
  counts clamped to ``min_count``, and the post-log sinogram :math:`y = -\log(N / I_0) / s` (an estimate of
  :math:`A x` in the operator's units; :math:`s` = ``attenuation_scale`` converts them to optical depth).
- ``noise=None``: :math:`y = A x`.

To avoid the *inverse crime* (simulating with the very operator used for reconstruction), pass a finer
``simulation_operator`` (or ``upsample > 1``): the image (or a finer version of it, ``fine_image_key``) is projected
on a grid ``upsample`` times finer covering the same field of view, with the same angles and detector bins.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

from rim_monai.data.file_utils import as_tensor
from rim_monai.data.keys import Keys
from rim_monai.operators import LinearOperator, RayTransform

__all__ = ["SimulateSinogramd", "finer_ray_transform", "add_sinogram_noise"]

NOISE_MODELS = (None, "gaussian", "poisson")


def finer_ray_transform(operator: RayTransform, upsample: int) -> RayTransform:
    """The same acquisition (angles, detector bins, distances, field of view) on a grid ``upsample`` times finer.

    Example:
        >>> A = RayTransform((32, 32), num_angles=10, backend="matrix")
        >>> finer_ray_transform(A, 2).domain_shape, finer_ray_transform(A, 2).range_shape == A.range_shape
        ((64, 64), True)
    """
    if not isinstance(upsample, int) or upsample < 1:
        raise ValueError(f"upsample: expected a positive integer, got {upsample!r}.")
    if upsample == 1:
        return operator
    keep = {k: getattr(operator, k) for k in ("arc", "num_detectors", "detector_spacing", "src_radius", "det_radius")}
    shape = tuple(int(s) * upsample for s in operator.image_shape)
    return operator.replace(image_shape=shape, pixel_size=operator.pixel_size / upsample, **keep)


def add_sinogram_noise(
    clean: torch.Tensor,
    noise: str | None,
    noise_level: float = 0.05,
    photons: float = 1e4,
    attenuation_scale: float = 1.0,
    min_count: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply the noise model of the module docstring to a clean sinogram ``clean`` (any shape, one sample)."""
    if noise is None:
        return clean
    if noise == "gaussian":
        sigma = noise_level * float(clean.abs().mean())
        return clean + sigma * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    if noise == "poisson":
        rate = photons * torch.exp(-attenuation_scale * clean.double())
        counts = torch.poisson(rate, generator=generator).clamp_min(min_count)
        return (-torch.log(counts / photons) / attenuation_scale).to(clean.dtype)
    raise ValueError(f"noise: expected one of {NOISE_MODELS}, got {noise!r}.")


class SimulateSinogramd(Randomizable, MapTransform):
    """Simulate a (noisy) sinogram from an image with any ray transform (see the module docstring).

    Input ``d[image_key]`` ``(1, H, W)`` on the reconstruction grid (``operator.domain_shape``). Outputs
    ``sinogram`` ``(1, angles, detectors)`` float32 and ``target`` (the image, a float32 ``MetaTensor`` with the
    image's meta).

    Args:
        keys: the image key (default ``"image"``).
        operator: the reconstruction geometry: a ``RayTransform`` (or any ``LinearOperator`` on images) or a dict
            of ``RayTransform`` arguments.
        noise: ``"gaussian"``, ``"poisson"`` or ``None``.
        noise_level: Gaussian standard deviation as a fraction of the mean ``|A x|``.
        photons: :math:`I_0`, incident photons per detector bin (Poisson).
        attenuation_scale: :math:`s`, optical depth per unit of ``A x`` (Poisson).
        min_count: zero counts are clamped to this (Poisson).
        simulation_operator: operator used to simulate (finer grid, same range shape); overrides ``upsample``.
        upsample: simulate on a grid this many times finer (:func:`finer_ray_transform`).
        fine_image_key: entry with the image on the finer grid (e.g. from :class:`EllipsePhantomDataset` with
            ``supersample``); when absent the image is upsampled bilinearly.
        sinogram_key, target_key: output keys.

    Raises:
        ValueError: an image not of shape ``(1, *operator.domain_shape)``, NaN/Inf, a simulation operator with a
            different range shape, an unknown noise model.

    Example:
        >>> A = RayTransform((32, 32), num_angles=12, backend="matrix")
        >>> sim = SimulateSinogramd(operator=A, noise="poisson", photons=1e4, attenuation_scale=0.05)
        >>> out = sim.set_random_state(seed=0)({"image": torch.rand(1, 32, 32)})
        >>> out["sinogram"].shape == (1, *A.range_shape)
        True
    """

    def __init__(
        self,
        keys: KeysCollection = Keys.IMAGE,
        operator: LinearOperator | Mapping[str, Any] | None = None,
        noise: str | None = "gaussian",
        noise_level: float = 0.05,
        photons: float = 1e4,
        attenuation_scale: float = 1.0,
        min_count: float = 0.1,
        simulation_operator: LinearOperator | None = None,
        upsample: int = 1,
        fine_image_key: str | None = "image_fine",
        sinogram_key: str = "sinogram",
        target_key: str = Keys.TARGET,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if operator is None:
            raise ValueError("operator: expected a RayTransform (or its arguments as a dict), got None.")
        self.operator = RayTransform(**operator) if isinstance(operator, Mapping) else operator
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise: expected one of {NOISE_MODELS}, got {noise!r}.")
        if noise == "gaussian" and noise_level < 0:
            raise ValueError(f"noise_level: expected a number >= 0, got {noise_level}.")
        if noise == "poisson" and (photons <= 0 or attenuation_scale <= 0 or min_count <= 0):
            raise ValueError(
                f"photons, attenuation_scale, min_count: expected positive numbers, got {photons}, {attenuation_scale}, {min_count}."
            )
        if simulation_operator is None and upsample != 1:
            if not isinstance(self.operator, RayTransform):
                raise ValueError("upsample: needs a RayTransform operator; pass simulation_operator otherwise.")
            simulation_operator = finer_ray_transform(self.operator, upsample)
        self.simulation_operator = simulation_operator or self.operator
        if tuple(self.simulation_operator.range_shape) != tuple(self.operator.range_shape):
            raise ValueError(
                f"simulation_operator: expected range shape {tuple(self.operator.range_shape)} (that of operator), "
                f"got {tuple(self.simulation_operator.range_shape)}."
            )
        self.noise, self.noise_level, self.photons = noise, noise_level, photons
        self.attenuation_scale, self.min_count = attenuation_scale, min_count
        self.fine_image_key, self.sinogram_key, self.target_key = fine_image_key, sinogram_key, target_key
        self._seed = 0

    def randomize(self, data: Any = None) -> None:
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def _simulation_input(self, d: Mapping, image: torch.Tensor) -> torch.Tensor:
        fine_shape = tuple(self.simulation_operator.domain_shape)
        if fine_shape == tuple(image.shape[-2:]):
            return image
        if self.fine_image_key and self.fine_image_key in d:
            fine = torch.as_tensor(d[self.fine_image_key]).float()
            if tuple(fine.shape) != (1, *fine_shape):
                raise ValueError(f"{self.fine_image_key}: expected shape (1, {fine_shape[0]}, {fine_shape[1]}), got {tuple(fine.shape)}.")
            return fine
        return F.interpolate(image[None], size=fine_shape, mode="bilinear", align_corners=False)[0]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        shape = (1, *self.operator.domain_shape)
        for key in self.key_iterator(d):
            self.randomize()
            image = d[key]
            tensor = as_tensor(image)
            if tuple(tensor.shape) != shape or tensor.is_complex():
                raise ValueError(f"{key}: expected a real image of shape {shape} (the operator's grid), got {tuple(tensor.shape)} {tensor.dtype}.")
            tensor = tensor.float()
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{key}: contains NaN or Inf values.")
            op = self.simulation_operator
            x = self._simulation_input(d, tensor).to(op.device)
            with torch.no_grad():
                clean = op(x[None])[0].cpu()
            generator = torch.Generator().manual_seed(self._seed)
            sinogram = add_sinogram_noise(
                clean, self.noise, self.noise_level, self.photons, self.attenuation_scale, self.min_count, generator
            )
            d[self.sinogram_key] = sinogram.float()
            meta = dict(image.meta) if isinstance(image, MetaTensor) else {}
            d[self.target_key] = MetaTensor(tensor, meta=meta) if meta else tensor
        return d

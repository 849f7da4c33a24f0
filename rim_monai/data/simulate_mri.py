r"""Image to multi-coil k-space: retrospective MRI simulation in the fastMRI conventions.

From a (magnitude) image :math:`m` the transform builds the complex reference :math:`x = m\, e^{i\varphi}` with a
smooth random phase :math:`\varphi`, coil sensitivities :math:`S_c` (birdcage maps, any coil count), and the
measurement

.. math::
    y_c = M \odot \big(F(S_c x) + n_c\big), \qquad n_c \sim \mathcal{CN}(0, \sigma^2),

with the centred unitary DFT :math:`F` (``rim_monai.operators.fft2c``) and a sampling mask :math:`M`. For a given
SNR (dB), :math:`\sigma = \operatorname{rms}(F S x) / 10^{\text{SNR}/20}` (the RMS over all coils and k-space
samples). So ``MaskedFourier(mask, sens)(target) + mask * noise == kspace`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

from rim_monai.data.file_utils import as_tensor
from rim_monai.data.keys import Keys
from rim_monai.operators import birdcage_maps, estimate_sensitivities_or_none, fft2c, mask_function

__all__ = ["smooth_phase", "SimulateKSpaced", "MAP_ESTIMATORS", "check_map_estimator"]


def smooth_phase(
    shape: Sequence[int], max_phase: float = math.pi, order: int = 2, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""A smooth random phase map :math:`\varphi(y, x) \in [-\varphi_\max, \varphi_\max]`.

    :math:`\varphi = \varphi_\max\, f / \max|f|` with
    :math:`f(y, x) = \operatorname{Re} \sum_{|k|, |l| \le K} c_{kl}\, e^{2\pi i (k y / H + l x / W)}`,
    :math:`c_{kl} \sim \mathcal{CN}(0, 1)`: only the ``order`` :math:`= K` lowest spatial frequencies, so the phase
    varies slowly over the field of view, like B0 / receive phase.

    Args:
        shape: ``(H, W)``.
        max_phase: the largest absolute phase (radians).
        order: highest spatial frequency :math:`K` (cycles per field of view).
        generator: torch random generator (seeded for reproducibility).

    Returns:
        float32 ``(H, W)``.
    """
    height, width = int(shape[0]), int(shape[1])
    k = torch.arange(-order, order + 1, dtype=torch.float64)
    coeff = torch.complex(
        torch.randn(len(k), len(k), generator=generator, dtype=torch.float64),
        torch.randn(len(k), len(k), generator=generator, dtype=torch.float64),
    )
    y = torch.arange(height, dtype=torch.float64) / height
    x = torch.arange(width, dtype=torch.float64) / width
    ey = torch.exp(2j * math.pi * k[:, None] * y[None, :])  # (K, H)
    ex = torch.exp(2j * math.pi * k[:, None] * x[None, :])  # (K, W)
    field = torch.einsum("kh,kl,lw->hw", ey, coeff, ex).real
    peak = float(field.abs().max())
    return (field * (max_phase / peak if peak > 0 else 0.0)).float()


MAP_ESTIMATORS = (None, "lowres", "espirit")


def check_map_estimator(map_estimator: str | None) -> str | None:
    """``map_estimator`` when it is one of :data:`MAP_ESTIMATORS` (``None``: the true maps), else ``ValueError``."""
    if map_estimator not in MAP_ESTIMATORS:
        raise ValueError(f"map_estimator: expected None, 'lowres' or 'espirit', got {map_estimator!r}.")
    return map_estimator


def _choose(value: float | Sequence[float | None] | None, index: int) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    return None if value[index] is None else float(value[index])


class SimulateKSpaced(Randomizable, MapTransform):
    r"""Simulate multi-coil k-space from an image (see the module docstring for the model).

    Input: ``d[image_key]`` ``(1, H, W)`` real (a magnitude image; a phase is added) or complex (its phase is kept).
    Optional inputs used when present: ``d[mask_key]`` (``(1, H, W)`` or ``(H, W)``: a given mask) and
    ``d[sens_key]`` (``(C, H, W)`` complex: given coil maps).

    Outputs: ``kspace`` ``(C, H, W)`` complex64, ``mask`` ``(1, H, W)`` float32, ``sens`` ``(C, H, W)`` complex64,
    ``target`` ``(1, H, W)`` complex64 (a ``MetaTensor`` carrying the image's meta); the input image is kept.

    Args:
        keys: the image key (default ``"image"``).
        coils: number of coils; birdcage maps (``rim_monai.operators.birdcage_maps``) for ``coils > 1``, a map of
            ones (single coil) for ``coils == 1``.
        acceleration: target acceleration, or a list to choose from uniformly per sample (fastMRI style); ``None``
            or 1: fully sampled.
        center_fraction: fully sampled centre fraction (``None``: the mask function's default, 0.32 / R); a list
            pairs with ``acceleration``.
        mask_func: ``"random"``, ``"equispaced"``, ``"poisson_disc"`` or a callable
            ``f((H, W), acceleration, center_fraction, seed) -> (H, W)`` mask.
        snr_db: SNR of the fully sampled coil k-space in dB; ``None``: no noise.
        max_phase: largest absolute synthetic phase in radians (0: real-valued target).
        phase_order: spatial frequency order of the phase (:func:`smooth_phase`).
        map_estimator: ``None`` (default): the operator gets the true maps the k-space was simulated with;
            ``"lowres"`` or ``"espirit"``: it gets maps *estimated* from the simulated calibration region
            (:func:`~rim_monai.operators.estimate_sensitivities_or_none`), as for measured k-space (for one coil
            the phase of the low-resolution image; the true maps where the slice has no calibration signal). The
            target stays the simulated image.
        kspace_key, mask_key, sens_key, target_key: output keys.

    Raises:
        ValueError: an image that is not ``(1, H, W)``, a given mask or sens whose shape does not match it, or NaN/Inf.

    Example:
        >>> sim = SimulateKSpaced(coils=4, acceleration=4, mask_func="random", snr_db=30.0)
        >>> sim.set_random_state(seed=0)  # doctest: +ELLIPSIS
        <...SimulateKSpaced object at ...>
        >>> out = sim({"image": torch.rand(1, 32, 32)})
        >>> out["kspace"].shape, out["mask"].shape, out["sens"].shape, out["target"].dtype
        (torch.Size([4, 32, 32]), torch.Size([1, 32, 32]), torch.Size([4, 32, 32]), torch.complex64)
    """

    def __init__(
        self,
        keys: KeysCollection = Keys.IMAGE,
        coils: int = 8,
        acceleration: float | Sequence[float] | None = 4.0,
        center_fraction: float | Sequence[float] | None = None,
        mask_func: str | Callable[..., torch.Tensor] = "random",
        snr_db: float | None = None,
        max_phase: float = math.pi / 2,
        phase_order: int = 2,
        map_estimator: str | None = None,
        kspace_key: str = Keys.KSPACE,
        mask_key: str = Keys.MASK,
        sens_key: str = Keys.SENS,
        target_key: str = Keys.TARGET,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if not isinstance(coils, int) or coils < 1:
            raise ValueError(f"coils: expected a positive integer, got {coils!r}.")
        accs = [acceleration] if acceleration is None or isinstance(acceleration, (int, float)) else list(acceleration)
        if isinstance(center_fraction, Sequence) and len(center_fraction) != len(accs):
            raise ValueError(
                f"center_fraction: expected one value per acceleration ({len(accs)}), got {len(center_fraction)}."
            )
        self.coils, self.accelerations, self.center_fraction = coils, accs, center_fraction
        self.mask_func = mask_function(mask_func)
        self.map_estimator = check_map_estimator(map_estimator)
        self.snr_db, self.max_phase, self.phase_order = snr_db, max_phase, phase_order
        self.kspace_key, self.mask_key, self.sens_key, self.target_key = kspace_key, mask_key, sens_key, target_key
        self._seed = 0
        self._choice = 0
        self._sens_cache: dict[tuple[int, int], torch.Tensor] = {}

    def randomize(self, data: Any = None) -> None:
        self._seed = int(self.R.randint(0, 2**31 - 1))
        self._choice = int(self.R.randint(0, len(self.accelerations)))

    def _mask(self, d: Mapping, shape: tuple[int, int], seed: int) -> torch.Tensor:
        if self.mask_key in d and d[self.mask_key] is not None:
            mask = as_tensor(d[self.mask_key])
            mask = mask.reshape(mask.shape[-2:]) if mask.ndim == 3 and mask.shape[0] == 1 else mask
            if tuple(mask.shape) != shape:
                raise ValueError(f"{self.mask_key}: expected shape (1, {shape[0]}, {shape[1]}) to match the image, got {tuple(d[self.mask_key].shape)}.")
            return mask.float()
        acceleration = _choose(self.accelerations, self._choice)
        if acceleration is None or acceleration <= 1:
            return torch.ones(shape)
        return self.mask_func(shape, acceleration, _choose(self.center_fraction, self._choice), seed).float()

    def _sens(self, d: Mapping, shape: tuple[int, int]) -> torch.Tensor:
        if self.sens_key in d and d[self.sens_key] is not None:
            sens = as_tensor(d[self.sens_key])
            if sens.ndim != 3 or tuple(sens.shape[-2:]) != shape or not sens.is_complex():
                raise ValueError(f"{self.sens_key}: expected complex (coils, {shape[0]}, {shape[1]}), got {tuple(sens.shape)} {sens.dtype}.")
            return sens.to(torch.complex64)
        if shape not in self._sens_cache:
            self._sens_cache[shape] = (
                torch.ones(1, *shape, dtype=torch.complex64) if self.coils == 1 else birdcage_maps(self.coils, shape)
            )
        return self._sens_cache[shape]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.randomize()
            image = d[key]
            tensor = as_tensor(image)
            if tensor.ndim != 3 or tensor.shape[0] != 1:
                raise ValueError(f"{key}: expected a channel-first 2D image (1, H, W), got shape {tuple(tensor.shape)}.")
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{key}: contains NaN or Inf values.")
            shape = (int(tensor.shape[-2]), int(tensor.shape[-1]))
            generator = torch.Generator().manual_seed(self._seed)
            if tensor.is_complex():
                x = tensor.to(torch.complex64)
            else:
                phase = smooth_phase(shape, self.max_phase, self.phase_order, generator) if self.max_phase else torch.zeros(shape)
                x = torch.polar(tensor.float(), phase.expand_as(tensor))
            sens = self._sens(d, shape)
            mask = self._mask(d, shape, self._seed)
            full = fft2c(sens * x)
            if self.snr_db is not None:
                sigma = float(full.abs().pow(2).mean().sqrt()) / 10 ** (self.snr_db / 20)
                noise = torch.complex(
                    torch.randn(full.shape, generator=generator), torch.randn(full.shape, generator=generator)
                ) * (sigma / math.sqrt(2))
                full = full + noise
            kspace = (full * mask).to(torch.complex64)
            if self.map_estimator is not None and d.get(self.sens_key) is None:
                estimated = estimate_sensitivities_or_none(kspace, self.map_estimator)
                sens = sens if estimated is None else estimated.to(torch.complex64)
            d[self.kspace_key] = kspace
            d[self.mask_key] = mask[None].float()
            d[self.sens_key] = sens
            meta = dict(image.meta) if isinstance(image, MetaTensor) else {}
            d[self.target_key] = MetaTensor(x.to(torch.complex64), meta=meta) if meta else x.to(torch.complex64)
        return d

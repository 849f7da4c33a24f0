"""Bundle glue for classical baselines: a reconstruction method returned in the unit the bundle writes and scores.

The CT bundle's network reconstructs attenuation (mm⁻¹) and its evaluator converts the output and the reference to
Hounsfield units (:class:`~rim_monai.data.AttenuationToHUd` as ``postprocessing``); :class:`HounsfieldBaseline` gives
the classical baselines (:func:`~rim_monai.classical.fbp`, :func:`~rim_monai.classical.scaled_tv`) the same unit, so
:class:`~rim_monai.engines.ReconstructionSaver` scores every method alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.data import MetaTensor

from rim_monai.data.intensity import MU_WATER, AttenuationToHU

__all__ = ["HounsfieldBaseline"]


class HounsfieldBaseline:
    r"""A classical reconstruction ``method(y, A, **kwargs)`` (attenuation) returned in HU when ``hounsfield``.

    :math:`\text{HU} = 1000 (\mu - \mu_\text{water}) / \mu_\text{water}` (:class:`~rim_monai.data.AttenuationToHU`);
    the output has the type of the method's (a plain tensor stays plain).

    Args:
        method: ``f(y, A, **kwargs) -> image`` in attenuation (e.g. :func:`rim_monai.classical.fbp`, ``scaled_tv``).
        hounsfield: convert to HU (otherwise return the method's output unchanged).
        mu_water: attenuation of water in the image unit.
        kwargs: passed to ``method``.

    Raises:
        ValueError: a ``method`` that is not callable.

    Example:
        >>> from rim_monai.classical import fbp
        >>> from rim_monai.data import ct_operator
        >>> A = ct_operator(image_shape=(16, 16), num_angles=8)
        >>> float(HounsfieldBaseline(fbp)(torch.zeros(1, 1, *A.range_shape), A).mean())
        -1000.0
    """

    def __init__(self, method: Callable[..., torch.Tensor], hounsfield: bool = True, mu_water: float = MU_WATER,
                 **kwargs: Any) -> None:
        if not callable(method):
            raise ValueError(f"method: expected a callable f(y, A) -> image, got {type(method).__name__}.")
        self.method, self.hounsfield, self.kwargs = method, bool(hounsfield), kwargs
        self.to_hu = AttenuationToHU(mu_water)

    def __call__(self, y: torch.Tensor, operator: Any) -> torch.Tensor:
        x = self.method(y, operator, **self.kwargs)
        if not self.hounsfield:
            return x
        hu = self.to_hu(x)
        return hu if isinstance(x, MetaTensor) else hu.as_tensor()

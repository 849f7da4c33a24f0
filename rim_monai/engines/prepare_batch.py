"""Turn a collated batch dictionary into the ``net(y, A)`` call of a MONAI trainer or evaluator.

Every rim_monai network takes the forward operator as its second argument. A MONAI ``SupervisedTrainer`` /
``SupervisedEvaluator`` calls ``inferer(inputs, network, *args, **kwargs)``; :class:`PrepareMeasurementBatch` returns
``(y, target, (A,), kwargs)`` so that ``SimpleInferer`` ends in ``network(y, A, **kwargs)``. The operator is either
fixed (a CT geometry shared by the whole data set) or built per batch from the batch itself (MRI: each sample has its
own mask and coil maps), by a callable such as :class:`MaskedFourierFromBatch` (or, for CT trained across
geometries and view counts, :class:`RayTransformFromBatch`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.engines.utils import PrepareBatch

from rim_monai.data.keys import Keys
from rim_monai.operators.base import LinearOperator

__all__ = ["PrepareMeasurementBatch", "MaskedFourierFromBatch", "RayTransformFromBatch", "plain_tensor"]


def plain_tensor(value: Any, device: str | torch.device | None = None, non_blocking: bool = False) -> Any:
    """Return ``value`` as a plain ``torch.Tensor`` on ``device`` (MONAI ``MetaTensor`` metadata is dropped).

    Operators run a custom autograd function; plain tensors keep that path free of metadata bookkeeping.
    Non-tensors are returned unchanged.
    """
    if not isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "as_tensor"):
        value = value.as_tensor()
    return value.to(device=device, non_blocking=non_blocking) if device is not None else value


class MaskedFourierFromBatch:
    """Build the per-sample MRI operator ``MaskedFourier(batch[mask_key], batch[sens_key])`` from a collated batch.

    Args:
        mask_key: key of the sampling masks, ``(B, 1, H, W)``.
        sens_key: key of the coil sensitivity maps, ``(B, coils, H, W)`` complex; ``None`` (or a missing key) for
            single-coil data.
    """

    def __init__(self, mask_key: str = Keys.MASK, sens_key: str | None = Keys.SENS) -> None:
        self.mask_key = mask_key
        self.sens_key = sens_key

    def __call__(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> LinearOperator:
        from rim_monai.operators import MaskedFourier

        if self.mask_key not in batch:
            raise ValueError(f"batch: missing key '{self.mask_key}' (the sampling mask); found keys {sorted(batch)}.")
        mask = plain_tensor(batch[self.mask_key], device)
        sens = None
        if self.sens_key is not None and self.sens_key in batch:
            sens = plain_tensor(batch[self.sens_key], device)
        return MaskedFourier(mask, sens=sens)


def _shared_value(batch: Mapping[str, Any], key: str) -> Any:
    """The one value of ``batch[key]`` that every item shares (a collated tensor or list)."""
    if key not in batch:
        raise ValueError(f"batch: missing key '{key}'; found keys {sorted(batch)}.")
    values = batch[key]
    values = values.reshape(-1).tolist() if isinstance(values, torch.Tensor) else list(values)
    if not values or any(v != values[0] for v in values):
        raise ValueError(f"batch: the items of a batch must share '{key}' (one operator per batch), got {values}.")
    return values[0]


class RayTransformFromBatch:
    """Build the CT operator of a batch from its ``geometry``, ``views`` and ``size`` entries (one each, shared by the
    items): :func:`~rim_monai.data.ct_corpus.batch_operator` ``(geometry, size, views)``, built once per combination
    and cached, so one network trains on parallel and fan beam and any view count
    (:class:`~rim_monai.data.CTTrainingPatches`, :class:`~rim_monai.data.AcquisitionBatchSampler`).

    Args:
        geometry_key: key of the geometry names (``"parallel"`` / ``"fan"``).
        views_key: key of the view counts.
        size_key: key of the image sizes (square grids).

    Raises:
        ValueError: naming the key when it is missing or the items of the batch differ in it.
    """

    def __init__(self, geometry_key: str = "geometry", views_key: str = "views", size_key: str = "size") -> None:
        self.geometry_key, self.views_key, self.size_key = geometry_key, views_key, size_key

    def __call__(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> LinearOperator:
        from rim_monai.data.ct_corpus import batch_operator

        geometry = str(_shared_value(batch, self.geometry_key))
        views, size = int(_shared_value(batch, self.views_key)), int(_shared_value(batch, self.size_key))
        operator = batch_operator(geometry, size, views)
        if device is not None and operator.device != torch.device(device):
            operator = operator.to(device)
        return operator


class PrepareMeasurementBatch(PrepareBatch):
    """MONAI ``prepare_batch`` for measurement-domain networks: ``(y, target, (A,), kwargs)``.

    Args:
        measurement_key: key of the measurements ``y`` (``Keys.KSPACE`` for MRI, ``Keys.SINOGRAM`` for CT).
        target_key: key of the reference image (``None`` at inference without a reference).
        operator: a fixed :class:`~rim_monai.operators.LinearOperator` (moved to the batch device once), or a callable
            ``(batch, device) -> LinearOperator`` that builds the operator from the batch (e.g.
            :class:`MaskedFourierFromBatch`).
        network_kwargs: extra keyword arguments for the network call, e.g. ``{"return_all": True}`` when training with
            the multi-step loss.

    Example:
        >>> prepare = PrepareMeasurementBatch(Keys.KSPACE, Keys.TARGET, MaskedFourierFromBatch())
        >>> # SupervisedTrainer(..., prepare_batch=prepare) then calls network(kspace, MaskedFourier(mask, sens))
    """

    def __init__(
        self,
        measurement_key: str,
        target_key: str | None = Keys.TARGET,
        operator: LinearOperator | Callable[..., LinearOperator] | None = None,
        network_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if operator is None:
            raise ValueError("operator: expected a LinearOperator or a callable (batch, device) -> LinearOperator, got None.")
        self.measurement_key = measurement_key
        self.target_key = target_key
        self.operator = operator
        self.network_kwargs = dict(network_kwargs or {})

    def build_operator(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> LinearOperator:
        """The operator for this batch, on ``device``."""
        if isinstance(self.operator, LinearOperator):
            if device is not None and self.operator.device != torch.device(device):
                self.operator = self.operator.to(device)
            return self.operator
        return self.operator(batch, device)

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple, dict]:
        if not isinstance(batchdata, Mapping):
            raise ValueError(f"batchdata: expected a dictionary batch, got {type(batchdata).__name__}.")
        if self.measurement_key not in batchdata:
            raise ValueError(
                f"batch: missing key '{self.measurement_key}' (the measurements); found keys {sorted(batchdata)}."
            )
        y = plain_tensor(batchdata[self.measurement_key], device, non_blocking)
        target = None
        if self.target_key is not None and self.target_key in batchdata:
            target = plain_tensor(batchdata[self.target_key], device, non_blocking)
        return y, target, (self.build_operator(batchdata, device),), dict(self.network_kwargs)

"""Gradient-norm clipping between the backward pass and the optimiser step of a MONAI trainer."""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents

__all__ = ["GradientClipping"]


class GradientClipping:
    r"""Rescale the gradients of ``network`` so that their joint 2-norm is at most ``max_norm``.

    :math:`g \leftarrow g \cdot \min(1, c / \|g\|_2)` with :math:`\|g\|_2` over all parameters
    (:func:`torch.nn.utils.clip_grad_norm_`), on MONAI's ``IterationEvents.BACKWARD_COMPLETED``: after
    ``loss.backward()``, before ``optimizer.step()`` of a :class:`monai.engines.SupervisedTrainer`.

    Args:
        network: the module whose parameters' gradients are clipped.
        max_norm: :math:`c > 0`.

    Raises:
        ValueError: naming ``max_norm`` when it is not a positive number.

    Example:
        >>> # GradientClipping(net, 1.0).attach(trainer)    # trainer: a monai.engines.SupervisedTrainer
    """

    def __init__(self, network: torch.nn.Module, max_norm: float) -> None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not 0 < max_norm < math.inf:
            raise ValueError(f"max_norm: expected a positive number, got {max_norm!r}.")
        self.network, self.max_norm = network, float(max_norm)

    def attach(self, engine: Engine) -> None:
        """Clip on ``IterationEvents.BACKWARD_COMPLETED`` (registered by every MONAI workflow)."""
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> None:
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.max_norm)

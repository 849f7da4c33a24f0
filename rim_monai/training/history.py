"""The loss of every step, and its mean over windows of steps (a training curve)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine, Events

__all__ = ["LossHistory"]


def _identity(output: Any) -> Any:
    return output


class LossHistory:
    """Record the mini-batch loss of every iteration, and optionally its mean over every ``every`` iterations.

    The curve holds ``(iteration, mean loss since the previous point)`` at iterations ``every, 2 every, ...`` and,
    when the run completes or is terminated elsewhere, at the last iteration (the mean over the partial window).

    Args:
        output_transform: ``engine.state.output -> loss`` (a number or a 0-dim tensor); the identity for a step
            function that returns the loss, ``lambda out: out["loss"]`` for a MONAI ``SupervisedTrainer``.
        every: the window of the curve; ``None`` keeps no curve.

    Attributes:
        values: the loss of every iteration (Python floats).
        curve: ``[(iteration, mean loss), ...]``.

    Example:
        >>> from ignite.engine import Engine
        >>> engine = Engine(lambda engine, batch: float(batch))
        >>> history = LossHistory(every=2)
        >>> history.attach(engine)
        >>> _ = engine.run(range(5))
        >>> history.values, history.curve
        ([0.0, 1.0, 2.0, 3.0, 4.0], [(2, 0.5), (4, 2.5), (5, 4.0)])
    """

    def __init__(self, output_transform: Callable[[Any], Any] = _identity, every: int | None = None) -> None:
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"every: expected an integer >= 1 or None, got {every!r}.")
        self.output_transform, self.every = output_transform, every
        self.values: list[float] = []
        self.curve: list[tuple[int, float]] = []
        self._running = 0.0

    def attach(self, engine: Engine) -> None:
        """Record on ``ITERATION_COMPLETED``; close the curve's last window on ``COMPLETED``."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._record)
        if self.every is not None:
            engine.add_event_handler(Events.COMPLETED, self._close_window)

    def _record(self, engine: Engine) -> None:
        loss = self.output_transform(engine.state.output)
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self.values.append(value)
        if self.every is not None:
            self._running += value
            if engine.state.iteration % self.every == 0:
                self._add_point(engine.state.iteration)

    def _close_window(self, engine: Engine) -> None:
        step = engine.state.iteration
        if step > 0 and (not self.curve or self.curve[-1][0] != step):
            self._add_point(step)

    def _add_point(self, step: int) -> None:
        previous = self.curve[-1][0] if self.curve else 0
        self.curve.append((step, self._running / (step - previous)))
        self._running = 0.0

"""Keep the state (weights, operator, ...) with the lowest value of a metric seen during a run."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ignite.engine import Engine

from rim_monai.training.events import EvaluationEvents, register_evaluation_events

__all__ = ["KeepBestState"]


class KeepBestState:
    """A copy of the state at the evaluation with the lowest ``metric`` (lower is better: a loss, a data term).

    :meth:`update` is called with every evaluation's values — by the engine when attached (on
    ``EVALUATION_COMPLETED``), or directly for evaluations made outside the engine (before the first step, after an
    outer search) — and stores ``snapshot()`` whenever the value is strictly lower than the best so far. The first
    evaluation always becomes the best.

    Args:
        snapshot: ``() -> state``, a copy of whatever must be restored later (e.g. ``copy.deepcopy(net.state_dict())``).
        metric: the key of the evaluation values to minimise.

    Attributes:
        value: the lowest value so far (``inf`` before any evaluation).
        step: the step of that evaluation (0 before any).
        metrics: all values of that evaluation.
        state: the snapshot taken then (``None`` before any evaluation).

    Example:
        >>> best = KeepBestState(lambda: "weights", metric="loss")
        >>> best.update({"loss": 2.0}, step=0), best.update({"loss": 3.0}, step=5), best.step
        (True, False, 0)
    """

    def __init__(self, snapshot: Callable[[], Any], metric: str = "data_term") -> None:
        self.snapshot, self.metric = snapshot, metric
        self.value, self.step = math.inf, 0
        self.metrics: dict[str, Any] = {}
        self.state: Any = None

    def update(self, metrics: Mapping[str, Any], step: int) -> bool:
        """Keep a snapshot if ``metrics[metric]`` is the lowest so far; returns whether it was.

        Raises:
            ValueError: naming ``metrics`` when it lacks :attr:`metric`.
        """
        if self.metric not in metrics:
            raise ValueError(f"metrics: expected a value for '{self.metric}', got keys {sorted(metrics)}.")
        value = metrics[self.metric]
        if not value < self.value:
            return False
        self.value, self.step, self.metrics, self.state = value, step, dict(metrics), self.snapshot()
        return True

    def attach(self, engine: Engine) -> None:
        """Update from ``engine.state.metrics`` on every ``EVALUATION_COMPLETED``."""
        register_evaluation_events(engine)
        engine.add_event_handler(EvaluationEvents.EVALUATION_COMPLETED, self._on_evaluation)

    def _on_evaluation(self, engine: Engine) -> None:
        self.update(engine.state.metrics, engine.state.iteration)

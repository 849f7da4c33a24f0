"""Evaluation cadence: a full evaluation every ``every`` iterations and at the last one."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ignite.engine import Engine, Events

from rim_monai.training.events import EvaluationEvents, register_evaluation_events

__all__ = ["PeriodicEvaluation"]


class PeriodicEvaluation:
    """Call ``evaluate(step)`` at iterations ``every, 2 every, ...`` and at ``last``; publish its values.

    The values (a mapping ``name -> float``, e.g. ``{"data_term": 0.12}``) are written to ``engine.state.metrics``
    and :attr:`~rim_monai.training.EvaluationEvents.EVALUATION_COMPLETED` is fired, so stopping rules, best-state
    keepers and progress bars attached to that event see them. ``step`` is ``engine.state.iteration``, the number of
    optimisation steps taken so far.

    Args:
        evaluate: ``step -> {name: value}``, the full evaluation (runs without the engine knowing what it computes).
        every: iterations between evaluations (``>= 1``).
        last: also evaluate at this iteration (the final step of the run), if it is not a multiple of ``every``.

    Raises:
        ValueError: naming ``every`` when it is not a positive integer.

    Example:
        >>> from ignite.engine import Engine
        >>> engine = Engine(lambda engine, batch: batch)
        >>> seen = []
        >>> PeriodicEvaluation(lambda step: seen.append(step) or {"value": step}, every=2, last=5).attach(engine)
        >>> _ = engine.run(range(5))
        >>> seen, engine.state.metrics["value"]
        ([2, 4, 5], 5)
    """

    def __init__(self, evaluate: Callable[[int], Mapping[str, float]], every: int, last: int | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every: expected an integer >= 1, got {every!r}.")
        self.evaluate, self.every, self.last = evaluate, every, last

    def attach(self, engine: Engine) -> None:
        """Evaluate on ``ITERATION_COMPLETED`` when the step is due."""
        register_evaluation_events(engine)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._maybe_evaluate)

    def _maybe_evaluate(self, engine: Engine) -> None:
        step = engine.state.iteration
        if step % self.every == 0 or step == self.last:
            self(engine)

    def __call__(self, engine: Engine) -> Mapping[str, float]:
        """Evaluate now, write the values to ``engine.state.metrics`` and fire ``EVALUATION_COMPLETED``."""
        values = self.evaluate(engine.state.iteration)
        engine.state.metrics.update(values)
        engine.fire_event(EvaluationEvents.EVALUATION_COMPLETED)
        return values

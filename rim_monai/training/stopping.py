r"""Ending epochs and runs early: no improvement for ``patience`` evaluations, a level reached, blocks of steps.

An ignite ``Engine`` ends a run with ``engine.terminate()`` and only the current epoch with
``engine.terminate_epoch()`` (the next epoch starts, with the same data stream). Where a run is a sequence of rounds
(e.g. R&R+: an outer search of the operator, then a block of weight updates), one round is one epoch: a plateau ends
the round, a level reached ends the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from ignite.engine import Engine, Events

from rim_monai.training.best_state import KeepBestState
from rim_monai.training.events import EvaluationEvents, register_evaluation_events

__all__ = ["StopOnPlateau", "StopAtLevel", "StopAfterSeconds", "EpochLengths"]


def _check_metric_name(metric: str) -> None:
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric: expected the name of an evaluation value, got {metric!r}.")


class StopOnPlateau:
    r"""End the epoch (or the run) when a lower-is-better metric stops improving.

    At every evaluation the value :math:`v` counts as an improvement when :math:`v < b\,(1 - \delta)`, with
    :math:`b` the last improvement (a relative ``min_delta`` :math:`\delta`); otherwise a counter grows, and at
    ``patience`` evaluations without improvement the engine is stopped. Counter and :math:`b` are reset at every
    epoch start, :math:`b` to ``reference.value`` (the best value kept so far, evaluations before the epoch
    included) or to ``inf``.

    Args:
        patience: evaluations without improvement before stopping (``>= 1``).
        min_delta: relative decrease that counts as an improvement (``>= 0``).
        metric: the key in ``engine.state.metrics``.
        reference: where the reference value of each epoch comes from.
        end: ``"epoch"`` (``terminate_epoch``: the next epoch starts) or ``"run"`` (``terminate``).

    Attributes:
        stopped: whether it ever stopped the engine.

    Raises:
        ValueError: naming ``patience``, ``min_delta``, ``metric`` or ``end``.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, metric: str = "data_term",
                 reference: KeepBestState | None = None, end: str = "epoch") -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience: expected an integer >= 1, got {patience!r}.")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < math.inf:
            raise ValueError(f"min_delta: expected a finite number >= 0, got {min_delta!r}.")
        _check_metric_name(metric)
        if end not in ("epoch", "run"):
            raise ValueError(f"end: expected 'epoch' or 'run', got {end!r}.")
        self.patience, self.min_delta, self.metric = patience, float(min_delta), metric
        self.reference, self.end = reference, end
        self.stopped = False
        self.reset()

    def attach(self, engine: Engine) -> None:
        """Reset on ``EPOCH_STARTED``, check on ``EVALUATION_COMPLETED``."""
        register_evaluation_events(engine)
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(EvaluationEvents.EVALUATION_COMPLETED, self.check)

    def reset(self, engine: Engine | None = None) -> None:
        """Start counting again from the reference value."""
        self.best = self.reference.value if self.reference is not None else math.inf
        self.waited = 0

    def check(self, engine: Engine) -> None:
        """Count the evaluation in ``engine.state.metrics``; stop the engine at ``patience``."""
        value = engine.state.metrics[self.metric]
        if value < self.best * (1.0 - self.min_delta):
            self.best, self.waited = value, 0
        else:
            self.waited += 1
        if self.waited >= self.patience:
            self.stopped = True
            if self.end == "epoch":
                engine.terminate_epoch()
            else:
                engine.terminate()


class StopAtLevel:
    """End the run as soon as a lower-is-better metric reaches ``level`` (e.g. Morozov's discrepancy principle).

    Args:
        level: stop when ``engine.state.metrics[metric] <= level``.
        metric: the key in ``engine.state.metrics``.

    Attributes:
        stopped: whether it stopped the engine.

    Raises:
        ValueError: naming ``level`` (not a number) or ``metric``.
    """

    def __init__(self, level: float, metric: str = "data_term") -> None:
        if isinstance(level, bool) or not isinstance(level, (int, float)) or math.isnan(level):
            raise ValueError(f"level: expected a number, got {level!r}.")
        _check_metric_name(metric)
        self.level, self.metric, self.stopped = float(level), metric, False

    def attach(self, engine: Engine) -> None:
        """Check on ``EVALUATION_COMPLETED``."""
        register_evaluation_events(engine)
        engine.add_event_handler(EvaluationEvents.EVALUATION_COMPLETED, self.check)

    def check(self, engine: Engine) -> None:
        """Terminate the run when the value is at or below the level."""
        if engine.state.metrics[self.metric] <= self.level:
            self.stopped = True
            engine.terminate()


class StopAfterSeconds:
    """End the run after the iteration during which ``seconds`` of wall time have passed since it started.

    Unlike ignite's ``TimeLimit`` (whole seconds, clock started when the handler is built), the clock starts on
    ``STARTED`` and the budget may be any positive number, e.g. a fraction of a second in a smoke test.

    Args:
        seconds: the wall-time budget (``>= 0``; 0 stops after the first iteration).

    Attributes:
        stopped: whether the budget ended the run.

    Raises:
        ValueError: naming ``seconds`` when it is not a number ``>= 0``.
    """

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"seconds: expected a number >= 0, got {seconds!r}.")
        self.seconds, self.stopped, self._started = float(seconds), False, 0.0

    def attach(self, engine: Engine) -> None:
        """Start the clock on ``STARTED``, check it on ``ITERATION_COMPLETED``."""
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.check)

    def _start(self, engine: Engine) -> None:
        self._started = time.perf_counter()

    def check(self, engine: Engine) -> None:
        """Terminate the run when the budget is spent."""
        if time.perf_counter() - self._started > self.seconds:
            self.stopped = True
            engine.terminate()


class EpochLengths:
    """Epochs of unequal lengths: epoch ``k`` (1-based) ends after ``lengths[k - 1]`` iterations.

    ignite epochs all have ``epoch_length`` iterations; run the engine with ``epoch_length=max(lengths)`` and
    ``max_epochs=len(lengths)`` and this handler ends the shorter epochs early (``terminate_epoch``).

    Args:
        lengths: iterations of each epoch (each ``>= 1``).

    Raises:
        ValueError: naming ``lengths`` when empty or not positive integers.

    Example:
        >>> from ignite.engine import Engine
        >>> engine = Engine(lambda engine, batch: batch)
        >>> EpochLengths([3, 2]).attach(engine)
        >>> engine.run(iter(range(10)), max_epochs=2, epoch_length=3).iteration
        5
    """

    def __init__(self, lengths: Sequence[int]) -> None:
        lengths = list(lengths)
        if not lengths or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in lengths):
            raise ValueError(f"lengths: expected a non-empty list of integers >= 1, got {lengths!r}.")
        self.lengths = lengths
        self._first = 0

    def attach(self, engine: Engine) -> None:
        """Note the epoch start, end the epoch when its length is reached."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._maybe_end)

    def _start(self, engine: Engine) -> None:
        self._first = engine.state.iteration

    def _maybe_end(self, engine: Engine) -> None:
        done = engine.state.iteration - self._first
        if done >= self.lengths[engine.state.epoch - 1] and done < engine.state.epoch_length:
            engine.terminate_epoch()

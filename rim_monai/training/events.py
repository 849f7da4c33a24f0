"""The event an evaluation fires on an ignite engine, so that stopping rules and logs react to its values."""

from __future__ import annotations

from ignite.engine import Engine, EventEnum

__all__ = ["EvaluationEvents", "register_evaluation_events"]


class EvaluationEvents(EventEnum):
    """Custom ignite events of :mod:`rim_monai.training`.

    ``EVALUATION_COMPLETED`` fires after :class:`~rim_monai.training.PeriodicEvaluation` has written its values to
    ``engine.state.metrics``; :class:`~rim_monai.training.StopOnPlateau`, :class:`~rim_monai.training.StopAtLevel`
    and :class:`~rim_monai.training.KeepBestState` listen to it.
    """

    EVALUATION_COMPLETED = "evaluation_completed"


def register_evaluation_events(engine: Engine) -> Engine:
    """Register :class:`EvaluationEvents` on ``engine`` (a plain ignite ``Engine`` or a MONAI workflow).

    Registering twice is harmless, so every handler that needs the events calls this in its ``attach``.

    Returns:
        ``engine``.
    """
    engine.register_events(*EvaluationEvents)
    return engine

"""The one training loop of rim_monai: an ignite ``Engine`` and the handlers every optimisation shares.

See ``docs/training.md``. The bundles train with MONAI's ``SupervisedTrainer`` (an ignite ``Engine``); model
adaptation, its supervised baseline and the experiments run :func:`step_engine` or the same trainer, with these
handlers: evaluation cadence (:class:`PeriodicEvaluation`); stopping (:class:`StopOnPlateau`, :class:`StopAtLevel`,
:class:`StopAfterSeconds`, :class:`EpochLengths`); the best state (:class:`KeepBestState`); the loss curve
(:class:`LossHistory`); gradient clipping (:class:`GradientClipping`); and seeded mini-batches of sample indices
(:class:`ShuffledBatches`).
"""

from rim_monai.training.batches import ShuffledBatches
from rim_monai.training.best_state import KeepBestState
from rim_monai.training.clipping import GradientClipping
from rim_monai.training.engine import step_engine
from rim_monai.training.evaluation import PeriodicEvaluation
from rim_monai.training.events import EvaluationEvents, register_evaluation_events
from rim_monai.training.history import LossHistory
from rim_monai.training.stopping import EpochLengths, StopAfterSeconds, StopAtLevel, StopOnPlateau

__all__ = [
    "step_engine",
    "ShuffledBatches",
    "PeriodicEvaluation",
    "EvaluationEvents",
    "register_evaluation_events",
    "KeepBestState",
    "StopOnPlateau",
    "StopAtLevel",
    "StopAfterSeconds",
    "EpochLengths",
    "LossHistory",
    "GradientClipping",
]

"""The training loop: an ignite ``Engine`` that runs a step function on batches, with handlers attached.

Everything in rim_monai that optimises runs through an ignite ``Engine``: the bundles and the random-projection
experiment through MONAI's :class:`~monai.engines.SupervisedTrainer` (an ``Engine`` whose step is the supervised
update), model adaptation and the supervised baseline through :func:`step_engine` with their own step functions.
The handlers of :mod:`rim_monai.training` (evaluation cadence, stopping, best state, loss history) attach to any of
them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ignite.engine import Engine
from ignite.handlers import ProgressBar

from rim_monai.training.events import register_evaluation_events

__all__ = ["step_engine"]


def step_engine(
    step: Callable[[Any], Any], handlers: Sequence[Any] = (), progress: bool = False, desc: str = ""
) -> Engine:
    """An ignite ``Engine`` whose iteration is ``step(batch)``, with ``handlers`` attached in order.

    The engine's output (``engine.state.output``) is what ``step`` returns, typically the mini-batch loss.
    :class:`~rim_monai.training.EvaluationEvents` are registered. Handlers on the same event run in the order given,
    so put a handler whose result others read first.

    Args:
        step: ``batch -> output``: one optimisation step on one batch (forward, backward, optimiser step).
        handlers: objects with ``attach(engine)`` (the handlers of :mod:`rim_monai.training`, ignite handlers).
        progress: show a tqdm progress bar with the evaluation values (ignite's ``ProgressBar``).
        desc: the bar's description.

    Returns:
        The engine; run it with ``engine.run(batches, max_epochs=..., epoch_length=...)``.

    Example:
        >>> from rim_monai.training import ShuffledBatches
        >>> engine = step_engine(lambda idx: float(idx.sum()))
        >>> engine.run(ShuffledBatches(4, 2), epoch_length=2).output >= 0
        True
    """

    def process(engine: Engine, batch: Any) -> Any:
        return step(batch)

    engine = register_evaluation_events(Engine(process))
    for handler in handlers:
        handler.attach(engine)
    if progress:
        ProgressBar(persist=False, desc=desc).attach(engine, metric_names="all")
    return engine

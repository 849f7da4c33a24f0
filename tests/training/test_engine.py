"""step_engine and the handlers together: evaluation cadence, best state, stopping, loss history, rounds."""

import pytest
import torch
from ignite.engine import Events

from rim_monai.training import (
    EpochLengths,
    EvaluationEvents,
    KeepBestState,
    LossHistory,
    PeriodicEvaluation,
    ShuffledBatches,
    StopAfterSeconds,
    StopAtLevel,
    StopOnPlateau,
    step_engine,
)


class Countdown:
    """A toy "training": the value after step k is values[k] (an evaluation reads it)."""

    def __init__(self, values):
        self.values, self.step = list(values), 0

    def __call__(self, batch):
        self.step += 1
        return float(self.step)

    def evaluate(self, step):
        return {"data_term": self.values[step], "step": step}


def test_periodic_evaluation_every_and_at_the_last_step():
    toy = Countdown(range(20, 0, -1))
    seen = []
    engine = step_engine(toy, [PeriodicEvaluation(lambda s: seen.append(s) or toy.evaluate(s), every=3, last=7)])
    engine.run(ShuffledBatches(4, 2), epoch_length=7)
    assert seen == [3, 6, 7] and engine.state.metrics["step"] == 7


def test_keep_best_state_keeps_the_lowest_value_and_its_snapshot():
    toy = Countdown([5, 4, 6, 3, 7, 8, 9, 10])
    best = KeepBestState(lambda: toy.step)
    engine = step_engine(toy, [PeriodicEvaluation(toy.evaluate, every=1), best])
    engine.run(ShuffledBatches(3, 1), epoch_length=7)
    assert (best.value, best.step, best.state) == (3, 3, 3) and best.metrics["step"] == 3
    assert not best.update({"data_term": 3}, 9)  # equal is not better
    with pytest.raises(ValueError, match="metrics"):
        best.update({"loss": 1.0}, 0)


def test_plateau_ends_the_epoch_and_level_ends_the_run():
    toy = Countdown([9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8])
    plateau = StopOnPlateau(patience=2, min_delta=0.0, end="epoch")
    history = LossHistory()
    engine = step_engine(toy, [PeriodicEvaluation(toy.evaluate, every=1), plateau, history])
    state = engine.run(ShuffledBatches(3, 1), max_epochs=2, epoch_length=5)
    # epoch 1: 8 improves on inf, then two evaluations without improvement -> the epoch ends at step 3;
    # epoch 2 starts again from inf: 8, 8, 8 -> ends at step 6
    assert plateau.stopped and state.iteration == 6 and history.values == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]

    toy = Countdown([9, 8, 7, 6, 5, 4, 3])
    level = StopAtLevel(6.5)
    engine = step_engine(toy, [PeriodicEvaluation(toy.evaluate, every=1), level])
    assert engine.run(ShuffledBatches(3, 1), max_epochs=3, epoch_length=5).iteration == 3 and level.stopped


def test_plateau_reference_and_relative_delta():
    best = KeepBestState(lambda: None)
    best.update({"data_term": 10.0}, 0)
    plateau = StopOnPlateau(patience=1, min_delta=0.1, reference=best)
    toy = Countdown([0, 9.5, 8.0, 7.5])
    engine = step_engine(toy, [PeriodicEvaluation(toy.evaluate, every=1), plateau])
    # 9.5 is not 10 % below the reference 10: the first evaluation already ends the epoch
    assert engine.run(ShuffledBatches(2, 1), epoch_length=3).iteration == 1


def test_epoch_lengths_and_rounds_keep_one_data_stream():
    toy = Countdown([0] * 10)
    starts = []
    engine = step_engine(toy, [EpochLengths([3, 2, 2])])
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: starts.append(e.state.iteration))
    batches = ShuffledBatches(4, 1, seed=0)
    assert engine.run(batches, max_epochs=3, epoch_length=3).iteration == 7 and starts == [0, 3, 5]
    reference = ShuffledBatches(4, 1, seed=0)
    drawn = [next(reference) for _ in range(8)]
    assert torch.equal(next(batches), drawn[7])  # 7 batches were drawn: the stream continued across the epochs


def test_stop_after_seconds_and_loss_curve():
    toy = Countdown([0] * 10)
    budget, history = StopAfterSeconds(0.0), LossHistory(every=4)
    engine = step_engine(toy, [history, budget])
    assert engine.run(ShuffledBatches(2, 1), epoch_length=9).iteration == 1 and budget.stopped
    assert history.curve == [(1, 1.0)]  # the partial window is closed when the run ends


def test_evaluation_event_is_registered_and_bad_arguments_are_named():
    engine = step_engine(lambda batch: 0.0)
    fired = []
    engine.add_event_handler(EvaluationEvents.EVALUATION_COMPLETED, lambda e: fired.append(1))
    PeriodicEvaluation(lambda s: {"data_term": 1.0}, every=2).attach(engine)
    engine.run(ShuffledBatches(2, 1), epoch_length=4)
    assert fired == [1, 1]
    for make, name in ((lambda: PeriodicEvaluation(dict, every=0), "every"),
                       (lambda: StopOnPlateau(patience=0), "patience"),
                       (lambda: StopOnPlateau(patience=1, min_delta=-1), "min_delta"),
                       (lambda: StopOnPlateau(patience=1, end="round"), "end"),
                       (lambda: StopAtLevel(float("nan")), "level"),
                       (lambda: StopAfterSeconds(-1), "seconds"),
                       (lambda: EpochLengths([]), "lengths"),
                       (lambda: LossHistory(every=0), "every")):
        with pytest.raises(ValueError, match=name):
            make()

"""TrainingCurveWriter: one CSV row per validation, CPU time carried across resumed runs."""

from __future__ import annotations

import csv

import pytest
import torch
from ignite.engine import Engine, Events

from rim_monai.engines import TrainingCurveWriter, best_metric


def _engines():
    trainer = Engine(lambda engine, batch: {"loss": torch.tensor(0.5)})
    evaluator = Engine(lambda engine, batch: None)
    evaluator.state.metrics = {}
    return trainer, evaluator


def test_rows_follow_validations_and_cpu_time_accumulates(tmp_path):
    path = tmp_path / "curve.csv"
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    trainer, evaluator = _engines()
    writer = TrainingCurveWriter(path, evaluator, optimizer)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):  # stands in for ValidationHandler (attached first in train.json)
        if engine.state.epoch % 2 == 0:
            evaluator.state.epoch = engine.state.epoch
            evaluator.state.metrics = {"val_psnr": 30.0 + engine.state.epoch}

    writer.attach(trainer)  # after the validation, as in the bundle
    trainer.run([0, 1], max_epochs=4)
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["2", "4"] and rows[-1]["val_psnr"] == "34.0000"
    assert rows[0]["lr"] == "0.1" and rows[0]["train_loss"] == "0.5"
    resumed = TrainingCurveWriter(path, evaluator, optimizer)
    assert resumed.cpu_before == float(rows[-1]["cpu_s_total"])


def test_best_metric_of_a_curve(tmp_path):
    path = tmp_path / "curve.csv"
    assert best_metric(path) is None
    path.write_text("epoch,val_psnr\n1,30.5\n2,31.25\n3,\n4,30.0\n")
    assert best_metric(path) == 31.25 and best_metric(path, mode="min") == 30.0
    assert best_metric(path, "val_ssim") is None
    with pytest.raises(ValueError, match="mode"):
        best_metric(path, mode="best")

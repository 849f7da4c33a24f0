"""A training curve on disk: one CSV row per validation, with the CPU time spent so far (across resumed runs)."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from rim_monai.data.file_utils import atomic_write_text

__all__ = ["TrainingCurveWriter", "best_metric"]

FIELDS = ("epoch", "iteration", "utc", "cpu_s_total", "wall_s_run", "lr", "train_loss")


def best_metric(path: str | os.PathLike, column: str = "val_psnr", mode: str = "max") -> float | None:
    """The best ``column`` value in a curve written by :class:`TrainingCurveWriter` (``mode`` ``"max"`` or ``"min"``),
    or ``None`` when the file or the column holds none: what a resumed run's key-metric checkpoint has to beat.

    Raises:
        ValueError: for another ``mode``.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode: expected 'max' or 'min', got {mode!r}.")
    path = Path(path)
    if not path.is_file():
        return None
    values = [float(row[column]) for row in csv.DictReader(io.StringIO(path.read_text())) if row.get(column)]
    return (max if mode == "max" else min)(values) if values else None


class TrainingCurveWriter:
    """Append ``epoch, iteration, utc, cpu_s_total, wall_s_run, lr, train_loss, <metrics>`` to ``path`` at the end of
    every training epoch after which the evaluator ran (attach it to the trainer after its ``ValidationHandler``:
    it reads the evaluator's metrics).

    ``cpu_s_total`` is this process's CPU time (:func:`time.process_time`, all threads) plus the ``cpu_s_total`` of
    the file's last row when the file already exists (a resumed run), so it counts the CPU time of the whole
    training; time a killed run spent after its last row is not counted. The file is rewritten atomically.

    Args:
        path: the CSV file (created with a header).
        evaluator: the validation engine.
        optimizer: the trainer's optimiser (the learning rate of its first parameter group is logged).

    Example:
        >>> # TrainingCurveWriter("runs/v2/curve.csv", evaluator, optimizer).attach(trainer)
    """

    def __init__(self, path: str | os.PathLike, evaluator: Engine, optimizer: Any) -> None:
        self.path, self.evaluator, self.optimizer = Path(path), evaluator, optimizer
        self.last_run: int | None = None
        self.rows: list[dict[str, str]] = []
        if self.path.is_file():
            self.rows = list(csv.DictReader(io.StringIO(self.path.read_text())))
        self.cpu_before = float(self.rows[-1]["cpu_s_total"]) if self.rows else 0.0
        self.cpu_start, self.wall_start = time.process_time(), time.time()

    def attach(self, trainer: Engine) -> None:
        """Write a row at the end of each epoch of ``trainer`` (when the evaluator ran since the last row)."""
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, trainer: Engine) -> None:
        state = getattr(self.evaluator, "state", None)
        if state is None or not state.metrics or state.epoch == self.last_run:
            return
        self.last_run = state.epoch  # MONAI's evaluator runs at the trainer's epoch
        output = trainer.state.output
        loss = output[0]["loss"] if isinstance(output, list) and output and isinstance(output[0], dict) else None
        loss = output.get("loss") if isinstance(output, dict) else loss
        row = {
            "epoch": str(trainer.state.epoch),
            "iteration": str(trainer.state.iteration),
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpu_s_total": f"{self.cpu_before + time.process_time() - self.cpu_start:.1f}",
            "wall_s_run": f"{time.time() - self.wall_start:.1f}",
            "lr": f"{self.optimizer.param_groups[0]['lr']:.3g}",
            "train_loss": "" if loss is None else f"{float(loss):.5g}",
        }
        row.update({k: f"{float(v):.4f}" for k, v in state.metrics.items()})
        self.rows.append(row)
        fields = list(FIELDS) + sorted({k for r in self.rows for k in r} - set(FIELDS))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, buffer.getvalue())

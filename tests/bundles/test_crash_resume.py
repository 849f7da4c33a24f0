"""Crash-safe training: SIGKILL a bundle's training run after its first checkpoints, resume it, and check that it
continues where the checkpoint left off, with the optimiser state restored, while ``models/model.pt`` was a complete
file at every moment."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "ct_lpd_recon" / "configs"
# a tiny CT run (32², 8 views, 2 LPD iterations) whose epochs take a fraction of a second
TINY = {"iterations": 2, "features": [8, 8], "train_subjects": [], "val_subjects": [], "natural_dir": None,
        "val_ellipses": 1, "patch_sizes": [32], "pixels_per_batch": 2048, "view_counts": [8], "val_size": 32,
        "epoch_length": 4, "warmup_iterations": 1}


class ModelFileWatcher(threading.Thread):
    """Loads ``path`` over and over while training runs; records every time it exists but does not load."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.loads, self.failures = path, 0, []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                torch.load(self.path, map_location="cpu")
                self.loads += 1
            except FileNotFoundError:
                if self.loads:  # it existed before: it must never disappear again
                    self.failures.append("model.pt vanished")
            except Exception as error:  # noqa: BLE001 - a truncated or half-written file
                self.failures.append(f"{type(error).__name__}: {error}")


def _overrides(root: Path, **extra) -> dict:
    return {**TINY, "dataset_dir": str(root), "ckpt_dir": str(root / "models"), "run_dir": str(root / "runs"), **extra}


def _cli(overrides: dict) -> list[str]:
    args = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "train.json")]
    for key, value in overrides.items():
        args += [f"--{key}", "$None" if value is None else repr(value) if not isinstance(value, str) else value]
    return args


def _epoch_checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("=")[1]) for p in run_dir.glob("checkpoint_epoch=*.pt"))


@pytest.mark.slow
def test_killed_training_resumes_where_its_checkpoint_left_off(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(_cli(_overrides(tmp_path, epochs=500)), cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher = ModelFileWatcher(tmp_path / "models" / "model.pt")
    watcher.start()
    try:
        deadline = time.monotonic() + 240
        while len(_epoch_checkpoints(tmp_path / "runs") + [0]) < 2 or not watcher.loads:
            assert process.poll() is None, f"training stopped early: {process.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.05)
        time.sleep(0.5)  # let it write a few more checkpoints, then kill it without warning
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        watcher.stop.set()
        watcher.join(timeout=10)
    assert process.returncode == -signal.SIGKILL
    assert not watcher.failures, watcher.failures[:3]
    assert not (tmp_path / "runs" / "checkpoint_final.pt").exists()
    (last_epoch,) = _epoch_checkpoints(tmp_path / "runs")[-1:]
    saved = torch.load(tmp_path / "runs" / f"checkpoint_epoch={last_epoch}.pt", map_location="cpu")
    torch.load(tmp_path / "models" / "model.pt", map_location="cpu")  # complete after the kill too

    # resume (the default resume path is the newest checkpoint the killed run left) and run one more epoch
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train",
                              **_overrides(tmp_path, epochs=last_epoch + 1, resume=True))
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    optimizer = workflow.parser.get_parsed_content("optimizer")
    resumed = {}

    @trainer.on(Events.EPOCH_STARTED(once=last_epoch + 1))
    def _record(engine):
        resumed["epoch"], resumed["iteration"] = engine.state.epoch, engine.state.iteration
        resumed["optimizer"] = copy.deepcopy(optimizer.state_dict())  # Adam updates its state tensors in place

    workflow.run()
    workflow.finalize()
    assert resumed["epoch"] == last_epoch + 1, "the epoch counter did not continue from the checkpoint"
    assert resumed["iteration"] == saved["trainer"]["iteration"]
    restored, expected = resumed["optimizer"]["state"], saved["optimizer"]["state"]
    assert restored.keys() == expected.keys() and restored
    for key in expected:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(torch.as_tensor(restored[key][name]), torch.as_tensor(expected[key][name]))
    assert trainer.state.epoch == last_epoch + 1
    assert (tmp_path / "runs" / "checkpoint_final.pt").is_file()

"""Crash-safe checkpoints: atomic writes, deferred removal, and finding the checkpoint to resume from."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from rim_monai.engines import AtomicCheckpointSaver, AtomicDiskSaver, latest_checkpoint, network_weights


def _state(value: float) -> dict:
    return {"model": {"w": torch.full((4,), value)}}


def test_fixed_name_is_replaced_never_removed(tmp_path):
    saver = AtomicDiskSaver(tmp_path, filename="model.pt")
    saver(_state(1.0), "ignored_1.pt")
    saver.remove("model.pt")  # ignite removes the superseded best file before saving the next one
    assert (tmp_path / "model.pt").is_file()
    saver(_state(2.0), "ignored_2.pt")
    assert torch.load(tmp_path / "model.pt")["model"]["w"][0] == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_numbered_file_removed_only_after_the_new_one_exists(tmp_path):
    saver = AtomicDiskSaver(tmp_path)
    saver(_state(1.0), "checkpoint_epoch=1.pt")
    saver.remove("checkpoint_epoch=1.pt")
    assert (tmp_path / "checkpoint_epoch=1.pt").is_file(), "removed before its successor was written"
    saver(_state(2.0), "checkpoint_epoch=2.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    saver = AtomicDiskSaver(tmp_path, filename="model.pt")
    saver(_state(1.0), "x.pt")

    def dying_save(obj, f, **kwargs):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # the process is interrupted in the middle of the write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        saver(_state(2.0), "x.pt")
    monkeypatch.undo()
    assert torch.load(tmp_path / "model.pt")["model"]["w"][0] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"], "a temporary file was left behind"


def test_checkpoint_saver_uses_atomic_handlers_and_saves(tmp_path):
    net = torch.nn.Linear(2, 1)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_interval=1, n_saved=1, save_final=True,
                                  final_filename="checkpoint_final.pt")
    engine = Engine(lambda e, b: None)
    saver.attach(engine)
    engine.run([0], max_epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_final.pt", "model_epoch=3.pt"]
    for name in ("model_epoch=3.pt", "checkpoint_final.pt"):
        torch.testing.assert_close(torch.load(tmp_path / name)["weight"], net.weight)


def test_latest_checkpoint_order(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_dir"):
        latest_checkpoint(tmp_path)
    for n in (2, 10, 9):
        (tmp_path / f"checkpoint_epoch={n}.pt").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path).endswith("checkpoint_epoch=10.pt")
    (tmp_path / "checkpoint_final.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).endswith("checkpoint_final.pt")


def test_latest_checkpoint_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        latest_checkpoint(tmp_path / "absent")


def test_iteration_level_interval(tmp_path):
    """Iteration-level checkpoints every 2 iterations, one kept, the superseded one removed once its successor exists."""
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": torch.nn.Linear(1, 1)}, save_interval=2, n_saved=1,
                                  epoch_level=False)
    engine = Engine(lambda e, b: None)
    saver.attach(engine)
    seen = []
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(sorted(p.name for p in tmp_path.iterdir())))
    engine.run([0, 1, 2, 3], max_epochs=1)
    assert seen[1] == ["model_iteration=2.pt"] and seen[-1] == ["model_iteration=4.pt"]


@pytest.mark.parametrize(("earlier_best", "written"), [(None, [30.5, 31.0]), (30.8, [31.0]), (32.0, [])])
def test_resumed_key_metric_file_only_replaced_by_a_better_model(tmp_path, earlier_best, written):
    net = torch.nn.Linear(1, 1)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_filename="model.pt",
                                  key_metric_best=earlier_best)
    evaluator = Engine(lambda e, b: None)
    scores = iter([30.5, 30.2, 31.0])
    saved = []

    @evaluator.on(Events.EPOCH_COMPLETED)
    def metric(engine):  # the validation metric, computed before the saver runs
        engine.state.metrics = {"val_psnr": next(scores)}
        engine.state.key_metric_name = "val_psnr"
        with torch.no_grad():
            net.weight.fill_(engine.state.metrics["val_psnr"])

    saver.attach(evaluator)
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: saved.append(torch.load(tmp_path / "model.pt")["weight"].item())
                                if (tmp_path / "model.pt").exists() else None)
    for _ in range(3):
        evaluator.run([0])
    assert sorted(set(saved)) == pytest.approx(written)


def test_network_weights_from_a_state_dict_or_a_training_checkpoint(tmp_path):
    net = torch.nn.Linear(2, 1)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    torch.save({"model": net.state_dict(), "optimizer": torch.optim.SGD(net.parameters(), 0.1).state_dict()},
               tmp_path / "checkpoint_epoch=1.pt")
    for name in ("model.pt", "checkpoint_epoch=1.pt"):
        weights = network_weights(tmp_path / name)
        assert set(weights) == {"weight", "bias"}
        torch.testing.assert_close(weights["weight"], net.weight.detach())
    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt.*found \\['optimizer'\\]"):
        network_weights(tmp_path / "other.pt")

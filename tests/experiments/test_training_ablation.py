"""The training ablation: config checks, the training command (overrides, resume), scores per item and group, and the
summary written by ``main`` on a tiny train config (no training, no shared data)."""

from __future__ import annotations

import ast
import json

import pytest
import torch

from rim_monai.experiments import training_ablation as ablation

_TRAIN = {
    "dataset_dir": "unused",
    "scale": 1.0,
    "validate": {
        "dataset": "$[{'y': torch.full((1, 8, 8), 0.1) + torch.arange(64.).reshape(1, 8, 8) / 63, "
                   "'target': torch.arange(64.).reshape(1, 8, 8) / 63, 'geometry': g, 'name': g + str(i)} "
                   "for i, g in enumerate(['fan', 'parallel', 'fan'])]",
        "prepare_batch": "$lambda batch, device: (batch['y'] * @scale, batch['target'], (), {})",
    },
    "network_def": {"_target_": "torch.nn.Identity"},
}


@pytest.fixture
def config(tmp_path):
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"imports": ["$import torch"], **_TRAIN}))
    return {"train_config": str(train), "common": {"epochs": 2}, "group_by": "geometry",
            "variants": [{"name": "reference", "overrides": {}},
                         {"name": "fan_only", "description": "fan", "overrides": {"geometries": ["fan"]}}]}


def _write(tmp_path, config):
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps(config))
    return path


def test_config_is_checked_naming_the_key(tmp_path, config):
    assert ablation.load_ablation_config(_write(tmp_path, config))["group_by"] == "geometry"
    bad = [({"train_config": str(tmp_path / "missing.json")}, "train_config"),
           ({"variants": []}, "variants"),
           ({"variants": [{"name": "a b"}]}, r"variants\[0\].name"),
           ({"variants": [{"name": "a"}, {"name": "a"}]}, "unique"),
           ({"variants": [{"name": "a", "overrides": [1]}]}, r"variants\[0\].overrides")]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            ablation.load_ablation_config(_write(tmp_path, {**config, **change}))


def test_training_command_carries_common_and_variant_overrides_and_resumes(tmp_path, config):
    run_dir = tmp_path / "runs" / "fan_only"
    command = ablation.training_command(config, config["variants"][1], run_dir, tmp_path / "data")
    assert command[1:5] == ["-m", "monai.bundle", "run", "--config_file"]
    pairs = dict(zip(command[4::2], command[5::2]))
    assert pairs["--run_dir"] == str(run_dir) and pairs["--ckpt_dir"] == str(run_dir / "models")
    assert ast.literal_eval(pairs["--epochs"]) == 2 and ast.literal_eval(pairs["--geometries"]) == ["fan"]
    assert "--resume" not in pairs
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint_epoch=1.pt").write_bytes(b"")
    assert "--resume" in ablation.training_command(config, config["variants"][1], run_dir, tmp_path)


def test_a_finished_variant_is_not_trained_again(tmp_path, config):
    run_dir = tmp_path / "reference"
    run_dir.mkdir()
    (run_dir / ablation.FINAL_CHECKPOINT).write_bytes(b"")
    assert ablation.train_variant(config, config["variants"][0], tmp_path, tmp_path) == run_dir
    assert not (run_dir / "train.log").exists()


def test_scores_per_item_and_summary_per_group(tmp_path):
    target = torch.linspace(0, 1, 64).reshape(1, 8, 8)
    items = [{"y": target + 0.1, "target": target, "geometry": "fan"},
             {"y": target + 0.01, "target": target, "geometry": "parallel"}]
    scores = ablation.score_network(torch.nn.Identity(), items, lambda b, d: (b["y"], b["target"], (), {}),
                                    "geometry")
    assert [s["group"] for s in scores] == ["fan", "parallel"]
    assert scores[0]["psnr"] == pytest.approx(20.0, abs=1e-4) and scores[1]["psnr"] == pytest.approx(40.0, abs=1e-3)
    (tmp_path / "curve.csv").write_text("epoch,iteration,utc,cpu_s_total,wall_s_run,lr,train_loss,val_psnr,val_ssim\n"
                                        "1,200,t,360.0,1,0.1,1,25.0,0.5\n2,400,t,720.0,1,0.1,1,24.0,0.5\n")
    row = ablation.summarise({"name": "v"}, tmp_path, scores)
    assert row["iterations"] == 400 and row["cpu_hours"] == pytest.approx(0.2) and row["best_epoch"] == 1
    assert row["psnr"] == pytest.approx(30.0, abs=1e-3)
    assert row["psnr[fan]"] == pytest.approx(20.0, abs=1e-4) and row["psnr[parallel]"] == pytest.approx(40.0, abs=1e-3)


def test_items_cache_is_reused_for_the_same_inputs_only(tmp_path, config, monkeypatch, capsys):
    cache = tmp_path / "items.pt"
    items = ablation.validation_items(config, tmp_path, cache)
    assert len(items) == 3 and cache.is_file()

    def no_simulation(*args, **kwargs):
        raise AssertionError("the items were simulated again")

    with monkeypatch.context() as patch:
        patch.setattr(ablation, "variant_parser", no_simulation)
        again = ablation.validation_items(config, tmp_path, cache)
    assert [i["name"] for i in again] == [i["name"] for i in items]
    torch.testing.assert_close(again[1]["y"], items[1]["y"])
    config["common"] = {"epochs": 3}  # other overrides: the cache is stale
    rebuilt = ablation.validation_items(config, tmp_path, cache)
    assert "simulating the items again" in capsys.readouterr().out and len(rebuilt) == 3


def test_paired_difference_and_its_standard_error():
    a = [{"index": i, "psnr": v} for i, v in enumerate([31.0, 32.0, 30.0, 33.0])]
    b = [{"index": i, "psnr": v} for i, v in enumerate([30.0, 31.5, 29.0, 32.5])]  # differences 1, .5, 1, .5
    mean, se = ablation.paired_difference(a, b)
    # deviations ±0.25: their squares sum to 0.25, and n (n − 1) = 12
    assert mean == pytest.approx(0.75) and se == pytest.approx((0.25 / 12) ** 0.5)
    assert ablation.paired_difference(a[:1], b[:1]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="^scores"):
        ablation.paired_difference(a[:3], b)


def test_main_scores_existing_weights_and_names_missing_ones(tmp_path, config, capsys):
    config["variants"][1]["overrides"] = {"scale": 2.0}  # the variant's overrides reach its network only
    out = tmp_path / "out"
    (out / "reference" / "models").mkdir(parents=True)
    torch.save(torch.nn.Identity().state_dict(), out / "reference" / "models" / "model.pt")
    ablation.main(["--config", str(_write(tmp_path, config)), "--out", str(out), "--skip-training"])
    assert "fan_only: no weights" in capsys.readouterr().out
    summary = json.loads((out / "ablation.json").read_text())
    reference = summary["rows"][0]
    assert reference["variant"] == "reference" and set(reference) >= {"psnr", "psnr[fan]", "psnr[parallel]"}
    assert len(summary["items"]["reference"]) == 3 and summary["items"]["fan_only"] == []
    assert "| reference |" in (out / "ablation.md").read_text()
    with pytest.raises(SystemExit, match="unknown"):
        ablation.main(["--config", str(_write(tmp_path, config)), "--out", str(out), "--variants", "nope"])


def test_fixed_weights_score_every_variant_without_training(tmp_path, config):
    """``weights``: one checkpoint, each variant's overrides change the network's options (an inference ablation)."""
    train = json.loads(open(config["train_config"]).read())
    train["network_def"] = {"_target_": "torch.nn.Hardtanh", "min_val": 0.0, "max_val": "@clip"}
    train["clip"] = 1.0
    open(config["train_config"], "w").write(json.dumps(train))
    weights = tmp_path / "weights.pt"
    torch.save(torch.nn.Hardtanh().state_dict(), weights)
    config.update(weights=str(weights), variants=[{"name": "wide", "overrides": {}},
                                                  {"name": "clipped", "overrides": {"clip": 0.5}}])
    out = tmp_path / "out"
    ablation.main(["--config", str(_write(tmp_path, config)), "--out", str(out)])
    rows = {r["variant"]: r for r in json.loads((out / "ablation.json").read_text())["rows"]}
    assert not (out / "wide").exists()  # nothing trained
    assert rows["wide"]["psnr"] != rows["clipped"]["psnr"]
    config["weights"] = str(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="weights: expected the path of a checkpoint"):
        ablation.load_ablation_config(_write(tmp_path, config))


def test_variants_with_their_own_weights_are_scored_not_trained(tmp_path, config):
    """A variant's ``weights`` (a state dict or a training checkpoint) select among finished runs on the same items."""
    train = json.loads(open(config["train_config"]).read())
    train["network_def"] = {"_target_": "torch.nn.Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 1,
                            "bias": False}
    open(config["train_config"], "w").write(json.dumps(train))
    plain, checkpoint = tmp_path / "plain.pt", tmp_path / "checkpoint_epoch=3.pt"
    torch.save({"weight": torch.ones(1, 1, 1, 1)}, plain)
    torch.save({"model": {"weight": torch.full((1, 1, 1, 1), 0.5)}, "optimizer": {"state": {}}}, checkpoint)
    config["variants"] = [{"name": "plain", "weights": str(plain)}, {"name": "epoch_3", "weights": str(checkpoint)}]
    out = tmp_path / "out"
    ablation.main(["--config", str(_write(tmp_path, config)), "--out", str(out)])
    rows = {r["variant"]: r for r in json.loads((out / "ablation.json").read_text())["rows"]}
    assert not (out / "plain").exists() and not (out / "epoch_3").exists()  # nothing trained
    assert rows["plain"]["psnr"] > rows["epoch_3"]["psnr"]  # y = target + 0.1 scaled by 1 beats scaled by 0.5
    # the first variant scored is the reference of the paired comparison; --reference picks another
    assert rows["plain"]["psnr_minus_reference"] == 0.0 and rows["plain"]["paired_se"] == 0.0
    assert rows["epoch_3"]["psnr_minus_reference"] == pytest.approx(rows["epoch_3"]["psnr"] - rows["plain"]["psnr"])
    ablation.main(["--config", str(_write(tmp_path, config)), "--out", str(out), "--reference", "epoch_3",
                   "--items-cache", str(tmp_path / "items.pt")])
    assert (tmp_path / "items.pt").is_file()
    summary = json.loads((out / "ablation.json").read_text())
    assert summary["reference"] == "epoch_3" and summary["rows"][0]["psnr_minus_reference"] > 0
    with pytest.raises(SystemExit, match="--reference"):
        ablation.main(["--config", str(_write(tmp_path, config)), "--out", str(out), "--reference", "nope"])
    config["variants"][0]["weights"] = str(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"variants\[0\].weights"):
        ablation.load_ablation_config(_write(tmp_path, config))
    # a run that has not finished does not stop scoring the others
    assert ablation.load_ablation_config(_write(tmp_path, config), ["epoch_3"])["variants"][0]["name"] == "plain"
    with pytest.raises(ValueError, match=r"variants\[0\].weights"):
        ablation.load_ablation_config(_write(tmp_path, config), ["plain"])


def test_common_overrides_from_the_command_line_reach_the_items(tmp_path, config):
    out = tmp_path / "out"
    (out / "reference" / "models").mkdir(parents=True)
    torch.save(torch.nn.Identity().state_dict(), out / "reference" / "models" / "model.pt")
    path = str(_write(tmp_path, config))
    ablation.main(["--config", path, "--out", str(out), "--skip-training", "--variants", "reference"])
    plain = json.loads((out / "ablation.json").read_text())
    ablation.main(["--config", path, "--out", str(out), "--skip-training", "--variants", "reference",
                   "--common", "scale=2.0"])
    scaled = json.loads((out / "ablation.json").read_text())
    assert scaled["config"]["common"] == {"epochs": 2, "scale": 2.0}
    assert scaled["rows"][0]["psnr"] < plain["rows"][0]["psnr"] - 3  # y doubled: a larger error on every item
    with pytest.raises(ValueError, match="--common"):
        ablation.main(["--config", path, "--out", str(out), "--skip-training", "--common", "scale"])


def test_items_key_follows_the_operators_source(tmp_path, config, monkeypatch):
    # the coil-map estimation in rim_monai.operators decides the validation items as much as rim_monai.data does
    package = tmp_path / "operators"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "coils.py").write_text("SINGLE_COIL = 'ones'\n")
    monkeypatch.setattr(ablation.rim_monai.operators, "__file__", str(package / "__init__.py"))
    config = ablation.load_ablation_config(_write(tmp_path, config))
    before = ablation._items_key(config, tmp_path)
    assert ablation._items_key(config, tmp_path) == before
    (package / "coils.py").write_text("SINGLE_COIL = 'phase'\n")
    assert ablation._items_key(config, tmp_path) != before

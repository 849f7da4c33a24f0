"""The CT test-set evaluation on tiny synthetic sets (32² grid, 8 views, 2 TV iterations, a 2-iteration network):
cache reuse, tuning on validation only, the summary's columns, HTC data consistency, and bad configs."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from rim_monai.engines import bundle_config
from rim_monai.experiments import ct_test_evaluation as evaluation
from rim_monai.experiments.heldout_evaluation import load_config
from tests.data.test_htc import write_v5

BUNDLE = "bundles/ct_lpd_recon"
TINY = {"image_shape": [32, 32], "num_angles": 8, "iterations": 2, "features": [4, 4]}


def _volume(path, seed):
    """Discs of soft tissue and bone in air, in HU, 3 slices of 40x32 (padded to a square by the evaluation)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :32]
    slices = [np.where((yy - 20) ** 2 + (xx - 16) ** 2 < (9 + k) ** 2, 40.0, -1000.0) for k in range(3)]
    for image in slices:
        image[(yy - 18) ** 2 + (xx - 14 - rng.integers(4)) ** 2 < 9] = 900.0
    nib.save(nib.Nifti1Image(np.stack(slices, -1).astype(np.float32), np.diag([1.0, 1.0, 3.0, 1.0])), str(path))


def _config(tmp_path, **changes):
    _volume(tmp_path / "val.nii.gz", 0)
    _volume(tmp_path / "test.nii.gz", 1)
    rng = np.random.default_rng(0)
    for arc, views, name in ((30, 9, "ta_subsample73.mat"), (40, 11, "tb_subsample_40.mat")):
        (tmp_path / "htc" / str(arc)).mkdir(parents=True, exist_ok=True)
        write_v5(tmp_path / "htc" / str(arc) / name, 1.0 + rng.random((views, 40)).astype(np.float32),
                 10.0 * arc + 0.5 * np.arange(views))
    config = {
        "bundle_overrides": TINY, "slices_per_file": 2, "tv_iterations": 2, "filters": ["ram-lak", "hann"],
        "settings": [{"name": "parallel_1e4", "photons": 1e4, "tv_weights": [0.01, 0.1, 0.3, 1.0, 10.0]},
                     {"name": "fan_1e3", "config": "inference_fan.json", "photons": 1e3, "tv_weights": [0.3, 3.0]}],
        "validation_sets": [{"name": "patients", "files": ["val.nii.gz"]}, {"name": "ellipses", "ellipses": 1, "seed": 1}],
        "test_sets": [{"name": "phantom", "files": ["test.nii.gz"]},
                      {"name": "ellipses", "ellipses": 2, "seed": 2, "validation": "ellipses",
                       "settings": ["parallel_1e4"]}],
        "htc": {"folder": "htc", "validation_setting": "fan_1e3", "image_size": 16, "pixel_mm": 0.3},
        **changes,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path / "config.json"


def _tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    network = bundle_config(BUNDLE, TINY).get_parsed_content("network_def")
    torch.save(network.state_dict(), tmp_path / "tiny.pt")
    return tmp_path / "tiny.pt"


def _refuse(*args, **kwargs):
    raise AssertionError("a baseline was recomputed")


def test_baselines_once_then_a_checkpoint_only_runs_the_network(tmp_path, monkeypatch):
    config, out = _config(tmp_path), tmp_path / "out"
    common = ["--config", str(config), "--out", str(out), "--data", str(tmp_path), "--bundle", BUNDLE]
    evaluation.main(common + ["--methods", "baselines"])
    cache = json.loads((out / "cache.json").read_text())
    assert any(key.startswith("val|patients|fan_1e3|val.nii.gz|") for key in cache)
    assert {key.split("|")[3] for key in cache if key.startswith("val|")} == {"val.nii.gz", "ellipses_seed1_000"}
    assert all(key.rsplit("|", 1)[1].startswith(("fbp@", "tv@")) for key in cache if key.startswith("val|"))
    walked = {key.rsplit("|", 1)[1] for key in cache if key.startswith("val|patients|parallel_1e4|")} - {
        "fbp@ram-lak", "fbp@hann"}
    assert {"tv@0.1", "tv@0.3", "tv@1"} <= walked and len(walked) < 5  # the walk from the middle, not the grid
    record = json.loads((out / "evaluation.json").read_text())
    rows = record["rows"]
    assert [(r["set"], r["setting"], r["files"]) for r in rows] == [
        ("phantom", "parallel_1e4", 1), ("phantom", "fan_1e3", 1), ("ellipses", "parallel_1e4", 2)]
    for row, weights in zip(rows, ([0.01, 0.1, 0.3, 1.0, 10.0], [0.3, 3.0], [0.01, 0.1, 0.3, 1.0, 10.0])):
        assert row["filter_val"] in ("ram-lak", "hann") and row["c_val"] in weights
        assert row["fbp_oracle"] >= row["fbp_best"] - 1e-9 and row["tv_oracle"] >= row["tv_val"] - 1e-9
        assert np.isfinite(row["tv_default"]) and np.isnan(row["lpd"])
    header = (out / "evaluation.md").read_text().splitlines()[3]
    assert header == "| " + " | ".join(evaluation.COLUMNS) + " |"
    assert [r["file"] for r in record["htc"]] == ["ta73 (4°)", "tb_40 (5°)", "mean"]
    assert all(0 < r["fbp"] < 10 and np.isfinite(r["tv_val"]) and np.isnan(r["lpd"]) for r in record["htc"])
    assert (out / "htc_reconstructions.png").stat().st_size > 0

    for name in ("fbp", "scaled_tv", "tv_pdhg"):
        monkeypatch.setattr(evaluation, name, _refuse)
    evaluation.main(common + ["--methods", "lpd", "--label", "tiny", "--checkpoint", str(_tiny_checkpoint(tmp_path))])
    after = json.loads((out / "cache.json").read_text())
    new = set(after) - set(cache)
    assert new and all(key.endswith("|tiny") and not key.startswith("val|") for key in new)
    assert all(after[key] == cache[key] for key in cache)
    record = json.loads((out / "evaluation.json").read_text())
    assert record["label"] == "tiny"
    for row in record["rows"]:
        assert np.isfinite(row["lpd"]) and np.isfinite(row["lpd_minus_tv_val"]) and np.isfinite(row["lpd_seconds"])
        assert row["lpd_minus_fbp_best"] == pytest.approx(row["lpd"] - row["fbp_best"])
    assert all(np.isfinite(r["lpd"]) for r in record["htc"])


def _entry(err2):
    return {"err2": err2, "ref2": 1.0, "pixels": 1, "ssim": 0.5, "range": 1.0, "seconds": 0.1}


def test_validation_weight_and_filter_never_look_at_test_items():
    config = {"settings": [{"name": "s", "photons": 1e4, "tv_weights": [0.1, 1.0, 10.0]}],
              "filters": ["ram-lak", "hann"], "validation_sets": [{"name": "patients", "files": ["v"]}],
              "test_sets": [{"name": "t", "files": ["a"]}]}
    val = {"tv@0.1": 0.3, "tv@1": 0.1, "tv@10": 0.2, "fbp@ram-lak": 0.2, "fbp@hann": 0.4}
    test = {"tv@0.1": 0.3, "tv@1": 0.2, "tv@10": 0.01, "fbp@ram-lak": 0.5, "fbp@hann": 0.1, "tv_default": 0.1}
    cache = {f"val|patients|s|v|0|{m}": _entry(e) for m, e in val.items()}
    cache.update({f"test|t|s|a|0|{m}": _entry(e) for m, e in test.items()})
    row = evaluation.summarise(cache, config, "net")[0]
    assert (row["c_val"], row["c_oracle"], row["filter_val"], row["filter_oracle"]) == (1.0, 10.0, "ram-lak", "hann")
    assert row["tv_val"] == pytest.approx(10 * np.log10(1 / 0.2)) and not row["c_val_at_edge"]
    for method in test:  # whatever the test scores, the validation choice stays
        cache[f"test|t|s|a|0|{method}"] = _entry(1e-6 if method == "tv@0.1" else 0.9)
    again = evaluation.summarise(cache, config, "net")[0]
    assert (again["c_val"], again["filter_val"], again["c_oracle"]) == (1.0, "ram-lak", 0.1)
    cache["val|patients|s|v|0|tv@10"] = _entry(0.01)
    assert evaluation.summarise(cache, config, "net")[0]["c_val_at_edge"]


@pytest.mark.parametrize("change, field", [
    ({"settings": [{"name": "a", "photons": -1.0, "tv_weights": [1.0]}]}, r"settings\[0\]\.photons"),
    ({"settings": [{"name": "a", "photons": 1e4, "tv_weights": []}]}, r"settings\[0\]\.tv_weights"),
    ({"settings": [{"name": "a", "photons": 1e4}, {"name": "a", "photons": 1e3}], "tv_weights": [1.0]},
     r"settings: expected unique names"),
    ({"filters": ["box"]}, r"filters"),
    ({"test_sets": [{"name": "t", "files": ["a"], "settings": ["nope"]}]}, r"test_sets\[0\]\.settings"),
    ({"test_sets": [{"name": "t", "files": ["a"], "ellipses": 2}]}, r"test_sets\[0\]: expected exactly one"),
    ({"test_sets": [{"name": "t", "files": ["a"], "validation": "x"}]}, r"test_sets\[0\]\.validation"),
    ({"validation_sets": [{"name": "v", "subjects": "val_subjects"}]}, r"validation_sets\[0\]\.subjects"),
    ({"htc": {"validation_setting": "nope"}}, r"htc\.validation_setting"),
])
def test_bad_config_names_the_file_and_the_field(tmp_path, change, field):
    config = {"settings": [{"name": "a", "photons": 1e4, "tv_weights": [1.0]}],
              "validation_sets": [{"name": "v", "files": ["v"]}], "test_sets": [{"name": "t", "files": ["a"]}], **change}
    with pytest.raises(ValueError, match=f"^cfg.json: {field}"):
        evaluation.check_config(config, "cfg.json")


def test_a_test_file_among_the_training_subjects_is_refused(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps({"train_subjects": ["a", ["b", "c"]], "val_subjects": ["v"]}))
    config = {"train_config": str(tmp_path / "train.json"), "tv_weights": [1.0],
              "settings": [{"name": "s", "photons": 1e4}], "test_sets": [{"name": "t", "files": ["d", "c"]}]}
    with pytest.raises(ValueError, match=r"cfg.json: test_sets\[0\]\.files: c is a training subject"):
        evaluation.check_config(config, "cfg.json")
    config["test_sets"][0]["files"] = ["v"]
    with pytest.raises(ValueError, match="v is a validation subject"):
        evaluation.check_config(config, "cfg.json")
    config["test_sets"][0]["files"] = ["d"]
    evaluation.check_config(config, "cfg.json")
    assert evaluation.validation_sets(config)["patients"]["files"] == ["v"]
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        load_config(tmp_path / "broken.json")


def test_items_are_the_bundle_protocols_seeded_per_setting(tmp_path):
    _volume(tmp_path / "test.nii.gz", 1)
    protocol = bundle_config(BUNDLE, {**TINY, "photons": 1e4}).get_parsed_content("protocol")
    entry = {"name": "phantom", "files": ["test.nii.gz"]}
    first = evaluation.test_items(entry, "a", protocol, {"slices_per_file": 3}, tmp_path)
    assert [(f, i) for f, i, _ in first] == [("test.nii.gz", 0), ("test.nii.gz", 1), ("test.nii.gz", 2)]
    assert first[0][2]["sinogram"].shape == (1, 8, protocol.operator.range_shape[-1])
    assert first[0][2]["target"].shape == (32, 32) and 0.03 < float(first[0][2]["target"].max()) < 0.04
    again = evaluation.test_items(entry, "a", protocol, {"slices_per_file": 1}, tmp_path)
    other = evaluation.test_items(entry, "b", protocol, {"slices_per_file": 1}, tmp_path)
    assert torch.equal(first[1][2]["sinogram"], again[0][2]["sinogram"])  # slice 1: the one picked alone
    assert not torch.equal(first[1][2]["sinogram"], other[0][2]["sinogram"])
    ellipses = evaluation.test_items({"name": "e", "ellipses": 2, "seed": 2}, "a", protocol, {}, tmp_path)
    bundle_phantom = protocol.phantoms(2, 2)[1]
    assert ellipses[1][0] == "ellipses_seed2_001"
    assert torch.equal(ellipses[1][2]["sinogram"], torch.as_tensor(bundle_phantom["sinogram"]).as_subclass(torch.Tensor))

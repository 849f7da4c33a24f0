"""The shared pieces of the test-set evaluations: file and set scores against NumPy, choices, config and summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rim_monai.experiments import heldout_evaluation as shared


@pytest.mark.parametrize("count, wanted, picks", [(10, 2, [3, 6]), (2, 3, [0, 1]), (5, 1, [2]), (3, 3, [0, 1, 2])])
def test_evenly_spaced(count, wanted, picks):
    assert shared.evenly_spaced(count, wanted) == picks


@pytest.mark.parametrize("scores, start, best, visited", [
    ([1, 2, 3, 4, 3, 2], 0, 3, [0, 1, 2, 3, 4]),
    ([1, 2, 3, 4, 3, 2], 5, 3, [2, 3, 4, 5]),
    ([5, 4, 3], 1, 0, [0, 1, 2]),
    ([1, 1, 1], 1, 0, [0, 1, 2]),  # a plateau: the first of equals, no endless walk
    ([7], 0, 0, [0]),
])
def test_climb_walks_to_the_best_of_a_unimodal_grid(scores, start, best, visited):
    seen = []
    assert shared.climb(list(range(len(scores))), start, lambda i: seen.append(i) or scores[i]) == best
    assert sorted(seen) == visited and len(seen) == len(set(seen))


def test_set_scores_are_file_psnr_with_the_files_maximum_then_the_mean_over_files():
    rng = np.random.default_rng(0)
    refs = {("a", 0): rng.random((8, 8)), ("a", 1): 2 * rng.random((8, 8)), ("b", 0): rng.random((8, 8))}
    preds = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in refs.items()}
    peak = {"a": max(refs[("a", 0)].max(), refs[("a", 1)].max()), "b": refs[("b", 0)].max()}
    cache = {f"test|s|x|{f}|{i}|m": {**shared.score(torch.from_numpy(preds[(f, i)]), torch.from_numpy(refs[(f, i)]),
                                                    peak[f]), "seconds": 1.0} for f, i in refs}
    result = shared.set_scores(cache, "test|s|x", "m")
    expected = []
    for file in ("a", "b"):
        keys = [k for k in refs if k[0] == file]
        mse = np.mean([np.square(preds[k] - refs[k]) for k in keys])
        expected.append(10 * np.log10(peak[file] ** 2 / mse))
    assert result["psnr"] == pytest.approx(np.mean(expected))
    assert result["files"] == 2 and set(result["slices"]) == {"a[0]", "a[1]", "b[0]"} and result["seconds"] == 1.0
    assert shared.set_scores(cache, "test|s|y", "m") is None and shared.set_scores(cache, "test|s", "m") is None
    assert shared.metric(None) != shared.metric(None)  # NaN


def test_choices_on_validation_with_the_oracle_beside_them():
    entry = lambda e: {"err2": e, "ref2": 1.0, "pixels": 1, "ssim": 1.0, "range": 1.0, "seconds": 0.0}  # noqa: E731
    cache = {"val|v|s|a|0|fbp@hann": entry(0.1), "val|v|s|a|0|fbp@ram-lak": entry(0.2),
             "test|t|s|b|0|fbp@hann": entry(0.3), "test|t|s|b|0|fbp@ram-lak": entry(0.1)}
    choice = shared.tuned_and_oracle(cache, "val|v|s", "test|t|s", {"hann": "fbp@hann", "ram-lak": "fbp@ram-lak"})
    assert (choice.value, choice.oracle, choice.at_edge) == ("hann", "ram-lak", False)  # names have no edge
    assert choice.scores["psnr"] == pytest.approx(10 * np.log10(1 / 0.3))
    empty = shared.tuned_and_oracle({}, "val|v|s", "test|t|s", {1.0: "tv@1"})
    assert empty.value is None and empty.scores is None and empty.oracle is None


def test_config_subjects_and_summary_files(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps({"val_subjects": ["a", ["b", "c"]]}))
    assert shared.subject_files(tmp_path / "train.json", "val_subjects") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="train.json: test_subjects"):
        shared.subject_files(tmp_path / "train.json", "test_subjects")
    with pytest.raises(ValueError, match="missing.json"):
        shared.load_config(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="list.json: expected a JSON object"):
        shared.load_config(tmp_path / "list.json")
    table = shared.write_summary(tmp_path, [{"set": "s", "psnr": 30.0}], ["set", "psnr"], {"k": 1}, "net", None,
                                 notes="a note\n", extra={"htc": []})
    assert table.splitlines()[0] == "| set | psnr |"
    text = (tmp_path / "evaluation.md").read_text()
    assert text.startswith("Network: net (models/model.pt)\nMachine: ") and text.endswith(f"{table}\n\na note\n")
    record = json.loads((tmp_path / "evaluation.json").read_text())
    assert record["rows"] == [{"set": "s", "psnr": 30.0}] and record["htc"] == [] and record["config"] == {"k": 1}


def test_worst_slice_margin_is_nan_until_both_cover_the_same_slices():
    net = {"slices": {"a[0]": 30.0, "a[1]": 25.0}}
    assert shared.worst_slice_margin(net, {"slices": {"a[0]": 20.0, "a[1]": 24.0}}) == pytest.approx(1.0)
    assert np.isnan(shared.worst_slice_margin(net, {"slices": {"a[0]": 20.0}}))  # the baseline run is not finished
    assert np.isnan(shared.worst_slice_margin(None, {"slices": {}}))


def test_network_overrides_parse_json_values_over_the_config():
    parser = shared.argument_parser("test", "bundles/mri_rim_recon", "rim")
    args = parser.parse_args(["--config", "c.json", "--out", "o", "--override", 'init="cg"', "--override", "steps=12",
                              "--override", "map_estimator=lowres"])
    merged = shared.network_overrides({"bundle_overrides": {"steps": 8, "coils": 4}}, args.override)
    assert merged == {"steps": 12, "coils": 4, "init": "cg", "map_estimator": "lowres"}
    assert shared.network_overrides({}, []) == {}
    with pytest.raises(ValueError, match="^--override: expected KEY=VALUE, got 'steps'"):
        shared.network_overrides({}, ["steps"])

import json
import math

import pytest

from rim_monai.experiments.bundle_evaluation import main, summarise


def test_summarise_averages_per_setting_and_method():
    rows = [
        {"setting": "a", "method": "recon", "psnr": 30.0, "ssim": 0.9, "nmse": 0.01, "seconds_per_slice": 0.5},
        {"setting": "a", "method": "recon", "psnr": 32.0, "ssim": 0.8, "nmse": 0.03, "seconds_per_slice": 1.5},
        {"setting": "a", "method": "tv", "psnr": 28.0, "ssim": 0.7, "nmse": 0.05, "seconds_per_slice": float("nan")},
    ]
    table = summarise(rows)
    assert [(r["setting"], r["method"], r["files"]) for r in table] == [("a", "recon", 2), ("a", "tv", 1)]
    assert table[0]["psnr"] == 31.0 and table[0]["seconds_per_slice"] == 1.0
    assert math.isnan(table[1]["seconds_per_slice"])


def test_settings_must_be_a_named_list(tmp_path):
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"name": "not a list"}))
    with pytest.raises(ValueError, match="settings: expected a JSON list"):
        main(["--bundle", str(tmp_path), "--settings", str(settings), "--out", str(tmp_path / "out")])


def test_data_placeholder_is_replaced_everywhere_in_the_overrides():
    from rim_monai.experiments.bundle_evaluation import with_data_folder

    overrides = {"dataset_dir": "{data}/mri", "test_files": ["a.dcm"], "nested": {"f": ["{data}/b.h5", 3]}, "k": 4}
    assert with_data_folder(overrides, "/scans") == {
        "dataset_dir": "/scans/mri", "test_files": ["a.dcm"], "nested": {"f": ["/scans/b.h5", 3]}, "k": 4}


def test_shipped_settings_never_climb_out_of_the_repository():
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[2] / "configs").glob("*_evaluation.json"):
        text = path.read_text()
        assert "/../" not in text and "shared/data" not in text, path

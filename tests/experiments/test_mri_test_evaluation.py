"""The MRI test-set evaluation on tiny synthetic sets: tuning on validation only, oracle, cache reuse, bad input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import scipy.io

from rim_monai.experiments import mri_test_evaluation as evaluation


def _volume(path, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    volume = np.stack([((yy - 16) ** 2 + (xx - 16) ** 2 < (8 + k) ** 2) * (1 + rng.random()) for k in range(4)], -1)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), np.diag([1.0, 1.0, 2.0, 1.0])), str(path))


def _config(tmp_path):
    _volume(tmp_path / "val.nii.gz", 0)
    _volume(tmp_path / "test.nii.gz", 1)
    image = np.zeros((32, 32), np.complex64)
    image[8:24, 10:22] = 1.0
    np.save(tmp_path / "raw.npy", np.fft.fftshift(np.fft.fft2(np.stack([image, 0.5 * image]))).astype(np.complex64))
    config = {
        "validation_files": ["val.nii.gz"], "snr_db": 40.0, "mask_func": "random", "map_estimator": "lowres",
        "slices_per_file": 2, "max_size": 32, "tv_weights": [0.002, 0.2], "tv_iterations": 20,
        "settings": [{"name": "8coil_4x", "coils": 8, "acceleration": 4},
                     {"name": "measured_4x", "acceleration": 4, "tune_on": "8coil_4x"}],
        "test_sets": [{"name": "phantom", "files": ["test.nii.gz"], "settings": ["8coil_4x"]},
                      {"name": "raw", "kspace": "raw.npy", "settings": ["measured_4x"]}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path / "config.json"


def test_table_tunes_tv_on_validation_and_reuses_the_cache(tmp_path):
    config, out = _config(tmp_path), tmp_path / "out"
    evaluation.main(["--config", str(config), "--out", str(out), "--data", str(tmp_path), "--methods", "baselines"])
    cache = json.loads((out / "cache.json").read_text())
    assert not any(key.endswith("|rim") for key in cache)
    assert any(key.startswith("val|validation|8coil_4x|val.nii.gz|") for key in cache)
    rows = json.loads((out / "evaluation.json").read_text())["rows"]
    assert [(r["set"], r["setting"]) for r in rows] == [("phantom", "8coil_4x"), ("raw", "measured_4x")]
    for row in rows:
        assert row["c_val"] in (0.002, 0.2) and row["tv_oracle"] >= row["tv_val"] - 1e-9
        assert np.isnan(row["rim"])
    assert (out / "kspace" / "raw.h5").exists()  # the measured k-space in the fastMRI layout
    evaluation.main(["--config", str(config), "--out", str(out), "--data", str(tmp_path), "--methods", "rim",
                     "--label", "shipped", "--override", "padding_mode=circular"])
    after = json.loads((out / "cache.json").read_text())
    new = set(after) - set(cache)
    assert new and all(key.endswith("|shipped") for key in new)
    assert all(after[key] == cache[key] for key in cache)  # the baselines were not recomputed
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["config"]["bundle_overrides"]["padding_mode"] == "circular"  # the overrides used are recorded
    rows = summary["rows"]
    assert all(np.isfinite(r["rim"]) and np.isfinite(r["worst_slice_rim_minus_zf"]) for r in rows)


def test_measured_kspace_layouts_and_errors(tmp_path):
    np.save(tmp_path / "twix.npy", np.ones((2, 10, 20), np.complex64))
    assert evaluation.measured_kspace(tmp_path / "twix.npy").shape == (1, 2, 20, 10)  # phase encodes last
    scipy.io.savemat(tmp_path / "frames.mat", {"kdata": np.ones((16, 12, 3), np.complex128)})
    assert evaluation.measured_kspace(tmp_path / "frames.mat").shape == (3, 1, 16, 12)
    np.save(tmp_path / "real.npy", np.ones((2, 10, 20), np.float32))
    with pytest.raises(ValueError, match="real.npy"):
        evaluation.measured_kspace(tmp_path / "real.npy")
    with pytest.raises(ValueError, match=r"\.png"):
        evaluation.measured_kspace(tmp_path / "k.png")


def test_settings_option_runs_only_those_rows_and_their_validation(tmp_path):
    config, out = _config(tmp_path), tmp_path / "out"
    evaluation.main(["--config", str(config), "--out", str(out), "--data", str(tmp_path), "--methods", "baselines",
                     "--settings", "measured_4x"])
    cache = json.loads((out / "cache.json").read_text())
    assert {key.split("|")[1] for key in cache if key.startswith("test|")} == {"raw"}
    assert any(key.startswith("val|validation|8coil_4x|") for key in cache)  # measured_4x tunes on 8coil_4x
    rows = json.loads((out / "evaluation.json").read_text())["rows"]
    assert [(r["set"], r["setting"]) for r in rows] == [("raw", "measured_4x")]
    with pytest.raises(ValueError, match="--settings"):
        evaluation.main(["--config", str(config), "--out", str(out), "--data", str(tmp_path), "--settings", "1coil_9x"])

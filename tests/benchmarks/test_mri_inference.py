"""The inference-speed benchmark of the MRI bundle runs every contender on a tiny slice and reports wall time."""

from __future__ import annotations

import json

import pytest

from rim_monai.benchmarks.mri_inference import CONTENDERS, build_call, main


def test_quick_run_writes_every_contender(tmp_path):
    report = main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    assert set(report["results"]) == set(CONTENDERS)
    assert all(r["wall_s_per_iteration"] > 0 for r in report["results"].values())
    assert json.loads((tmp_path / "mri_inference.json").read_text())["size"] == 64
    assert "s / slice" in (tmp_path / "mri_inference.md").read_text()


def test_a_call_reconstructs_the_slice_and_unknown_contenders_are_named():
    image = build_call("steps_8", 32, 2, 4.0)()
    assert image.shape == (1, 1, 32, 32) and image.is_complex()
    with pytest.raises(ValueError, match="^contender"):
        build_call("fastest", 32, 2, 4.0)

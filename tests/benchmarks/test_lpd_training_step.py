"""The training-speed benchmark of the CT bundle's learned primal-dual runs and reports every contender (tiny sizes)."""

from __future__ import annotations

import json

from rim_monai.benchmarks.lpd_training_step import CONTENDERS, main


def test_quick_run_writes_every_contender(tmp_path):
    report = main(["--quick", "--out", str(tmp_path)])
    results = report["results"]
    assert set(CONTENDERS) <= set(results)
    assert all(results[name]["iterations_per_cpu_minute"] > 0 for name in CONTENDERS)
    assert results["v1"]["speedup_per_iteration"] == 1.0
    assert results["v2_128"]["images_per_cpu_minute"] == 4 * results["v2_128"]["iterations_per_cpu_minute"]
    assert json.loads((tmp_path / "lpd_training_step.json").read_text())["scale"] == 8
    assert "iterations / CPU-minute" in (tmp_path / "lpd_training_step.md").read_text()

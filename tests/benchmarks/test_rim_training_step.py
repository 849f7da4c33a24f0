"""The training-speed benchmark of the MRI bundle's RIM runs and reports every contender (tiny sizes)."""

from __future__ import annotations

import json

from rim_monai.benchmarks.rim_training_step import main


def test_quick_run_writes_every_contender(tmp_path):
    report = main(["--quick", "--batch", "1", "--coils", "2", "--out", str(tmp_path)])
    results = report["results"]
    assert all(results[name]["iterations_per_cpu_minute"] > 0 for name in ("float32", "fast", "fast_circular"))
    assert results["speedup"] > 0
    assert json.loads((tmp_path / "rim_training_step.json").read_text())["coils"] == 2
    assert "iterations / CPU-minute" in (tmp_path / "rim_training_step.md").read_text()

"""Smoke tests of ``rim_monai.experiments.adaptation_evidence`` (the measured runs themselves are too slow for CI)."""

import json

import pytest
import torch

from rim_monai.experiments.adaptation_evidence import CASES, evaluate, run_case, write_results


def test_cases_cover_the_issue_drifts():
    assert set(CASES) == {"ct_views", "ct_shift", "mri_equispaced8"}
    assert CASES["ct_shift"]["shift_bins"] == 1.5


def test_unknown_case_raises():
    with pytest.raises(ValueError, match="case"):
        run_case("fan_beam")


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_evaluate_orders_noise_levels(dtype):
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 1, 16, 16, generator=g).to(dtype)
    small = evaluate(ref + 0.01 * torch.randn(2, 1, 16, 16, generator=g), ref, "per_image")
    large = evaluate(ref + 0.1 * torch.randn(2, 1, 16, 16, generator=g), ref, "per_image")
    assert small["psnr"] > large["psnr"] + 10
    assert small["ssim"] > large["ssim"]


def test_write_results_atomic_json_and_table(tmp_path):
    record = {"case": "ct_shift", "description": "d", "num_samples": 2, "metric_protocol": "per_image",
              "settings": {"steps": 1}, "machine": "m", "total_wall_s": 1.0,
              "methods": {"swapped_A1": {"psnr": 30.0, "ssim": 0.8, "wall_s": 1.0}},
              "true_shift_bins": 1.5, "estimated_shift_bins": 1.52, "shift_error_bins": 0.02}
    js, md = write_results(record, tmp_path / "out")
    assert json.loads(js.read_text()) == record
    text = md.read_text()
    assert "| swapped_A1 | 30.00 | 0.800 | 1.0 |" in text and "1.520 bins" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ct_shift.json", "ct_shift.md"]

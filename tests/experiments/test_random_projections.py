"""The random-projection convergence experiment: its operators, training stream, table and a seconds-long
``--quick`` run (synthetic images, and the real BSDS300 folders when ``../shared/data`` is present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rim_monai.experiments.random_projections import (
    ENSEMBLES,
    MEASUREMENTS,
    NoisyPatches,
    PatchSampler,
    RealImageView,
    build_operator,
    convergence_table,
    load_config,
    main,
    report_steps,
    synthetic_images,
)
from rim_monai.operators import RealImageView as OperatorsRealImageView

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "random_projections.json"
DATA = REPO.parent / "shared" / "data"
BSDS = DATA / "bsds300" / "images"


@pytest.mark.parametrize("ensemble, shape", [("gaussian", (64,)), ("bernoulli", (64,)), ("fourier", (64, 2))])
def test_build_operator_shapes(ensemble, shape):
    A = build_operator(ensemble, 0.25, (16, 16), seed=0)
    assert A.range_shape == shape
    assert A(torch.rand(2, 1, 16, 16)).shape == (2, 1, *shape)


def test_build_operator_rejects_unknown_ensemble():
    with pytest.raises(ValueError, match="ensemble"):
        build_operator("hadamard", 0.25)


def test_report_steps():
    assert report_steps(10) == [1, 5, 10, 20]
    assert report_steps(1) == [1, 2]


def test_config_quick_overrides():
    full, quick = load_config(CONFIG), load_config(CONFIG, quick=True)
    assert "quick" not in full and full["train"]["steps"] >= quick["train"]["steps"]
    assert quick["problem"] == full["problem"] and quick["data"]["patch_size"] == 32


def _check_outputs(out: Path, cfg: dict) -> dict:
    name = cfg["output"]["name"]
    results = json.loads((out / f"{name}.json").read_text())
    T = cfg["train"]["steps"]
    assert list(results["ensembles"]) == list(ENSEMBLES)
    for ens, res in results["ensembles"].items():
        assert set(res["baselines"]) == {"start", "tikhonov"}
        assert list(res["models"]) == ["rim", "gdn", "ffn"]
        for model in res["models"].values():
            assert len(model["psnr_mean"]) == len(model["psnr_std"]) == 2 * T
            assert all(np.isfinite(model["psnr_mean"])) and min(model["psnr_std"]) >= 0
            assert model["training"]["iterations"] == cfg["train"]["iterations"]
    table = (out / f"{name}.md").read_text().splitlines()
    assert len(table) == 2 + 5 * len(ENSEMBLES) and all(f"t = {t}" in table[0] for t in report_steps(T))
    png = (out / f"{name}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary file
    return results


def test_quick_run_synthetic(tmp_path):
    override = {"output": {"name": "smoke"}, "train": {"max_seconds_per_model": None}}
    args = ["--config", str(CONFIG), "--quick", "--synthetic", "--output-dir", str(tmp_path), "--override", json.dumps(override)]
    assert main(args) == 0
    cfg = load_config(CONFIG, quick=True)
    cfg["output"]["name"] = "smoke"
    results = _check_outputs(tmp_path, cfg)
    assert results["data"]["source"].startswith("synthetic")
    assert results["settings"]["train"]["max_seconds_per_model"] is None


@pytest.mark.parametrize("override", ["[1, 2]", "{not json"])
def test_bad_override(override, tmp_path):
    with pytest.raises(ValueError, match="override"):
        main(["--config", str(CONFIG), "--quick", "--synthetic", "--output-dir", str(tmp_path), "--override", override])


@pytest.mark.skipif(not (BSDS / "train").is_dir(), reason="../shared/data/bsds300 is absent")
def test_quick_run_bsds300(tmp_path):
    cfg = load_config(CONFIG)
    cfg.pop("description", None)
    quick = json.loads(CONFIG.read_text())["quick"]
    quick["data"].update(train_dir=str(BSDS / "train"), test_dir=str(BSDS / "test"), max_images=2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg, "quick": quick}))
    assert main(["--config", str(path), "--quick", "--output-dir", str(tmp_path / "out")]) == 0
    results = _check_outputs(tmp_path / "out", load_config(path, quick=True))
    assert results["data"]["train_images"] == 2 and results["data"]["train_grid_patches"] > 1000


def test_real_image_view_is_the_operators_one():
    assert RealImageView is OperatorsRealImageView
    assert isinstance(build_operator("fourier", 0.25, (8, 8)), RealImageView)


def test_noisy_patches_stream_is_seeded():
    sampler = PatchSampler(synthetic_images(2, (40, 40)), patch=32, stride=4)
    A = build_operator("gaussian", 0.1, (32, 32))

    def stream():
        return NoisyPatches(sampler, A, 0.5, 3, np.random.default_rng(0), torch.Generator().manual_seed(0))

    a, b = next(stream()), next(stream())
    assert a["target"].shape == (3, 1, 32, 32) and a[MEASUREMENTS].shape == (3, 1, 102)
    torch.testing.assert_close(a[MEASUREMENTS], b[MEASUREMENTS])
    noise = a[MEASUREMENTS] - A(a["target"])
    assert 0.3 < float(noise.std()) < 0.7


def test_convergence_table_has_the_report_steps_and_baselines():
    model = {"psnr_mean": [10.0, 11.0, 12.0, 11.5], "psnr_std": [1.0] * 4,
             "training": {"parameters": 1234, "iterations": 5, "patches_seen": 20, "seconds": 3.2}}
    base = {"start": {"mean": 7.0, "std": 0.5}, "tikhonov": {"mean": 9.0, "std": 0.4, "lam": 10.0}}
    results = {"settings": {"train": {"steps": 2}}, "ensembles": {"gaussian": {"models": {"rim": model},
                                                                               "baselines": base}}}
    lines = convergence_table(results).splitlines()
    assert lines[0] == "| ensemble | model | parameters | Adam steps (patches) | train s | t = 1 | t = 2 | t = 4 | best t |"
    assert lines[2] == "| gaussian | RIM | 1,234 | 5 (20) | 3 | 10.00 ± 1.00 | 11.00 ± 1.00 | 11.50 ± 1.00 | 3 |"
    assert lines[3].startswith("| gaussian | start A^H y/‖A‖² | – | – | – | 7.00 ± 0.50 |")
    assert "Tikhonov (λ = 10)" in lines[4]

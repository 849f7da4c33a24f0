"""The random-projection convergence experiment: its operator view, patch sampling, image loading and a seconds-long
``--quick`` run (synthetic images, and the real BSDS300 folders when ``../shared/data`` is present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rim_monai.experiments.random_projections import (
    ENSEMBLES,
    PatchSampler,
    RealImageView,
    build_operator,
    load_config,
    load_grey_images,
    main,
    report_steps,
    synthetic_images,
)
from rim_monai.operators import RandomProjection

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "random_projections.json"
DATA = REPO.parent / "shared" / "data"
BSDS = DATA / "bsds300" / "images"


def _dense(op, shape, dtype=torch.float64):
    """The matrix of a real linear map, column by column."""
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=dtype).reshape(n, 1, *shape)
    return op(basis).reshape(n, -1).T


def test_real_image_view_matches_stacked_matrix_and_adjoint():
    inner = RandomProjection((4, 4), 0.5, ensemble="fourier", seed=3)
    B = RealImageView(inner)
    assert B.range_shape == (8, 2) and not B.domain_is_complex and not B.range_is_complex
    phi = inner.matrix
    expected = torch.stack([phi.real, phi.imag], dim=1).reshape(8 * 2, 16)  # rows ordered (measurement, re/im)
    torch.testing.assert_close(_dense(B, (4, 4)), expected)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randn(3, 1, 8, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close((B(x) * y).sum(), (x * B.adjoint(y)).sum())


def test_real_image_view_rejects_real_operator():
    with pytest.raises(ValueError, match="op"):
        RealImageView(RandomProjection((4, 4), 0.5, ensemble="gaussian"))


@pytest.mark.parametrize("ensemble, shape", [("gaussian", (64,)), ("bernoulli", (64,)), ("fourier", (64, 2))])
def test_build_operator_shapes(ensemble, shape):
    A = build_operator(ensemble, 0.25, (16, 16), seed=0)
    assert A.range_shape == shape
    assert A(torch.rand(2, 1, 16, 16)).shape == (2, 1, *shape)


def test_build_operator_rejects_unknown_ensemble():
    with pytest.raises(ValueError, match="ensemble"):
        build_operator("hadamard", 0.25)


def test_patch_sampler_draws_grid_patches():
    widths = (44, 36)
    images = [np.arange(40 * 44, dtype=np.float32).reshape(40, 44), 10_000 + np.arange(36 * 36, dtype=np.float32).reshape(36, 36)]
    sampler = PatchSampler(images, patch=32, stride=4)
    assert sampler.grid_size == 3 * 4 + 2 * 2
    patches = sampler.sample(300, np.random.default_rng(0)).numpy()
    assert patches.shape == (300, 1, 32, 32)
    seen = set()
    for p in patches[:, 0]:
        i = int(p[0, 0] >= 10_000)  # the top-left value encodes the image and the position
        r, c = divmod(int(p[0, 0]) - 10_000 * i, widths[i])
        assert r % 4 == 0 and c % 4 == 0 and np.array_equal(p, images[i][r : r + 32, c : c + 32])
        seen.add((i, r, c))
    assert len(seen) == sampler.grid_size  # 300 draws from 16 grid patches reach all of them


def test_patch_sampler_rejects_small_images():
    with pytest.raises(ValueError, match="images"):
        PatchSampler([np.zeros((20, 40), np.float32)], patch=32)


def test_load_grey_images_bt601(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    (grey,) = load_grey_images(tmp_path)
    expected = (rgb / 255.0) @ np.array([0.298936, 0.587043, 0.114021])
    np.testing.assert_allclose(grey, expected, atol=1e-6)
    pil = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255.0  # PIL's integer BT.601
    np.testing.assert_allclose(grey, pil, atol=1.0 / 255)


def test_load_grey_images_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        load_grey_images(tmp_path / "nowhere")


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

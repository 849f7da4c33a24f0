"""Pure helpers of the peer benchmark: they run without deepinv, sigpy or fastMRI (and without ../shared/data)."""

from __future__ import annotations

import math

import pytest
import torch

from rim_monai.benchmarks.peers_data import (
    align_scale,
    area_downsample,
    hu_to_attenuation,
    poisson_sinogram,
    require_file,
)
from rim_monai.benchmarks.peers_operators import adjoint_error, alternating_medians
from rim_monai.benchmarks.peers_report import fmt, markdown_table, ratio, to_markdown
from rim_monai.benchmarks.peers_tv import (
    Contender,
    convergence_run,
    iterations_to_reach,
    project_tv,
    search_weight,
    tv_anisotropic_periodic,
    tv_isotropic,
    tv_real_imag,
)


# ------------------------------------------------------------------------------------------------ adjoint error
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_adjoint_error_of_an_exact_pair_is_rounding(dtype):
    g = torch.Generator().manual_seed(0)
    m = torch.randn(40, 30, generator=g).to(dtype)
    x, y = torch.randn(30, generator=g).to(dtype), torch.randn(40, generator=g).to(dtype)
    assert adjoint_error(lambda v: m @ v, lambda w: m.conj().T @ w, x, y) < 1e-6


def test_adjoint_error_detects_a_wrong_adjoint():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(20, 20, generator=g)
    x, y = torch.randn(20, generator=g), torch.randn(20, generator=g)
    assert adjoint_error(lambda v: m @ v, lambda w: 1.1 * (m.T @ w), x, y) > 1e-3
    assert adjoint_error(lambda v: m @ v, lambda w: m @ w, x, y) > 1e-3  # not symmetric


def test_adjoint_error_checks_shapes():
    m = torch.randn(5, 3)
    with pytest.raises(ValueError, match="y: expected the shape of forward"):
        adjoint_error(lambda v: m @ v, lambda w: torch.zeros(3), torch.randn(3), torch.randn(4))
    with pytest.raises(ValueError, match="x: expected the shape of adjoint"):
        adjoint_error(lambda v: m @ v, lambda w: torch.zeros(2), torch.randn(3), torch.randn(5))


def test_adjoint_error_zero_vectors():
    m = torch.randn(4, 4)
    assert adjoint_error(lambda v: m @ v, lambda w: m.T @ w, torch.zeros(4), torch.randn(4)) == 0.0


def test_alternating_medians_times_every_method():
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1
        return fn

    seconds = alternating_medians({"a": make("a"), "b": make("b")}, min_time=0.003, rounds=3)
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())
    assert calls["a"] >= 3 * 4 and calls["b"] >= 3 * 4  # each round: a warm-up and at least 3 repeats


# ------------------------------------------------------------------------------------------------ data helpers
def test_hu_to_attenuation():
    hu = torch.tensor([-3024.0, -1000.0, 0.0, 1000.0])
    torch.testing.assert_close(hu_to_attenuation(hu), torch.tensor([0.0, 0.0, 0.02, 0.04]))


def test_area_downsample_is_block_mean():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = area_downsample(x, 2)
    torch.testing.assert_close(out, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert float(area_downsample(x, 1)) == pytest.approx(7.5)


def test_poisson_sinogram_is_seeded_unbiased_and_clamped():
    p = torch.full((1, 1, 50, 80), 0.1)
    a, b = poisson_sinogram(p, 1e6, 2.0, seed=3), poisson_sinogram(p, 1e6, 2.0, seed=3)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, poisson_sinogram(p, 1e6, 2.0, seed=4))
    assert float(a.mean()) == pytest.approx(0.1, rel=1e-3)
    # no photon arrives: counts clamped to 0.1, y = -log(0.1 / I0) / s, finite
    dark = poisson_sinogram(torch.full((1, 1, 2, 2), 1e4), 10.0, 1.0)
    torch.testing.assert_close(dark, torch.full_like(dark, -math.log(0.1 / 10.0)))


def test_align_scale_is_least_squares_per_sample():
    ref = torch.rand(2, 1, 6, 6) + 0.1
    est = torch.stack([3.0 * ref[0], 0.5 * ref[1]])
    torch.testing.assert_close(align_scale(est, ref), ref)


def test_require_file_names_the_missing_file(tmp_path):
    (tmp_path / "here.txt").write_text("x")
    assert require_file(tmp_path, "here.txt") == tmp_path / "here.txt"
    with pytest.raises(FileNotFoundError, match=r"ct/missing\.dcm: missing.*--data-dir"):
        require_file(tmp_path, "ct/missing.dcm")


# ------------------------------------------------------------------------------------------------ convergence
@pytest.mark.parametrize("psnrs, tol, expected", [
    ([30.0], 0.01, 1),
    ([10.0, 20.0, 29.995, 30.02, 30.0], 0.01, 5),
    ([10.0, 29.995, 30.005, 30.0], 0.01, 2),
    ([29.0, 31.0, 30.0, 30.0, 30.0], 0.01, 3),
    ([10.0, 29.995, 30.005, 30.0], 0.001, 4),
])
def test_iterations_to_reach(psnrs, tol, expected):
    assert iterations_to_reach(psnrs, tol) == expected


def test_iterations_to_reach_needs_values():
    with pytest.raises(ValueError, match="psnrs"):
        iterations_to_reach([])


@pytest.mark.parametrize("best", [0.3, 0.05, 20.0, 0.0004, 0.0125])
def test_search_weight_finds_the_peak_and_extends_edges(best):
    calls: list[float] = []

    def run(factor: float) -> dict:
        calls.append(factor)
        return {"psnr": 40.0 - math.log2(factor / best) ** 2}

    factor, runs = search_weight(run)
    assert abs(math.log2(factor / best)) <= 0.25 + 1e-9  # within half of the final sqrt(2) step
    assert runs[factor]["psnr"] == max(r["psnr"] for r in runs.values())
    assert len(calls) == len(runs) == len({round(math.log2(c), 6) for c in calls})  # no factor runs twice
    assert list(runs) == sorted(runs)


def test_convergence_run_records_psnr_and_time():
    def solve(lams, iterations, callback=None):
        for k in range(1, iterations + 1):
            x = torch.full((1, 1, 2, 2), 30.0 - 10.0 / k)
            if callback is not None:
                callback(k, x)
        return x

    def score(x, with_ssim=False):
        out = {"psnr": x.reshape(x.shape[0], -1)[:, 0].double()}
        if with_ssim:
            out["ssim"] = torch.ones(x.shape[0])
        return out

    contender = Contender("fake", "none", solve, regulariser=lambda x: x.reshape(x.shape[0], -1).sum(dim=1))
    run = convergence_run(contender, lam=0.5, iterations=2000, score=score, tol_db=0.01,
                          data_term=lambda x: torch.ones(x.shape[0]))
    # 30 − 10/k is within 0.01 of 30 − 10/2000 = 29.995 from k = 10 / 0.015 ≈ 667 on
    assert run["iterations_to_target"] == 667
    assert run["psnr"] == pytest.approx(29.995) and run["ssim"] == 1.0
    assert run["objective"] == pytest.approx(1.0 + 0.5 * 4 * 29.995)
    assert set(run["psnr_at"]) == {"10", "20", "50", "100", "200", "500", "1000", "2000"}
    assert 0 <= run["seconds_at"]["10"] <= run["seconds_at"]["2000"] <= run["seconds_total"] + 1e-9
    assert run["seconds_to_target"] <= run["seconds_total"] + 1e-9


def test_project_tv_contender_batches_the_weights():
    from rim_monai.operators import Identity

    y = torch.zeros(1, 1, 12, 12)
    y[..., 3:9, 3:9] = 1.0
    y = y + 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    contender = project_tv(y, Identity((12, 12)))
    seen = []
    x = contender.solve([0.0, 0.1, 10.0], 30, lambda k, xk: seen.append((k, xk.shape)))
    assert x.shape == (3, 1, 12, 12)
    assert seen[-1] == (30, (3, 1, 12, 12))
    torch.testing.assert_close(x[0], y[0], atol=1e-5, rtol=0)  # λ = 0: the data itself
    assert float(x[2].std()) < float(x[1].std()) < float(y.std())  # more weight, flatter image
    tv = contender.regulariser(x)
    assert tv.shape == (3,) and float(tv[2]) < float(tv[1]) < float(tv[0])


def test_tv_definitions():
    x = torch.zeros(2, 1, 6, 6, dtype=torch.complex64)
    x[0, ..., 3:, :] = 1.0        # one real horizontal edge: isotropic TV 6, periodic anisotropic 12
    x[1, ..., :, 2:] = 1.0 + 1.0j  # one complex vertical edge of modulus sqrt(2)
    torch.testing.assert_close(tv_isotropic(x), torch.tensor([6.0, 6 * math.sqrt(2)]))
    torch.testing.assert_close(tv_real_imag(x), torch.tensor([6.0, 12.0]))
    torch.testing.assert_close(tv_anisotropic_periodic(x), torch.tensor([12.0, 12 * math.sqrt(2)]))
    real = x.real.contiguous()
    torch.testing.assert_close(tv_real_imag(real), tv_isotropic(real))


# ------------------------------------------------------------------------------------------------ report
def test_fmt_ratio_table():
    assert fmt(3.14159) == "3.14" and fmt(2.5e-7) == "2.5e-07" and fmt(0.0) == "0" and fmt(None) == "–"
    assert fmt(7) == "7" and fmt(0.123456, 4) == "0.1235"
    assert ratio(10.0, 4.0) == "2.5x" and ratio(1.0, 2.0) == "0.50x" and ratio(1.0, 0.0) == "–"
    assert markdown_table(["a", "b"], [["x", 1.5]]) == ["| a | b |", "| --- | --- |", "| x | 1.50 |"]


def _tv_row(name: str, psnr: float, seconds: float) -> dict:
    return {"name": name, "objective_definition": "obj", "objective": 7.5, "settings": {}, "weight_factor": 0.2,
            "lam": 0.15,
            "grid": {"0.05": psnr - 1, "0.2": psnr}, "grid_objective": {"0.05": 8.0, "0.2": 7.5}, "psnr": psnr, "ssim": 0.9, "iterations": 2000,
            "iterations_to_target": 300, "seconds_to_target": seconds, "seconds_total": 3 * seconds,
            "seconds_per_iteration": seconds / 300, "psnr_at": {"100": psnr - 0.1, "500": psnr, "2000": psnr},
            "seconds_at": {"100": seconds / 3, "2000": 3 * seconds}}


def synthetic_result() -> dict:
    """A result dictionary with every part, as :func:`rim_monai.benchmarks.peers.run` returns it."""
    ct_names = ["rim_monai RayTransform (matrix)", "deepinv Tomography", "ODL OperatorModule"]
    mri_names = ["rim_monai MaskedFourier", "deepinv MultiCoilMRI", "fastMRI SENSE (fft2c)"]
    timing = lambda names, base: [{"batch": b, "seconds": {n: base * b * (i + 1) for i, n in enumerate(names)}}
                                  for b in (1, 8, 32)]
    tv_setup = {"size": 128, "views": 60, "photons": 1e4, "image": "slice", "pixel_mm": 2.6, "geometry": "parallel",
                "detectors": 182, "noise": "Poisson", "seed": 0, "psnr": "max - min", "weight_unit": 0.75,
                "iterations": 2000, "tol_db": 0.01}
    mri_setup = {"data": "BART", "shape": [180, 230], "coils": 8, "sampled_fraction": 0.127, "maps": "ESPIRiT",
                 "espirit_seconds": 0.4, "reference": "img", "psnr": "volume", "weight_unit": 2.5e11,
                 "iterations": 2000, "tol_db": 0.01}
    return {
        "command": "python -m rim_monai.benchmarks.peers", "date": "2026-12-05 12:00", "quick": False,
        "machine": {"cpu": "CPU", "cores": 2, "torch": "2.14.1", "torch_threads": 1},
        "versions": {"torch": "2.14.1", "deepinv": "0.5.0", "sigpy": None},
        "load": {"start": [1.0, 1.0, 1.0], "tv_ct": [2.0, 1.5, 1.0], "end": [1.0, 1.0, 1.0]},
        "seconds": {"ct_operator": 10.0},
        "ct_operator": {"size": 128, "views": 60, "notes": {n: "note" for n in ct_names},
                        "adjoint_error": {n: 1e-7 for n in ct_names}, "rows": timing(ct_names, 1e-3)},
        "mri_operator": {"size": 320, "coils": 8, "notes": {n: "layout" for n in mri_names},
                         "agreement": {n: {"forward": 0.0, "adjoint": 1e-8} for n in mri_names},
                         "adjoint_error": {n: 1e-8 for n in mri_names}, "rows": timing(mri_names, 2e-3)},
        "tv_ct": {"setup": tv_setup, "baselines": {"FBP (Hann)": {"psnr": 24.0, "ssim": 0.7}},
                  "rows": [_tv_row("rim_monai tv_pdhg", 28.8, 2.0), _tv_row("deepinv FISTA + TVPrior", 28.8, 6.0),
                           _tv_row("sigpy LinearLeastSquares TV", 27.9, 4.0)],
                  "deepinv_defaults": {"iterations": 100, "defaults": {"seconds": 50.0, "psnr": 28.7},
                                       "run_setting": {"TVPrior def_crit": 1e-5, "seconds": 5.0, "psnr": 28.7}}},
        "tv_mri": {"setup": mri_setup,
                   "rows": [_tv_row("rim_monai tv_pdhg", 36.4, 10.0), _tv_row("deepinv FISTA + TVPrior", 36.0, 30.0),
                            _tv_row("sigpy TotalVariationRecon", 35.0, 20.0),
                            _tv_row("sigpy L1WaveletRecon (not TV)", 34.0, 15.0)]},
        "learned": {"bundle": "bundles/mri_rim_recon", "rows": [
            {"name": "zero-filled", "psnr": 25.2, "ssim": 0.8, "seconds": 1e-3, "note": "A^H y"},
            {"name": "RIM (bundle, low-res maps)", "psnr": 32.4, "ssim": 0.9, "seconds": 0.5, "note": "bundle"},
            {"name": "rim_monai tv_pdhg, best weight", "psnr": 36.4, "ssim": 0.95, "seconds": 10.0, "note": "c"}]},
    }


def test_to_markdown_has_every_section_and_ratio():
    text = to_markdown(synthetic_result())
    for heading in ("## Set-up", "## 1. CT operator", "## 2. MRI operator", "## 3a. TV on a real CT slice",
                    "## 3b. TV on the real BART brain", "## 4. Learned vs classical", "## What is and is not"):
        assert heading in text
    assert "pip install torch==2.14.1 torchvision==0.29.1" in text
    assert "| 8 | 8.00 | 16.00 | 24.00 | 2.0x | 3.0x |" in text  # ms per call and the project's speed-ups
    assert "deepinv FISTA + TVPrior reaches 28.80 dB (+0.00 dB from the project's)" in text
    assert "3.0x the project's time" in text
    assert "at c = 0.200 they end at 7.5 and 7.5 (deepinv +0.0e+00 relative" in text
    assert "The RIM's best (RIM (bundle, low-res maps), 32.40 dB) is 4.00 dB below it." in text
    assert "Quick run" not in text


def test_to_markdown_with_parts_skipped():
    result = synthetic_result()
    for key in ("ct_operator", "mri_operator", "tv_ct", "tv_mri", "learned"):
        del result[key]
    result["quick"] = True
    text = to_markdown(result)
    assert "Quick run" in text and "## 1. CT operator" not in text and "## Set-up" in text


def test_to_markdown_flags_a_loaded_machine():
    result = synthetic_result()
    assert "The machine was loaded" not in to_markdown(result)
    result["load"]["tv_ct"] = [3.5, 2.0, 1.5]
    assert "The machine was loaded during this run** (1-minute load up to 3.50 on 2 cores" in to_markdown(result)


def test_report_only_rewrites_the_page(tmp_path):
    import json

    from rim_monai.benchmarks.peers import main

    (tmp_path / "peers.json").write_text(json.dumps(synthetic_result()))
    main(["--report-only", str(tmp_path / "peers.json"), "--out", str(tmp_path)])
    assert (tmp_path / "peers.md").read_text() == to_markdown(synthetic_result())

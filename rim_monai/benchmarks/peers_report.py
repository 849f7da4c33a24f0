"""Markdown report of the peer benchmark (:mod:`rim_monai.benchmarks.peers`): ``docs/benchmarks/peers.md``.

The page is generated in full from the result dictionary (setup, every table, what each shows and the ratios), so a
rerun reproduces it. Pure formatting: no peer library is imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["fmt", "markdown_table", "ratio", "to_markdown", "INSTALL"]

INSTALL = """\
The peers are an optional extra of the benchmark only (the tests never need them):
`pip install -e ".[peers]"` installs deepinv ≥ 0.5, sigpy ≥ 0.1.27, fastMRI ≥ 0.3 and torchvision (plus pydicom for
the CT slice). deepinv 0.5 and fastMRI import torchvision, and PyPI's torchvision 0.28.0 — the release paired with
torch 2.13 — does not load beside the CPU torch 2.13 wheel (`RuntimeError: operator torchvision::nms does not
exist`). What works is a fresh virtual environment with a *matching* torch / torchvision pair from PyPI, then the
extra:

```bash
python3 -m venv /tmp/peers
/tmp/peers/bin/pip install torch==2.14.1 torchvision==0.29.1   # x86_64: a CUDA build (~5.5 GB) that runs on the CPU
# aarch64: /tmp/peers/bin/pip install torch==2.9.1 torchvision==0.24.1   (a CPU pair)
/tmp/peers/bin/pip install -e ".[peers]"
/tmp/peers/bin/python -m rim_monai.benchmarks.peers --threads 1
```

The benchmark reads real scans from `../shared/data` (`--data-dir`; a missing file is named in the error) and the
MRI bundle from `bundles/mri_rim_recon`; nothing is downloaded (no deepinv datasets or weights). `--quick` runs every
part at tiny sizes in well under a minute (the smoke test `tests/benchmarks/test_peers.py`); `--skip ct|mri|tv|tv-ct|
tv-mri|learned` leaves parts out."""


def fmt(value: Any, digits: int = 2) -> str:
    """A number for a table: fixed ``digits`` decimals, scientific below 1e-3, ``–`` for missing values.

    Example:
        >>> fmt(3.14159), fmt(2.5e-7), fmt(0.0), fmt(None)
        ('3.14', '2.5e-07', '0', '–')
    """
    if value is None:
        return "–"
    if isinstance(value, (int, float)) and value == 0:
        return "0"
    if isinstance(value, (int, float)) and abs(value) < 1e-3:
        return f"{value:.1e}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def ratio(numerator: float, denominator: float) -> str:
    """``numerator / denominator`` as ``"12.3x"`` (``–`` when undefined).

    Example:
        >>> ratio(10.0, 4.0), ratio(1.0, 0.0)
        ('2.5x', '–')
    """
    if not denominator or numerator is None:
        return "–"
    value = numerator / denominator
    return f"{value:.1f}x" if value >= 1.95 else f"{value:.2f}x"


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table (cells through :func:`fmt` unless already strings).

    Example:
        >>> markdown_table(["a", "b"], [[1, 2.0]])
        ['| a | b |', '| --- | --- |', '| 1 | 2.00 |']
    """
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in row) + " |" for row in rows]
    return lines


def _header(result: dict[str, Any]) -> list[str]:
    m, v = result["machine"], result["versions"]
    load = result.get("load", {})
    lines = [
        "# Peer benchmark: rim_monai beside deepinv, sigpy, fastMRI and ODL",
        "",
        "Every table prints the project beside the peers, measured in one run on the same machine.",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')} ({m.get('torch_threads')} threads); "
        f"date {result['date']}.  ",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".  ",
        f"Load average (1/5/15 min) at the start {load.get('start')}, at the end {load.get('end')}; per part: "
        + ", ".join(f"{k} {val}" for k, val in load.items() if k not in ("start", "end")) + ".  ",
        "Wall time per part (s): " + ", ".join(f"{k} {val}" for k, val in result.get("seconds", {}).items()) + ".",
    ]
    peaks = [v[0] for v in load.values() if v]
    cores = m.get("cores") or 0
    if peaks and cores and max(peaks) > cores:
        lines += ["", f"**The machine was loaded during this run** (1-minute load up to {max(peaks):.2f} on {cores} "
                  "cores, from other jobs): absolute times are inflated and noisy, and the load changed between "
                  "parts (listed above), so compare times within a table, not across tables."]
    if result.get("quick"):
        lines += ["", "**Quick run (`--quick`): tiny sizes and few iterations, a smoke test; the numbers mean nothing.**"]
    lines += [
        "",
        "The machine is shared (2 cores, other jobs running). Operator timings are medians with the contenders "
        "alternating round by round; in the TV weight searches the contenders' runs are interleaved (one weight of "
        "each in turn), so a change of load hits them alike, but each TV time is still a single run. Ratios come "
        "from this one run.",
        "",
        "## Set-up",
        "",
        INSTALL,
    ]
    return lines


def _ct_operator(r: dict[str, Any]) -> list[str]:
    names = list(r["notes"])
    mine, deep, odl = names
    lines = [
        "", f"## 1. CT operator: {r['size']}², {r['views']} parallel views over 180°", "",
        "Forward + adjoint, milliseconds per call on a `(B, 1, H, W)` float32 batch (median; lower is better), and the "
        "project's speed-up over each peer.", "",
    ]
    rows = []
    for row in r["rows"]:
        s = row["seconds"]
        rows.append([str(row["batch"])] + [fmt(1e3 * s[n]) for n in names]
                    + [ratio(s[deep], s[mine]), ratio(s[odl], s[mine])])
    lines += markdown_table(["batch"] + [f"{n} (ms)" for n in names] + ["vs deepinv", "vs ODL"], rows)
    lines += ["", "Adjoint accuracy in float32, |<Ax, y> − <x, Aᵀy>| / (‖Ax‖ ‖y‖) for random x, y:", ""]
    lines += markdown_table(["operator", "adjoint error", "what it is"],
                            [[n, fmt(r["adjoint_error"][n]), r["notes"][n]] for n in names])
    lines += ["", "deepinv's `Tomography` is a different discretisation (rotate the image with `grid_sample`, sum "
              "columns), so its sinogram is not numerically the project's; its adjoint is exact because it is the "
              "autograd transpose of that forward. ODL's and the project's operators use ASTRA's strip model."]
    return lines


def _mri_operator(r: dict[str, Any]) -> list[str]:
    names = list(r["notes"])
    mine, deep, fast = names
    lines = [
        "", f"## 2. MRI operator: SENSE, {r['coils']} coils, {r['size']}²", "",
        "First the three operators are checked to give the same numbers (maximum difference relative to the largest "
        "value; complex64 / float32): all use the centred orthonormal FFT, so no normalisation factor separates them "
        "— only the layouts differ (deepinv: real channels `(B, 2, C, H, W)`, fastMRI: a trailing real/imag axis).", "",
    ]
    lines += markdown_table(["operator", "forward vs MaskedFourier", "adjoint vs MaskedFourier", "adjoint error",
                             "layout"],
                            [[n, fmt(r["agreement"][n]["forward"]), fmt(r["agreement"][n]["adjoint"]),
                              fmt(r["adjoint_error"][n]), r["notes"][n]] for n in names])
    lines += ["", "Forward + adjoint, milliseconds per call (median, each in its native layout, conversions not "
              "timed), and the project's speed-up:", ""]
    rows = []
    for row in r["rows"]:
        s = row["seconds"]
        rows.append([str(row["batch"])] + [fmt(1e3 * s[n]) for n in names]
                    + [ratio(s[deep], s[mine]), ratio(s[fast], s[mine])])
    lines += markdown_table(["batch"] + [f"{n} (ms)" for n in names] + ["vs deepinv", "vs fastMRI"], rows)
    return lines


def _tv_rows(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for r in rows:
        at = r.get("psnr_at", {})
        objective = r.get("objective")
        body.append([r["name"], fmt(r["weight_factor"], 3), f"{r['lam']:.4g}", fmt(r["psnr"]), fmt(r["ssim"], 4),
                     "–" if objective is None else f"{objective:.6g}", str(r["iterations_to_target"]),
                     fmt(r["seconds_to_target"]), fmt(1e3 * r["seconds_per_iteration"]), fmt(at.get("100")),
                     fmt(at.get("500"))])
    lines = markdown_table(["method", "weight c", "λ", f"PSNR ({rows[0]['iterations']} it.)", "SSIM",
                            "own objective", "it. to ±0.01 dB", "time to ±0.01 dB (s)", "ms / it.", "PSNR @100",
                            "PSNR @500"], body)
    lines += ["", f"Weight search (c: PSNR in dB after {rows[0]['iterations']} iterations, one run each):", ""]
    lines += [f"- {r['name']}: " + ", ".join(f"{c}: {v:.2f}" for c, v in r["grid"].items()) for r in rows]
    lines += ["", "Objectives (own objective = ½‖Ax − y‖² + λ R(x) at the last iterate, R as listed): "
              + "; ".join(f"{r['name']}: {r['objective_definition']}" for r in rows) + "."]
    return lines


def _tv_summary(rows: list[dict[str, Any]]) -> str:
    mine = rows[0]
    parts = []
    for r in rows[1:]:
        parts.append(f"{r['name']} reaches {fmt(r['psnr'])} dB ({r['psnr'] - mine['psnr']:+.2f} dB from the project's) "
                     f"and is within 0.01 dB of it after {r['iterations_to_target']} iterations, "
                     f"{fmt(r['seconds_to_target'])} s — {ratio(r['seconds_to_target'], mine['seconds_to_target'])} "
                     f"the project's time")
    text = (f"The project's TV reaches {fmt(mine['psnr'])} dB and is within 0.01 dB of it after "
            f"{mine['iterations_to_target']} iterations, {fmt(mine['seconds_to_target'])} s. " + "; ".join(parts) + ".")
    early = []
    for r in rows:
        peak_at, peak = max(r.get("psnr_at", {}).items(), key=lambda kv: kv[1], default=(None, None))
        if peak is not None and peak - r["psnr"] > 0.1:
            early.append(f"{r['name']} {fmt(peak)} dB at iteration {peak_at}")
    if early:
        text += (" The PSNR of some runs peaks early and then falls to its converged value (" + "; ".join(early)
                 + "): an early-stopped iterate scores better than the 2000-iteration one, so a stopping rule that is "
                 "'within 0.01 dB of 2000 iterations' asks for a worse image there.")
    return text


def _same_objective(mine: dict[str, Any], deep: dict[str, Any]) -> list[str]:
    """The project's and deepinv's final objective values at the project's weight (CT: the same objective)."""
    key = f"{mine['weight_factor']:.6g}"
    other = deep.get("grid_objective", {}).get(key)
    if "deepinv" not in deep["name"] or mine.get("objective") is None or other is None:
        return []
    gap = (other - mine["objective"]) / abs(mine["objective"])
    return ["", f"{mine['name']} and {deep['name']} minimise the same objective here (same operator, TV and data term): "
            f"at c = {fmt(mine['weight_factor'], 3)} they end at {mine['objective']:.7g} and {other:.7g} (deepinv "
            f"{gap:+.1e} relative; the lower value is closer to the minimiser, whatever the PSNR says)."]


def _tv_ct(r: dict[str, Any]) -> list[str]:
    s = r["setup"]
    fbp = next(iter(r["baselines"].items()))
    lines = [
        "", f"## 3a. TV on a real CT slice: {s['size']}², {s['views']} views, Poisson I0 = {s['photons']:g}", "",
        f"{s['image']} to {s['size']}² ({s['pixel_mm']:.3f} mm pixels), the project's `RayTransform` "
        f"({s['geometry']}, {s['detectors']} detector bins); {s['noise']}, seed {s['seed']}. PSNR: {s['psnr']}. "
        f"Every method solves on this operator and sinogram (deepinv through `LinearPhysics`, sigpy through a NumPy "
        f"`Linop` wrapper), from x = 0. Weight c is in units of `default_weight_scale` = {s['weight_unit']:.4g}; "
        f"every weight of the search is one {s['iterations']}-iteration run at batch 1, the best "
        f"{s['iterations']}-iteration PSNR picks the weight, and the time is until the PSNR stays within "
        f"{s['tol_db']} dB of it.", "",
    ]
    lines += _tv_rows(r["rows"])
    lines += ["", f"For scale: {fbp[0]} gives {fmt(fbp[1]['psnr'])} dB (SSIM {fmt(fbp[1]['ssim'], 4)}).",
              "", _tv_summary(r["rows"])]
    lines += _same_objective(r["rows"][0], r["rows"][1])
    d = r.get("deepinv_defaults")
    if d:
        lines += ["", f"deepinv with `TVPrior()`'s own defaults (`def_crit` 1e-8, `n_it_max` 1000) at its chosen weight: "
                  f"{d['iterations']} iterations take {fmt(d['defaults']['seconds'])} s and give "
                  f"{fmt(d['defaults']['psnr'])} dB, against {fmt(d['run_setting']['seconds'])} s and "
                  f"{fmt(d['run_setting']['psnr'])} dB with the run's `def_crit` {d['run_setting'].get('TVPrior def_crit')} "
                  f"({ratio(d['defaults']['seconds'], d['run_setting']['seconds'])} the time)."]
    return lines


def _tv_mri(r: dict[str, Any]) -> list[str]:
    s = r["setup"]
    lines = [
        "", f"## 3b. TV on the real BART brain: {s['shape'][0]}x{s['shape'][1]}, {s['coils']} coils, "
        f"{100 * s['sampled_fraction']:.1f} % sampled", "",
        f"{s['data']}; maps: {s['maps']} ({s['espirit_seconds']:.2f} s, not counted below); reference: {s['reference']}. "
        f"PSNR: {s['psnr']}. deepinv runs `MultiCoilMRI` with the same mask and maps (checked equal to `MaskedFourier` "
        f"in part 2), sigpy its own `TotalVariationRecon` / `L1WaveletRecon` with the same maps (its `Sense` operator "
        f"equals `MaskedFourier` to float rounding). Weight unit {s['weight_unit']:.4g}; search and tolerance as in 3a "
        f"({s['iterations']} iterations per weight, {s['tol_db']} dB).", "",
    ]
    lines += _tv_rows(r["rows"])
    tv_rows = [row for row in r["rows"] if "not TV" not in row["name"]]
    lines += ["", _tv_summary(tv_rows)]
    return lines


def _learned(r: dict[str, Any]) -> list[str]:
    lines = [
        "", "## 4. Learned vs classical on the real BART brain", "",
        f"The shipped MRI bundle's RIM (`{Path(r['bundle']).name}`: `network_def` of `configs/inference.json` through "
        "`rim_monai.engines.load_bundle_network` (MONAI's `ConfigParser`), `models/model.pt`) on the same k-space as "
        "3b, beside the classical methods. It runs with the bundle's own map convention (low-resolution maps, as "
        "`EstimateSensitivitiesd` gives the bundle) and with the ESPIRiT maps the classical methods use. Same "
        "PSNR/SSIM protocol as 3b. Time: median wall time for the direct methods; for the tuned iterative ones, the "
        "time to come within 0.01 dB of their converged result (from 3b).", "",
    ]
    lines += markdown_table(["method", "PSNR (dB)", "SSIM", "time (s)", "how"],
                            [[x["name"], fmt(x["psnr"]), fmt(x["ssim"], 4), fmt(x["seconds"], 3),
                              x["note"] + (f"; time: {x['timing']}" if x.get("timing") else "")]
                             for x in r["rows"]])
    best = max(r["rows"], key=lambda x: x["psnr"])
    rims = [x for x in r["rows"] if x["name"].startswith("RIM")]
    if rims:
        rim = max(rims, key=lambda x: x["psnr"])
        lines += ["", f"Best: {best['name']} ({fmt(best['psnr'])} dB). The RIM's best ({rim['name']}, "
                  f"{fmt(rim['psnr'])} dB) is {fmt(best['psnr'] - rim['psnr'])} dB below it."]
    return lines


NOTES = """\
## What is and is not compared

- Operators: one forward and one adjoint per call, each library in its native layout. Batch 1 shows per-call
  overhead; batch 8 and 32 show throughput.
- TV: the objectives differ (the table's last line), so weights are not comparable across methods: each method is
  scored at its own best weight factor on the same grid unit. For CT the project and deepinv minimise *the same*
  objective (same operator, same isotropic Neumann TV, same data term), so their converged PSNRs should agree and
  the comparison is purely one of solver speed; sigpy's anisotropic periodic TV is a different regulariser.
  For MRI deepinv's real-channel TV penalises real and imaginary parts separately.
- deepinv's TV proximal map is an inner iterative solver (`TVDenoiser`, warm-started between outer iterations).
  The run uses deepinv's cap of 1000 inner iterations with `TVDenoiser`'s own stopping tolerance 1e-5
  (`TVPrior n_it_max` / `def_crit` in the settings; `--deepinv-inner`, `--deepinv-crit`). `TVPrior`'s default
  tolerance, 1e-8, is hardly ever met, so every outer iteration runs all 1000 inner ones; 3a measures what that
  costs (a 2000-iteration weight search at that default is out of reach on this machine). The looser 1e-5 makes
  the prox inexact, so FISTA settles slightly above the minimum of its objective: 3a compares its final objective
  with the project's at the same weight. A PSNR a little above the project's on the same objective is therefore
  not a better solver, only a different point; a tolerance of 1e-7 reaches the project's objective value, at
  about the cost of the default.
- Every method starts from x = 0 (deepinv's default start, Aᵀy, is far from the solution's scale for CT).
- Times include each method's set-up (operator-norm estimates, power iterations) but not the per-iteration
  scoring, which is subtracted.
- Real data: one CT slice and one brain. The learned model's ranking is about this scan and this shipped
  checkpoint; see the bundle's README for its other test sets.
"""


def to_markdown(result: dict[str, Any]) -> str:
    """The whole ``peers.md`` page from a result dictionary of :func:`rim_monai.benchmarks.peers.run`."""
    lines = _header(result)
    if "ct_operator" in result:
        lines += _ct_operator(result["ct_operator"])
    if "mri_operator" in result:
        lines += _mri_operator(result["mri_operator"])
    if "tv_ct" in result:
        lines += _tv_ct(result["tv_ct"])
    if "tv_mri" in result:
        lines += _tv_mri(result["tv_mri"])
    if "learned" in result:
        lines += _learned(result["learned"])
    lines += ["", NOTES]
    return "\n".join(lines).rstrip() + "\n"

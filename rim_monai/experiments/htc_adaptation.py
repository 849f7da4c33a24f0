r"""Adapt the CT bundle to a real scanner: the HTC 2022 limited-angle fan-beam sinograms (issue 6, real data).

The CT bundle's learned primal-dual network (θ₀) was trained on simulated 60-view, 180° parallel-beam data of 1 mm
pixels. The Helsinki Tomography Challenge 2022 files (``../shared/data/ct/htc2022_limited_angle``) are measured on a
different scanner: flat-detector fan beam (source 410.66 mm, detector 553.74 mm from the source), 30°–90° arcs in
0.5° steps, acrylic discs 70 mm across. Every file is one measurement-only sample with its own operator
(:func:`rim_monai.data.htc.htc2022_operator`: 256² pixels of ``pixel_mm``, the detector binned by 2 to 280 bins).

Methods, per file: FBP (Hann) and TV (:func:`rim_monai.classical.scaled_tv`) with the file's operator, θ₀
with the file's operator (swapped operator, no adaptation of the weights) and R&R
(:func:`rim_monai.adaptation.adapt`). R&R adapts on the files of the most common sinogram shape — the six 30° files
(five phantoms, one with two scans) — because :func:`~rim_monai.adaptation.adapt` needs one measurement shape; the
adapted network then reconstructs every file, so the 40°–90° scans of phantom ``tb`` are held out from adaptation. There is **no reference image**, so the figures are the
data consistency — the relative residual :math:`\|A x - y\| / \|y\|` per file — and the reconstructions themselves.
A small residual is necessary, not sufficient: with a limited arc many images fit the data equally well.

Example:
    python -m rim_monai.experiments.htc_adaptation --out docs/figures/adaptation/htc --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rim_monai.adaptation import adapt, reconstruct_each
from rim_monai.data.file_utils import atomic_write
from rim_monai.data.htc import bin_detectors, htc2022_operator, read_htc2022
from rim_monai.data.keys import Keys
from rim_monai.engines import format_table, load_bundle_network
from rim_monai.experiments.environment import REPOSITORY, SHARED_DATA, machine_line, timed
from rim_monai.data.file_utils import atomic_write_text

__all__ = ["HTC_DIR", "htc_files", "relative_residual", "residual_figure", "run", "main"]

HTC_DIR = SHARED_DATA / "ct" / "htc2022_limited_angle"


def htc_files(folder: str | os.PathLike = HTC_DIR) -> list[Path]:
    """Every ``<arc>/*.mat`` file under ``folder``, sorted by arc then name.

    Raises:
        ValueError: naming ``folder`` when it holds no ``.mat`` files.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*/*.mat"), key=lambda p: (int(p.parent.name) if p.parent.name.isdigit() else 0, p.name))
    if not files:
        raise ValueError(f"folder: no HTC 2022 .mat files under '{folder}' (expected <arc>/<name>.mat).")
    return files


def relative_residual(x: torch.Tensor, y: torch.Tensor, operator: Any) -> float:
    r""":math:`\|A x - y\|_2 / \|y\|_2` for one sample (``x`` ``(1, 1, H, W)``, ``y`` ``(1, 1, views, bins)``)."""
    with torch.no_grad():
        return float((operator(x) - y).norm() / y.norm())


def residual_figure(images: dict[str, list[np.ndarray]], residuals: dict[str, list[float]], labels: Sequence[str],
                    path: str | os.PathLike, rows: Sequence[int]) -> Path:
    """PNG grid: one row per selected file, one column per method, titled with the relative residual (atomic).

    Every panel of a row shares the grey window ``[0, p]``, ``p`` the 99.5th percentile of the ``"TV"`` image (the
    first method when there is no TV), so differences in scale stay visible.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path, names = Path(path), list(images)
    fig, axes = plt.subplots(len(rows), len(names), figsize=(2.6 * len(names), 2.8 * len(rows)), squeeze=False)
    try:
        for r, i in enumerate(rows):
            high = float(np.percentile(images["TV" if "TV" in images else names[0]][i], 99.5))
            for c, name in enumerate(names):
                ax = axes[r][c]
                ax.imshow(images[name][i], cmap="gray", vmin=0.0, vmax=high)
                ax.set_title(f"{name}\nresidual {residuals[name][i]:.4f}", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(labels[i], fontsize=8)
        fig.tight_layout()
        with atomic_write(path, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path


def run(out: str | os.PathLike, files: Sequence[str | os.PathLike] | None = None, steps: int = 40, mu: float = 1e-3,
        lr: float = 1e-4, patience: int | None = 5, pixel_mm: float = 0.3, image_size: int = 256,
        tv_iterations: int = 300, device: str = "cpu") -> dict[str, Any]:
    """Reconstruct every HTC file with each method, adapt θ₀ by R&R, and write the record and figures to ``out``.

    Returns:
        The record written to ``out/htc.json`` (per-file residuals per method, the R&R report summary, settings,
        machine, wall times).
    """
    from rim_monai.classical import fbp, scaled_tv

    started, dev, out = time.perf_counter(), torch.device(device), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [Path(f) for f in (files if files is not None else htc_files())]
    records = [read_htc2022(p) for p in paths]
    labels = [f"{p.stem.replace('_subsample', '')} ({round(r['angles_deg'][-1] - r['angles_deg'][0])}°)"
              for p, r in zip(paths, records)]
    ops = [htc2022_operator(r, (image_size, image_size), pixel_mm=pixel_mm, detector_binning=2) for r in records]
    ys = [bin_detectors(r[Keys.SINOGRAM], 2)[None].to(dev) for r in records]  # (1, views, bins) each

    net = load_bundle_network(REPOSITORY / "bundles" / "ct_lpd_recon", dev)

    def recon_all(fn) -> tuple[torch.Tensor, float]:  # (N, 1, H, W) reconstructions and the wall time
        return timed(lambda: reconstruct_each(fn, ys, ops))

    methods: dict[str, tuple[torch.Tensor, float]] = {
        "FBP": recon_all(lambda y, A: fbp(y, A, filter="hann")),
        "TV": recon_all(lambda y, A: scaled_tv(y, A, iterations=tv_iterations, nonneg=True)),
        "LPD θ₀ (swapped)": recon_all(net),
    }
    # adapt on the files of the most common sinogram shape (adapt needs one shape; by default the six 30° files),
    # then reconstruct every file with the adapted weights: the other arcs are held out from the adaptation
    shapes = [tuple(y.shape) for y in ys]
    chosen = [i for i, shape in enumerate(shapes) if shape == max(set(shapes), key=shapes.count)]
    adapted, report = adapt(net, [ops[i] for i in chosen], [ys[i] for i in chosen], mu=mu, steps=steps, lr=lr,
                            batch_size=1, patience=patience, progress=True)
    methods["LPD R&R"] = recon_all(adapted)
    report.to_json(out / "htc_rr_report.json")
    report.plot(out / "htc_rr_data_term.png")

    residuals = {name: [relative_residual(x[None], y[None], op) for x, y, op in zip(xs, ys, ops)]
                 for name, (xs, _) in methods.items()}
    images = {name: [x[0].detach().cpu().numpy() for x in xs] for name, (xs, _) in methods.items()}
    shown = [i for i, p in enumerate(paths) if p.stem in ("tb_subsample_90", "tb_subsample_60", "tb_subsample_30",
                                                          "ta_subsample73")] or list(range(min(4, len(paths))))
    residual_figure(images, residuals, labels, out / "htc_reconstructions.png", shown)
    record = {
        "files": [str(p.relative_to(HTC_DIR)) if p.is_relative_to(HTC_DIR) else str(p) for p in paths],
        "labels": labels,
        "adapted_on": [labels[i] for i in chosen],
        "relative_residual": residuals,
        "mean_relative_residual": {k: float(np.mean(v)) for k, v in residuals.items()},
        "wall_s": {k: round(t, 1) for k, (_, t) in methods.items()} | {"R&R adaptation": round(report.wall_time_s, 1)},
        "rr": {"steps_run": report.steps_run, "best_step": report.best_step, "stopped_early": report.stopped_early,
               "data_term_before": report.data_term_before, "data_term_after": report.data_term_after,
               "relative_residual_before": report.relative_residual_before,
               "relative_residual_after": report.relative_residual_after},
        "settings": {"steps": steps, "mu": mu, "lr": lr, "patience": patience, "pixel_mm": pixel_mm,
                     "image_size": image_size, "detector_binning": 2, "tv_iterations": tv_iterations},
        "machine": machine_line(cores=False),
        "total_wall_s": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(out / "htc.json", json.dumps(record, indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: ``--out`` and the R&R settings; prints the residual table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--mu", type=float, default=1e-3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--pixel-mm", type=float, default=0.3)
    a = p.parse_args(argv)
    record = run(a.out, steps=a.steps, mu=a.mu, lr=a.lr, patience=a.patience, pixel_mm=a.pixel_mm)
    names = list(record["relative_residual"])
    rows = [{"file": label, **{n: record["relative_residual"][n][i] for n in names}}
            for i, label in enumerate(record["labels"])]
    print(format_table(rows + [{"file": "mean", **record["mean_relative_residual"]}], ["file"] + names))
    return record


if __name__ == "__main__":
    main()

"""Evidence for the data-driven defaults: ``python -m rim_monai.experiments.classical_weights`` (needs ``../shared/data``).

For CT at I0 = 1e3, 1e4, 1e5 (parallel beam, 60 views, 256² of 1 mm, real slices) and multi-coil MRI at 4x and 8x
with 25 and 40 dB SNR (1D random masks, 8 coils, real images; :mod:`rim_monai.experiments.classical_weights_data`), it prints

- the default TV (``tv_pdhg(y, A)``: weight chosen from the data, default stopping rule) beside the best weight of a
  grid (the same solver, start and stopping rule; factor sqrt(2) for CT, 2 for MRI) and the old fixed default
  (c = 0.05), with the chosen factor c and the seconds;
- FBP (CT) or zero-filled (MRI), and for MRI the default CG-SENSE (``cg_normal(y, A)``: discrepancy stopping);
- PSNR with the GUIDE's data ranges (CT: max - min of the reference; MRI: max of the reference magnitude).

Rows are marked "tune" (the subjects tau and the search settings were chosen on) or "check" (only verified on).
Results go to ``docs/benchmarks/classical_weights.{md,json}`` (``--out``) with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from rim_monai.classical.cg import cg_normal
from rim_monai.classical.direct import zero_filled
from rim_monai.classical.parameter_choice import initial_estimate
from rim_monai.data.file_utils import atomic_write_text
from rim_monai.classical.tv import DEFAULT_TV_WEIGHT, default_weight_scale, tv_pdhg
from rim_monai.experiments.classical_weights_data import CT_FILES, MRI_FILES, read_ct, read_mri, simulate_ct, simulate_mri

__all__ = ["CT_GRID", "MRI_GRID", "ct_rows", "mri_rows", "to_markdown", "main"]

#: the grids of the weight factor c the best weight is taken from
CT_GRID: tuple[float, ...] = tuple(round(0.0625 * 2 ** (k / 2), 4) for k in range(13))  # 0.0625 .. 4
MRI_GRID: tuple[float, ...] = tuple(0.0001875 * 2**k for k in range(11))  # 0.0001875 .. 0.192


#: the opening of a merged table (``--merge``)
MERGED_HEADER = """# Classical baselines: the data-driven TV weight against the best weight of a grid

Written by `python -m rim_monai.experiments.classical_weights --merge ...` from the runs listed at the end (each
row says which). Protocol (`rim_monai/experiments/classical_weights.py`, `classical_weights_data.py`): CT 512² HU
slice -> Poisson counts on the 512² grid, reconstruction on 256², 60 parallel views, `nonneg=True`, PSNR over
max - min of the reference; MRI 192² magnitude slice with a smooth phase, 8 birdcage coils, fastMRI random 1D mask
(centre fraction 0.08 at 4x, 0.04 at 8x), complex Gaussian noise at the given SNR, PSNR over the reference's maximum.
"TV default" is `tv_pdhg(y, A)` with nothing else given (noise estimated from the data, weight by the discrepancy
principle for CT and by k-space hold-out validation for MRI, default stopping rule); "best grid TV" is the same
solver, start and stopping rule at every weight of a grid (CT c = 0.0625 ... 4, factor sqrt 2; MRI c = 0.0001875 ...
0.192, factor 2); "old default" the fixed c = 0.05. Seconds: CPU seconds of the process (1 thread) in runs made
with the study as of commit 80e7609, wall seconds in runs made before it (docs/classical.md, Evidence, says which);
the machine was shared, so wall seconds are inflated. Every run used `OMP_NUM_THREADS=1` (most also `nice -n 5`).
"""


def _psnr_ct(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double(), ref.double()
    return float(10 * torch.log10((ref.max() - ref.min()) ** 2 / ((x - ref) ** 2).mean()))


def _psnr_mri(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.abs().double(), ref.abs().double()
    return float(10 * torch.log10(ref.max() ** 2 / ((x - ref) ** 2).mean()))


def _timed(fn):
    """``(fn(), CPU seconds of this process)``: CPU time, not wall time, because the machine is shared."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def _grid(case, grid, nonneg: bool, psnr) -> tuple[list[float], float]:
    """PSNR of TV at every grid weight (one call per weight from the same start; default stopping rule)."""
    scale = default_weight_scale(case.y, case.A)
    x0 = initial_estimate(case.y, case.A, nonneg)
    return _timed(lambda: [psnr(tv_pdhg(case.y, case.A, lam=c * scale, nonneg=nonneg, x0=x0), case.x) for c in grid])


def _tv_row(case, grid, nonneg: bool, psnr, known: dict | None = None, old: bool = True) -> dict:
    """The default TV, the best grid weight (or ``known``: the best of an earlier run's grid) and the old default."""
    scale = default_weight_scale(case.y, case.A)
    (x_def, lam), t_def = _timed(lambda: tv_pdhg(case.y, case.A, nonneg=nonneg, return_weight=True))
    row = {"tv_default": psnr(x_def, case.x), "c_default": float((lam / scale).flatten()[0]), "s_default": t_def}
    if known is not None:
        row |= {k: known[k] for k in ("tv_best", "c_best")} | {"grid_from": known["source"]}
    else:
        scores, t_grid = _grid(case, grid, nonneg, psnr)
        best = max(range(len(grid)), key=lambda i: scores[i])
        row |= {"tv_best": scores[best], "c_best": grid[best], "grid": dict(zip(map(str, grid), scores)),
                "s_grid": t_grid}
    if old:
        x_old, t_old = _timed(lambda: tv_pdhg(case.y, case.A, lam=DEFAULT_TV_WEIGHT * scale, nonneg=nonneg,
                                              x0=initial_estimate(case.y, case.A, nonneg)))
        row |= {"tv_old": psnr(x_old, case.x), "s_old": t_old}
    return row


def ct_rows(root: Path, names=None, doses=(1e3, 1e4, 1e5), log=print, sink=None, old: bool = True) -> list[dict]:
    """One row per CT slice and dose (see the module docstring)."""
    rows = []
    for name, (path, role) in CT_FILES.items():
        if names and not any(n in name for n in names):
            continue
        hu = read_ct(root / path)
        for photons in doses:
            case = simulate_ct(hu, photons)
            row = {"task": "CT", "image": name, "role": role, "setting": f"I0 = {photons:.0e}",
                   "baseline": _psnr_ct(case.A.fbp(case.y, filter="hann"), case.x), "baseline_name": "FBP"}
            row |= _tv_row(case, CT_GRID, True, _psnr_ct, old=old)
            rows.append(row)
            log(_line(row))
            if sink is not None:
                sink(row)
    return rows


def mri_rows(root: Path, names=None, settings=((4, 25.0), (4, 40.0), (8, 25.0), (8, 40.0)), size: int = 192,
             log=print, sink=None, known: dict | None = None, old: bool = True) -> list[dict]:
    """One row per MR image, acceleration and SNR (see the module docstring); ``known`` maps ``(image, setting)`` to
    the best grid weight of an earlier run (``tv_best``, ``c_best``, ``source``), which is then not recomputed."""
    rows = []
    for name, (path, how, role) in MRI_FILES.items():
        if names and not any(n in name for n in names):
            continue
        image = read_mri(root / path, how, size=size)
        for acceleration, snr in settings:
            case = simulate_mri(image, acceleration, snr)
            row = {"task": "MRI", "image": name, "role": role, "setting": f"{acceleration}x, {snr:g} dB",
                   "baseline": _psnr_mri(zero_filled(case.y, case.A), case.x), "baseline_name": "zero-filled"}
            (x_cg, history), t_cg = _timed(lambda: cg_normal(case.y, case.A, return_history=True))
            row |= {"cg_default": _psnr_mri(x_cg, case.x), "cg_iterations": len(history) - 1, "s_cg": t_cg}
            reuse = (known or {}).get((name, row["setting"]))
            row |= _tv_row(case, MRI_GRID, False, _psnr_mri, known=reuse, old=old)
            rows.append(row)
            log(_line(row))
            if sink is not None:
                sink(row)
    return rows


def _old(r: dict) -> str:
    return f"{r['tv_old']:.2f}" if "tv_old" in r else "—"


def _best(r: dict) -> str:
    return f"{r['tv_best']:.2f} ({r['c_best']:g}){' *' if 'grid_from' in r else ''}"


def _line(r: dict) -> str:
    cg = f" | CG {r['cg_default']:.2f} ({r['cg_iterations']} it)" if "cg_default" in r else ""
    return (f"{r['task']} {r['image']} [{r['role']}] {r['setting']}: {r['baseline_name']} {r['baseline']:.2f}{cg} | "
            f"TV default {r['tv_default']:.2f} (c={r['c_default']:.3g}, {r['s_default']:.0f} CPU s) best {_best(r)} "
            f"old {_old(r)}")


def to_markdown(rows: list[dict], machine: str, command: str, runs: list[str] | None = None) -> str:
    """The evidence table (markdown); ``*``: best grid weight taken from an earlier run (``grid_from``); with
    ``runs`` (merged tables) a column numbers the run each row comes from."""
    run_col = ("| run ", "| --- ") if runs else ("", "")
    lines = [MERGED_HEADER] if runs else []
    lines += [f"Command: `{command}`  ", f"Machine: {machine}", "",
             "| task | image | role | setting | FBP / zero-filled | CG-SENSE default (its) | TV default (c, s) | "
             f"best grid TV (c) | default − best | old default c = 0.05 {run_col[0]}|",
             f"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- {run_col[1]}|"]
    for r in rows:
        cg = f"{r['cg_default']:.2f} ({r['cg_iterations']})" if "cg_default" in r else "—"
        run = f" {r.get('run', '')} |" if runs else ""
        lines.append(
            f"| {r['task']} | {r['image']} | {r['role']} | {r['setting']} | {r['baseline']:.2f} | {cg} | "
            f"{r['tv_default']:.2f} ({r['c_default']:.3g}, {r['s_default']:.0f}) | {_best(r)} | "
            f"{r['tv_default'] - r['tv_best']:+.2f} | {_old(r)} |{run}")
    lines.append("")
    for task in sorted({r["task"] for r in rows}):
        worst = min(r["tv_default"] - r["tv_best"] for r in rows if r["task"] == task)
        count = sum(r["task"] == task for r in rows)
        lines.append(f"{task}: {count} rows, worst default − best {worst:+.2f} dB.  ")
    cg = [r["cg_default"] - r["baseline"] for r in rows if "cg_default" in r]
    if cg:
        lines.append(f"Worst CG-SENSE default − zero-filled: {min(cg):+.2f} dB.  ")
    sources = sorted({r["grid_from"] for r in rows if "grid_from" in r})
    if sources:
        lines.append("\\* best grid weight not recomputed, taken from " + "; ".join(sources) + ".")
    if runs:
        lines += ["", "Runs:", ""] + [f"{i}. `{c}`" for i, c in enumerate(runs, start=1)]
    return "\n".join(lines) + "\n"


def _settings(text: str) -> tuple[tuple[int, float], ...]:
    """``"4x25,8x40"`` -> ``((4, 25.0), (8, 40.0))``."""
    return tuple((int(a), float(b)) for a, b in (item.split("x") for item in text.split(",") if item))


def _merge(files: list[str]) -> tuple[list[dict], list[str]]:
    """The rows of earlier runs' JSON files, each marked with its run's number (``run``, 1-based, into the returned
    commands); a later file's row replaces an earlier one of the same task, image and setting."""
    rows: dict[tuple[str, str, str], dict] = {}
    commands = []
    for number, name in enumerate(files, start=1):
        part = json.loads(Path(name).read_text())
        commands.append(f"{part['command']} ({part['machine']})")
        for r in part["rows"]:
            rows[(r["task"], r["image"], r["setting"])] = dict(r, run=number)
    order = {name: i for i, name in enumerate(list(CT_FILES) + list(MRI_FILES))}
    merged = sorted(rows.values(), key=lambda r: (r["task"], order.get(r["image"], len(order)), r["setting"]))
    return merged, commands


def _write(out: Path, stem: str, rows: list[dict], runs: list[str] | None, machine: str, command: str) -> str:
    """The table and the raw rows to ``out/stem.{md,json}`` (atomically); returns the table."""
    table = to_markdown(rows, machine, command, runs)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{stem}.md", table)
    atomic_write_text(out / f"{stem}.json", json.dumps({"machine": machine, "command": command, "runs": runs,
                                                        "rows": rows}, indent=1))
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
    parser.add_argument("--tasks", default="ct,mri")
    parser.add_argument("--images", default="", help="comma-separated substrings of the image names (default all)")
    parser.add_argument("--settings", default="4x25,4x40,8x25,8x40", help="MRI accelerations x SNR in dB")
    parser.add_argument("--doses", default="1e3,1e4,1e5", help="CT photon counts I0")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="instead of running: join the rows of these JSON files (written by earlier runs)")
    parser.add_argument("--known", default=None,
                        help="JSON rows of an earlier run whose best grid weights are reused (MRI; not recomputed)")
    parser.add_argument("--skip-old", action="store_true", help="do not run the old fixed default c = 0.05")
    parser.add_argument("--out", default="docs/benchmarks")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from rim_monai.machine import cpu_model

    machine = (f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
               f"Python {platform.python_version()}")
    command = "python -m rim_monai.experiments.classical_weights " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    if args.merge:
        print(_write(out, "classical_weights", *_merge(args.merge), machine, command.strip()))
        return
    names = [n for n in args.images.split(",") if n]
    root = Path(args.data)
    stem = "classical_weights" + ("_" + "_".join(args.tasks.split(",")) if args.tasks != "ct,mri" else "")
    rows: list[dict] = []

    def sink(row: dict) -> None:  # each finished row is written at once, so partial results survive
        rows.append(row)
        _write(out, stem, rows, None, machine, command.strip())

    if "ct" in args.tasks:
        ct_rows(root, names, doses=tuple(float(d) for d in args.doses.split(",")), sink=sink, old=not args.skip_old)
    if "mri" in args.tasks:
        known = None
        if args.known:
            earlier = json.loads(Path(args.known).read_text())
            known = {(r["image"], r["setting"]): dict(r, source=r.get("grid_from", earlier["command"]))
                     for r in earlier["rows"]}
        mri_rows(root, names, settings=_settings(args.settings), sink=sink, known=known, old=not args.skip_old)
    print(_write(out, stem, rows, None, machine, command.strip()) if rows else "no rows")


if __name__ == "__main__":
    main()

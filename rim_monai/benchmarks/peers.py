"""Side-by-side with the tools a user would otherwise pick: deepinv, sigpy, fastMRI and ODL, from one run.

1. CT operator: ``RayTransform`` (matrix backend) vs deepinv ``Tomography`` vs ODL ``OperatorModule``: forward +
   adjoint time at batch 1, 8, 32 and adjoint accuracy (:mod:`rim_monai.benchmarks.peers_operators`).
2. MRI operator: ``MaskedFourier`` (8 coils, 320²) vs deepinv ``MultiCoilMRI`` vs a fastMRI ``fft2c`` SENSE operator:
   agreement, time, adjoint accuracy.
3. TV quality and time to converge on real data, same operator and data for every contender: the WG-04 chest slice
   (CT, 60 views, Poisson I0 = 1e4) and the 8-coil BART brain (MRI) (:mod:`rim_monai.benchmarks.peers_tv`).
4. Learned vs classical on the BART brain: the shipped MRI bundle's RIM beside zero-filled, CG-SENSE and the tuned
   TV / L1-wavelet reconstructions (:mod:`rim_monai.benchmarks.peers_cases`).

The peers are an optional extra (``pip install -e ".[peers]"``, see ``docs/benchmarks/peers.md`` for the torch /
torchvision pair that loads on CPU); the tests never need them. Nothing is downloaded. Run::

    python -m rim_monai.benchmarks.peers --threads 1             # full run -> docs/benchmarks/peers.{md,json}
    python -m rim_monai.benchmarks.peers --quick --out /tmp/peers  # tiny sizes, a smoke run of every part
    python -m rim_monai.benchmarks.peers --skip tv --skip learned  # operators only
    python -m rim_monai.benchmarks.peers --report-only docs/benchmarks/peers.json  # rewrite peers.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rim_monai.benchmarks.operators import machine_info
from rim_monai.benchmarks.peers_report import to_markdown
from rim_monai.data.file_utils import atomic_write_text

__all__ = ["PARTS", "versions", "load_average", "run", "main"]

REPO = Path(__file__).resolve().parents[2]
#: The parts ``--skip`` accepts (``tv`` skips both TV cases).
PARTS = ("ct", "mri", "tv-ct", "tv-mri", "learned")


def versions() -> dict[str, str | None]:
    """Versions of torch, torchvision, deepinv, sigpy, fastmri, odl, astra, monai, numpy and the project's commit."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("deepinv", "deepinv"), ("sigpy", "sigpy"),
                       ("fastmri", "fastmri"), ("odl", "odl"), ("astra", "astra-toolbox"), ("monai", "monai"),
                       ("numpy", "numpy"), ("scipy", "scipy")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        out["rim_monai"] = (commit + (" (uncommitted changes)" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        out["rim_monai"] = None
    return out


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (``uptime``), rounded."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def _check_peers(parts: set[str]) -> None:
    """Import the peers the selected parts need, or exit with the install command."""
    needed = {"deepinv"} if parts & {"ct", "mri", "tv-ct", "tv-mri"} else set()
    needed |= {"sigpy"} if parts & {"tv-ct", "tv-mri", "learned"} else set()
    needed |= {"fastmri"} if "mri" in parts else set()
    missing = []
    for name in sorted(needed):
        try:
            __import__(name)
        except Exception as e:  # ImportError, or torchvision's RuntimeError beside a mismatched torch
            missing.append(f"{name} ({type(e).__name__}: {e})")
    if missing:
        raise SystemExit("peer benchmark: cannot import " + "; ".join(missing)
                         + '\ninstall the extra: pip install -e ".[peers]" (see docs/benchmarks/peers.md for a torch '
                           "/ torchvision pair that loads on CPU)")


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"ct_size": 32, "ct_views": 12, "batches": (1, 4), "mri_size": 32, "coils": 4, "min_time": 0.05,
                "tv_size": 32, "tv_views": 20, "mri_crop": (48, 64), "iterations": 30,
                "deepinv_inner": 20, "deepinv_crit": 1e-5}
    return {"ct_size": 128, "ct_views": 60, "batches": (1, 8, 32), "mri_size": 320, "coils": 8, "min_time": 1.0,
            "tv_size": 128, "tv_views": 60, "mri_crop": None, "iterations": 2000,
            "deepinv_inner": 1000, "deepinv_crit": 1e-5}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected parts and return the result dictionary (see :func:`main` for the options)."""
    from rim_monai.benchmarks.peers_cases import ct_tv_case, learned_case, mri_tv_case
    from rim_monai.benchmarks.peers_operators import bench_ct_peers, bench_mri_peers

    skip = set(args.skip or [])
    if "tv" in skip:
        skip |= {"tv-ct", "tv-mri"}
    parts = set(PARTS) - skip
    _check_peers(parts)
    s = _settings(args.quick)
    for key in ("min_time", "iterations", "deepinv_inner", "deepinv_crit"):
        if getattr(args, key, None) is not None:
            s[key] = getattr(args, key)
    data_dir = Path(args.data_dir)
    info = machine_info()
    print(f"machine: {info}\nload average: {load_average()}")
    result: dict[str, Any] = {
        "command": "python -m rim_monai.benchmarks.peers " + " ".join(sys.argv[1:] if args.argv is None else args.argv),
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": info, "versions": versions(),
        "quick": bool(args.quick), "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
        "load": {"start": load_average()}, "seconds": {},
    }

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        result["seconds"][name] = round(time.perf_counter() - t0, 1)
        result["load"][name] = load_average()
        return out

    if "ct" in parts:
        result["ct_operator"] = timed("ct_operator", lambda: bench_ct_peers(
            s["ct_size"], s["ct_views"], s["batches"], s["min_time"]))
    if "mri" in parts:
        result["mri_operator"] = timed("mri_operator", lambda: bench_mri_peers(
            s["mri_size"], s["coils"], s["batches"], s["min_time"]))
    if "tv-ct" in parts:
        result["tv_ct"] = timed("tv_ct", lambda: ct_tv_case(
            data_dir, s["tv_size"], s["tv_views"], args.photons, s["iterations"], s["deepinv_inner"],
            s["deepinv_crit"], tol_db=args.tol_db))
    if parts & {"tv-mri", "learned"}:
        mri, state = timed("tv_mri", lambda: mri_tv_case(
            data_dir, s["mri_crop"], s["iterations"], s["deepinv_inner"], s["deepinv_crit"], tol_db=args.tol_db))
        result["tv_mri"] = mri
        if "learned" in parts:
            result["learned"] = timed("learned", lambda: learned_case(state, args.bundle, min(s["min_time"], 1.0)))
    result["load"]["end"] = load_average()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the options, run, and write ``peers.md`` and ``peers.json`` atomically under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few iterations (a smoke test)")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks"), help="folder for peers.md / peers.json")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"),
                        help="the shared data folder (default ../shared/data next to the repository)")
    parser.add_argument("--bundle", default=str(REPO / "bundles" / "mri_rim_recon"), help="the MRI bundle folder")
    parser.add_argument("--skip", action="append", choices=PARTS + ("tv",), help="leave a part out (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--min-time", dest="min_time", type=float, default=None, help="seconds per operator timing")
    parser.add_argument("--iterations", type=int, default=None,
                        help="iterations of every TV run of the weight search (default 2000)")
    parser.add_argument("--deepinv-inner", dest="deepinv_inner", type=int, default=None,
                        help="n_it_max of deepinv's TV proximal solver (default 1000, deepinv's own)")
    parser.add_argument("--deepinv-crit", dest="deepinv_crit", type=float, default=None,
                        help="def_crit of deepinv's TV proximal solver (default 1e-5, TVDenoiser's own; "
                             "TVPrior's default 1e-8 makes every prox run n_it_max iterations)")
    parser.add_argument("--photons", type=float, default=1e4, help="CT photons per detector bin, I0")
    parser.add_argument("--tol-db", dest="tol_db", type=float, default=0.01, help="convergence tolerance in dB")
    parser.add_argument("--report-only", dest="report_only", default=None, metavar="JSON",
                        help="rewrite peers.md under --out from an existing peers.json (no benchmark run)")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.report_only is not None:
        result = json.loads(Path(args.report_only).read_text())
        atomic_write_text(Path(args.out) / "peers.md", to_markdown(result))
        return result
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = run(args)
    out = Path(args.out)
    markdown = to_markdown(result)
    atomic_write_text(out / "peers.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "peers.md", markdown)
    print(markdown)
    return result


if __name__ == "__main__":
    main()

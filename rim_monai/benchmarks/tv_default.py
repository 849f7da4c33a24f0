"""CPU time of the default TV on undersampled MRI: ``tv_pdhg(y, A)`` with no weight (hold-out search + final solve).

One real slice of the classical-weights study (:mod:`rim_monai.experiments.classical_weights_data`) at ``--size``
(default 256²), 8 coils, 1D random mask; prints the chosen factor c, the PSNR and the CPU seconds of the call
(:func:`time.process_time`, 1 thread, so a busy shared machine distorts it less than wall time). To time the code of
an older commit, run this file with that commit's package first on ``PYTHONPATH``::

    OMP_NUM_THREADS=1 python -m rim_monai.benchmarks.tv_default --image MNI --acceleration 4 --snr 40
    git worktree add /tmp/old 8578ce8 && OMP_NUM_THREADS=1 PYTHONPATH=/tmp/old python rim_monai/benchmarks/tv_default.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    import rim_monai
    from rim_monai.classical import tv_pdhg
    from rim_monai.classical.tv import default_weight_scale
    from rim_monai.experiments.classical_weights_data import MRI_FILES, read_mri, simulate_mri

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
    parser.add_argument("--image", default="MNI", help="a substring of an MRI_FILES name")
    parser.add_argument("--acceleration", type=int, default=4)
    parser.add_argument("--snr", type=float, default=40.0)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    name = next(n for n in MRI_FILES if args.image in n)
    path, how, _ = MRI_FILES[name]
    case = simulate_mri(read_mri(Path(args.data) / path, how, size=args.size), args.acceleration, args.snr)
    start, wall = time.process_time(), time.perf_counter()
    x, lam = tv_pdhg(case.y, case.A, return_weight=True)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    ref, x = case.x.abs().double(), x.abs().double()
    psnr = float(10 * torch.log10(ref.max() ** 2 / ((x - ref) ** 2).mean()))
    c = float((lam / default_weight_scale(case.y, case.A)).flatten()[0])
    print(f"{Path(rim_monai.__file__).parent}: {name}, {args.size}², 8 coils, {args.acceleration}x, {args.snr:g} dB: "
          f"c = {c:.4g}, PSNR {psnr:.2f} dB, {cpu:.1f} CPU s ({wall:.1f} s wall)")


if __name__ == "__main__":
    main()

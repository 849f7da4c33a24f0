"""CPU time of the default TV on undersampled MRI: ``tv_pdhg(y, A)`` with no weight (hold-out search + final solve).

One real slice of the classical-weights study (:mod:`rim_monai.experiments.classical_weights_data`) at ``--size``
(default 256²), 8 coils, 1D random mask; prints the chosen factor c, the PSNR and the CPU seconds of the call
(:func:`time.process_time`, 1 thread, so a busy shared machine distorts it less than wall time). To time the code of
an older commit, run this file with that commit's package first on ``PYTHONPATH``, with this commit's
``experiments/classical_weights_data.py`` (same simulation, plus the option helpers) copied into it::

    OMP_NUM_THREADS=1 python -m rim_monai.benchmarks.tv_default --image MNI --acceleration 4 --snr 40
    git worktree add /tmp/old 8578ce8
    cp rim_monai/experiments/classical_weights_data.py /tmp/old/rim_monai/experiments/
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/old python rim_monai/benchmarks/tv_default.py
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
    from rim_monai.experiments.classical_weights_data import add_mri_case_arguments, mri_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mri_case_arguments(parser, size=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    name, case = mri_case(args)
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

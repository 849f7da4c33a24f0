r"""Why the hold-out candidates must be converged: ``python -m rim_monai.experiments.holdout_convergence`` (needs
``../shared/data``).

On one real MR slice of the classical-weights study (:mod:`rim_monai.experiments.classical_weights_data`: 192² by
default, 8 coils, 1D random mask) it splits the k-space as :func:`~rim_monai.classical.holdout.choose_tv_weight_holdout` does and
prints

1. the held-out error :math:`E_h` and the PSNR of the training reconstruction for each weight factor :math:`c`
   after 100 ... 3000 iterations from the same zero-filled start (the search before continuation used 300);
2. the continuation path from ``--top`` down: iterations until :math:`E_h` settles, :math:`E_h` and PSNR per candidate.
"""

from __future__ import annotations

import argparse
import time

import torch

from rim_monai.classical.holdout import HOLDOUT_RTOL, HOLDOUT_WINDOW, split_measurements
from rim_monai.classical.parameter_choice import initial_estimate
from rim_monai.classical.tv import default_weight_scale, tv_pdhg
from rim_monai.experiments.classical_weights_data import add_mri_case_arguments, mri_case

__all__ = ["main"]

CHECKS = (100, 200, 300, 500, 750, 1000, 1500, 2000, 3000)


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> list[float]:
    """PSNR per sample (data range: max of the reference magnitude)."""
    x, ref = x.abs().double(), ref.abs().double()
    return (10 * torch.log10(ref.max() ** 2 / ((x - ref) ** 2).reshape(x.shape[0], -1).mean(-1))).tolist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mri_case_arguments(parser)
    parser.set_defaults(image="WG-04")
    parser.add_argument("--top", type=float, default=0.048, help="largest c of the continuation path")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    name, case = mri_case(args)
    A, y = case.A, case.y
    train, held = split_measurements(A)
    A_train, y_train = A.replace(mask=train), y * train
    scale = default_weight_scale(y, A)
    grid = [0.0001875 * 2**k for k in range(9)]

    def error(x: torch.Tensor) -> list[float]:
        return (((A(x) - y) * held).abs() ** 2).reshape(x.shape[0], -1).sum(-1).tolist()

    print(f"{name}, {args.acceleration}x, {args.snr:g} dB. 1) fixed budgets from the zero-filled start; c = "
          + " / ".join(f"{c:g}" for c in grid))
    k_grid = len(grid)
    yk = y_train.expand(k_grid, *y_train.shape[1:]).contiguous()

    def report(k: int, x: torch.Tensor) -> None:
        if k in CHECKS:
            print(f"{k:5d} it: E_h " + " ".join(f"{e:.4g}" for e in error(x)) + " | PSNR "
                  + " ".join(f"{p:.2f}" for p in _psnr(x, case.x)), flush=True)

    lam = torch.tensor(grid, dtype=scale.dtype) * scale.flatten()[0]
    tv_pdhg(yk, A_train, lam=lam, iterations=max(CHECKS), tol=0.0, x0=initial_estimate(yk, A_train), callback=report)
    print(f"2) continuation from c = {args.top:g} down, each candidate until E_h changes <= {HOLDOUT_RTOL:g} over "
          f"{HOLDOUT_WINDOW} iterations")
    x, c, total, start = initial_estimate(y_train, A_train), args.top, 0, time.process_time()
    while c >= grid[0] * 0.99:
        state = {"last": None, "k": 0}

        def settled(k: int, x_k: torch.Tensor):
            state["k"] = k
            if k % HOLDOUT_WINDOW:
                return None
            e, last = error(x_k)[0], state["last"]
            state["last"] = e
            return None if last is None else torch.tensor(abs(last - e) <= HOLDOUT_RTOL * e)

        x = tv_pdhg(y_train, A_train, lam=c * scale, iterations=3000, tol=0.0, x0=x, callback=settled)
        total += state["k"]
        print(f"c = {c:<9g} {state['k']:5d} it  E_h {error(x)[0]:.5g}  PSNR {_psnr(x, case.x)[0]:.2f}  "
              f"({total} iterations, {time.process_time() - start:.0f} CPU s)", flush=True)
        c /= 2


if __name__ == "__main__":
    main()

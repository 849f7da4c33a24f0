"""Training speed of the CT bundle's learned primal-dual: iterations (and images) per CPU-minute, before and after the
speed-ups of issue 14.

One iteration is what ``SupervisedTrainer`` does with a batch of ``train.json``: the network
``ScaleEquivariant(LearnedPrimalDual(iterations=10, n_primal=5, n_dual=5, features=(32, 32), init="fbp"))`` on the
batch's sinograms with its ray transform (sparse-matrix backend), ``return_all=True``, the multi-step MSE loss,
``backward``, Adam ``step`` (data simulation not included). Contenders, each on a fixed batch:

- ``v1``: the step of the bundle's first ``train.json``: 256², 60 parallel views, batch 1, float32;
- ``v1_bf16``: the same batch with ``channels_last=True`` and ``autocast_dtype="bfloat16"`` (the primal and dual
  blocks' convolutions in bfloat16 on AMX / AVX-512-BF16 units; operator, memories and parameters in float32);
- ``v2_128``: the main batch of ``train.json`` v2: 128² items (2 mm pixels over the same field of view) with matched
  views (30: the angular sampling of 60 views at 256²), 4 items a batch (the same pixel budget as one 256² item),
  bfloat16 and ``channels_last``.

``train.json`` v2 draws 128² batches three times in four and 256² ones (one item) otherwise, with 30–120 views; its
measured CPU time per epoch (data simulation and validation included) is in the bundle README. Contenders alternate;
the median CPU time per iteration (:func:`time.process_time`) is reported
(:func:`~rim_monai.benchmarks.training_step.time_steps`)::

    OMP_NUM_THREADS=1 python -m rim_monai.benchmarks.lpd_training_step            # -> docs/benchmarks/lpd_training_step.{md,json}
    OMP_NUM_THREADS=1 python -m rim_monai.benchmarks.lpd_training_step --quick --out /tmp
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rim_monai.benchmarks.training_step import add_timing_arguments, time_steps, write_report

__all__ = ["CONTENDERS", "build_step", "measure", "main"]

#: contender name -> batch (size, views, batch) and LearnedPrimalDual keyword arguments
CONTENDERS: dict[str, dict[str, Any]] = {
    "v1": {"size": 256, "views": 60, "batch": 1, "channels_last": False, "autocast_dtype": None},
    "v1_bf16": {"size": 256, "views": 60, "batch": 1, "channels_last": True, "autocast_dtype": "bfloat16"},
    "v2_128": {"size": 128, "views": 30, "batch": 4, "channels_last": True, "autocast_dtype": "bfloat16"},
}


def build_step(contender: str, scale: int = 1, geometry: str = "parallel", seed: int = 0) -> Callable[[], float]:
    """One training iteration of the bundle's network on a fixed batch of ellipse phantoms, as a closure returning
    the loss; ``scale`` divides the contender's image size and view count (``--quick``)."""
    from rim_monai.data import ct_operator, ellipse_phantom, random_ellipses
    from rim_monai.data.intensity import MU_WATER
    from rim_monai.engines import MultiStepLoss
    from rim_monai.networks import LearnedPrimalDual, ScaleEquivariant

    spec = CONTENDERS[contender]
    size, views, batch = spec["size"] // scale, max(spec["views"] // scale, 2), spec["batch"]
    torch.manual_seed(seed)
    net = ScaleEquivariant(LearnedPrimalDual(1, iterations=10, n_primal=5, n_dual=5, features=(32, 32), init="fbp",
                                             channels_last=spec["channels_last"],
                                             autocast_dtype=spec["autocast_dtype"]))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = MultiStepLoss("mse", weights=[1.0 / MU_WATER**2] * 10)
    A = ct_operator(geometry, (size, size), views)
    rng = np.random.default_rng(seed)
    target = torch.stack([torch.from_numpy(ellipse_phantom(random_ellipses(rng), (size, size))).clamp_min(0)
                          for _ in range(batch)])[:, None] * MU_WATER
    y = A(target)

    def step() -> float:
        optimizer.zero_grad()
        loss = loss_fn(net(y, A, return_all=True), target)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def measure(contenders: list[str], rounds: int, per_round: int, scale: int = 1, log=print) -> dict:
    """Median CPU seconds per iteration of each contender (alternating rounds), with images and pixels per
    CPU-minute and the speed-ups over ``v1`` per iteration and per pixel."""
    steps = {name: build_step(name, scale) for name in contenders}
    result: dict = time_steps(steps, rounds, per_round, log)
    for name in contenders:
        spec, r = CONTENDERS[name], result[name]
        pixels = spec["batch"] * (spec["size"] // scale) ** 2
        r["images_per_cpu_minute"] = r["iterations_per_cpu_minute"] * spec["batch"]
        r["megapixels_per_cpu_minute"] = r["iterations_per_cpu_minute"] * pixels / 1e6
        if "v1" in result:
            r["speedup_per_iteration"] = result["v1"]["cpu_s_per_iteration"] / r["cpu_s_per_iteration"]
            v1_pixels = CONTENDERS["v1"]["batch"] * (CONTENDERS["v1"]["size"] // scale) ** 2
            r["speedup_per_pixel"] = r["speedup_per_iteration"] * pixels / v1_pixels
    return result


def main(argv: list[str] | None = None) -> dict:
    """Command line (module docstring)."""
    from rim_monai.benchmarks.operators import machine_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_arguments(parser, list(CONTENDERS), "2 rounds of 1 iteration at 1/8 of the sizes and views")
    args = parser.parse_args(argv)
    scale = 8 if args.quick else 1
    if args.quick:
        args.rounds, args.per_round = 2, 1
    torch.set_num_threads(args.threads)
    result = measure(args.contenders, args.rounds, args.per_round, scale)
    report = {"machine": machine_info(), "scale": scale, "rounds": args.rounds, "per_round": args.per_round,
              "contenders": {name: CONTENDERS[name] for name in args.contenders}, "results": result}
    rows = []
    for name in args.contenders:
        spec, r = CONTENDERS[name], result[name]
        rows.append([name, f"{spec['size'] // scale}² x {spec['batch']}, {max(spec['views'] // scale, 2)} views",
                     spec["autocast_dtype"] or "float32", f"{r['cpu_s_per_iteration']:.3f}",
                     f"{r['iterations_per_cpu_minute']:.1f}", f"{r['images_per_cpu_minute']:.1f}",
                     f"{r.get('speedup_per_iteration', float('nan')):.2f}x",
                     f"{r.get('speedup_per_pixel', float('nan')):.2f}x"])
    write_report(args.out, "lpd_training_step",
                 "Learned primal-dual training step (CT bundle, 10 iterations, 32 features)", report, [f"Median of {args.rounds} alternating rounds of {args.per_round} iterations, CPU time; "
                          "speed-ups relative to v1 (the first train.json step)."],
                 ["contender", "batch", "precision", "CPU s / iteration", "iterations / CPU-minute",
                  "images / CPU-minute", "speed-up / iteration", "speed-up / pixel"], rows)
    return report


if __name__ == "__main__":
    main()

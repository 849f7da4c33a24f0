"""Training speed of the MRI bundle's RIM: iterations per CPU-minute, before and after the speed-ups of issue 13.

One iteration is what ``SupervisedTrainer`` does with a batch of ``train.json``: build ``MaskedFourier(mask, sens)``
for the batch, run the network ``ScaleEquivariant(RIM(complex_, compact (32, 32), dilations (1, 2), T = 8))`` with
``return_all=True``, the multi-step MSE loss, ``backward``, Adam ``step``. Contenders, on the same batch:

- ``float32``: the network as it was trained so far (``channels_last=False``, no autocast);
- ``fast``: ``channels_last=True`` and ``autocast_dtype="bfloat16"`` (the update network's convolutions in bfloat16,
  which oneDNN runs on AMX / AVX-512-BF16 units; likelihood gradient, estimates and parameters in float32).

Both include the exact zero-state shortcut of :class:`~rim_monai.networks.blocks.ConvGRUCell` (the first step skips
``U * 0``); to time the code before it, run this file with the package of an older commit on ``PYTHONPATH`` and
``--contenders float32``. Contenders alternate; the median CPU time per iteration (:func:`time.process_time`, which
counts every thread) is reported, so a busy shared machine distorts the figures less than wall time::

    OMP_NUM_THREADS=1 python -m rim_monai.benchmarks.rim_training_step            # -> docs/benchmarks/rim_training_step.{md,json}
    OMP_NUM_THREADS=1 python -m rim_monai.benchmarks.rim_training_step --quick --out /tmp
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

import torch

from rim_monai.benchmarks.training_step import add_timing_arguments, time_steps, write_report

__all__ = ["CONTENDERS", "build_step", "measure", "main"]

#: contender name -> RIM keyword arguments
CONTENDERS: dict[str, dict[str, Any]] = {
    "float32": {"channels_last": False, "autocast_dtype": None},
    "fast": {"channels_last": True, "autocast_dtype": "bfloat16"},
    "fast_circular": {"channels_last": True, "autocast_dtype": "bfloat16", "padding_mode": "circular"},
}


def build_step(contender: str, batch: int, size: int, coils: int, steps: int = 8, seed: int = 0) -> Callable[[], float]:
    """One training iteration of the bundle's network on a fixed random batch, as a closure returning the loss."""
    from rim_monai.engines import MultiStepLoss
    from rim_monai.networks import RIM, ScaleEquivariant
    from rim_monai.operators import MaskedFourier, birdcage_maps, random_mask

    torch.manual_seed(seed)
    options = {k: v for k, v in CONTENDERS[contender].items() if k in inspect.signature(RIM).parameters}
    if len(options) != len(CONTENDERS[contender]) and contender != "float32":
        raise ValueError(f"contender: {contender!r} needs a RIM with {sorted(CONTENDERS[contender])}.")
    net = ScaleEquivariant(RIM(in_channels=1, complex_=True, architecture="compact", features=(32, 32),
                               dilations=(1, 2), link="identity", iterations=steps, normalize_gradient=False,
                               **options))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = MultiStepLoss("mse")
    sens = birdcage_maps(coils, (size, size))[None].expand(batch, -1, -1, -1).contiguous()
    mask = torch.stack([random_mask((size, size), 4, 0.08, seed=i) for i in range(batch)])[:, None].float()
    target = torch.randn(batch, 1, size, size, dtype=torch.complex64)
    kspace = MaskedFourier(mask, sens)(target)

    def step() -> float:
        A = MaskedFourier(mask, sens)
        optimizer.zero_grad()
        loss = loss_fn(net(kspace, A, return_all=True), target)
        loss.backward()
        optimizer.step()
        return float(loss)

    return step


def measure(contenders: list[str], batch: int, size: int, coils: int, rounds: int, per_round: int, log=print) -> dict:
    """Median CPU seconds per iteration of each contender, alternating ``rounds`` times ``per_round`` iterations
    (:func:`~rim_monai.benchmarks.training_step.time_steps`)."""
    steps = {name: build_step(name, batch, size, coils) for name in contenders}
    result: dict = time_steps(steps, rounds, per_round, log)
    if "float32" in result and "fast" in result:
        result["speedup"] = result["float32"]["cpu_s_per_iteration"] / result["fast"]["cpu_s_per_iteration"]
    return result


def main(argv: list[str] | None = None) -> dict:
    """Command line (module docstring)."""
    from rim_monai.benchmarks.operators import machine_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--coils", type=int, default=8)
    add_timing_arguments(parser, list(CONTENDERS), "2 rounds of 1 iteration at 32x32")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.rounds, args.per_round = 32, 2, 1
    torch.set_num_threads(args.threads)
    result = measure(args.contenders, args.batch, args.size, args.coils, args.rounds, args.per_round)
    report = {"machine": machine_info(), "batch": args.batch, "size": args.size, "coils": args.coils,
              "rounds": args.rounds, "per_round": args.per_round, "results": result}
    rows = [[name, f"{result[name]['cpu_s_per_iteration']:.3f}", f"{result[name]['iterations_per_cpu_minute']:.1f}"]
            for name in args.contenders]
    footer = [f"Speed-up fast / float32: {result['speedup']:.2f}x"] if "speedup" in result else []
    write_report(args.out, "rim_training_step",
                 f"RIM training step (MRI bundle, {args.coils} coils, batch {args.batch} x {args.size}², T = 8)",
                 report, [f"Median of {args.rounds} alternating rounds of {args.per_round} iterations, CPU time."],
                 ["contender", "CPU s / iteration", "iterations / CPU-minute"], rows, footer)
    return report


if __name__ == "__main__":
    main()

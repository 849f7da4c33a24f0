"""Inference speed of the MRI bundle: wall seconds per slice, as a user waits for them.

Issue 13 sets the bar at 1 s per 320² 8-coil slice on 2 CPU threads. One call is what the bundle's inference does with a
slice: build ``MaskedFourier(mask, sens)`` for it (a new operator per slice, so its power iteration for ``‖A‖`` is
paid, as :class:`~rim_monai.engines.MaskedFourierFromBatch` pays it) and run the bundle's network
(:func:`~rim_monai.engines.load_bundle_network` with the contender's overrides of ``inference.json``) under
``torch.inference_mode``. The slice is the procedural brain phantom (:func:`~rim_monai.data.brain_phantom.brain_phantom`,
so no data is needed), simulated by the bundle's ``MRIProtocol`` with ESPIRiT maps from the calibration region,
40 dB SNR and a 4x 1D random mask. Contenders alternate (:func:`~rim_monai.benchmarks.training_step.time_steps`
with the wall clock) and the median is reported; on a shared machine rounds minutes apart differ by up to 50 %, so
compare contenders of one run only::

    python -m rim_monai.benchmarks.mri_inference                  # 2 threads -> docs/benchmarks/mri_inference.{md,json}
    python -m rim_monai.benchmarks.mri_inference --quick --out /tmp
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch

from rim_monai.benchmarks.training_step import add_timing_arguments, time_steps, write_report

__all__ = ["CONTENDERS", "BAR_SECONDS", "build_call", "main"]

#: contender name -> overrides of the bundle's ``inference.json`` (``shipped``: none)
CONTENDERS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "steps_8": {"steps": 8},
    "float32": {"mixed_precision": None},
    "holdout": {"dc_lambda": "holdout"},
    "learned_dc": {"dc_lambda": "learned"},
}
#: issue 13's bar: seconds per 320² 8-coil slice on 2 threads
BAR_SECONDS = 1.0


def build_call(contender: str, size: int, coils: int, acceleration: float, bundle: str = "bundles/mri_rim_recon",
               seed: int = 0) -> Callable[[], torch.Tensor]:
    """One slice's inference with the bundle's network and the overrides of ``contender``, as a closure.

    Raises:
        ValueError: naming ``contender`` when it is not one of :data:`CONTENDERS`.
    """
    from rim_monai.data import MRIProtocol
    from rim_monai.data.brain_phantom import brain_phantom
    from rim_monai.engines import load_bundle_network
    from rim_monai.operators import MaskedFourier

    if contender not in CONTENDERS:
        raise ValueError(f"contender: expected one of {sorted(CONTENDERS)}, got {contender!r}.")
    image = torch.from_numpy(brain_phantom((size, size), seed=seed))
    protocol = MRIProtocol(acceleration=acceleration, coils=coils, snr_db=40.0, map_estimator="espirit")
    item = protocol.simulation().set_random_state(seed=seed)({"image": image[None]})
    y, mask, sens = item["kspace"][None], item["mask"][None], item["sens"][None]
    net = load_bundle_network(bundle, overrides=CONTENDERS[contender])

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return net(y, MaskedFourier(mask, sens))

    return call


def main(argv: list[str] | None = None) -> dict:
    """Command line (module docstring)."""
    from rim_monai.benchmarks.operators import machine_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--acceleration", type=float, default=4.0)
    parser.add_argument("--bundle", default="bundles/mri_rim_recon")
    add_timing_arguments(parser, list(CONTENDERS), "1 round of 1 call at 64², 4 coils", threads=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.coils, args.rounds, args.per_round = 64, 4, 1, 1
    torch.set_num_threads(args.threads)
    calls = {name: build_call(name, args.size, args.coils, args.acceleration, args.bundle) for name in args.contenders}
    result = time_steps(calls, args.rounds, args.per_round, clock="wall")
    report = {"machine": machine_info(), "size": args.size, "coils": args.coils, "acceleration": args.acceleration,
              "rounds": args.rounds, "per_round": args.per_round, "bar_seconds": BAR_SECONDS, "results": result}
    rows = [[name, ", ".join(f"{k}={v}" for k, v in CONTENDERS[name].items()) or "inference.json as shipped",
             f"{result[name]['wall_s_per_iteration']:.2f}",
             " / ".join(f"{t:.2f}" for t in result[name]["samples"])] for name in args.contenders]
    write_report(args.out, "mri_inference",
                 f"MRI bundle inference, wall seconds per {args.size}² {args.coils}-coil slice (bar {BAR_SECONDS:g} s)",
                 report, [f"Median of {args.rounds} alternating rounds of {args.per_round} calls, wall time, a new "
                          "operator per call."],
                 ["contender", "overrides", "s / slice", "per round"], rows)
    return report


if __name__ == "__main__":
    main()

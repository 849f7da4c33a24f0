"""How far the output data-consistency step could take a trained network: a sweep of its weight on validation items.

For every validation item of a model-selection config (the items of
:mod:`~rim_monai.experiments.training_ablation`) the variant's network reconstructs :math:`x` without any step, and
each weight :math:`\\lambda` of ``--lams`` gives

.. math::
    z_\\lambda = \\arg\\min_z \\|A z - y\\|^2 + \\lambda \\|z - x\\|^2

(all weights from one multi-shift CG run, :func:`~rim_monai.classical.cg_normal_shifted`, ``--iterations`` each).
Per acquisition the table gives the network's PSNR, the mean gain of every fixed :math:`\\lambda` and its worst item,
and the gain of the best :math:`\\lambda` per item (an oracle: it looks at the reference), with how often each
weight is that best. It is what a rule that sets the weight per item (``RIM(dc_lambda="holdout")`` or
``"learned"``) can at most gain, and shows whether one fixed weight would do::

    OMP_NUM_THREADS=1 python -m rim_monai.experiments.dc_weight_sweep --config configs/mri_model_selection.json \\
        --variant cycle8_phase_maps --items-cache /tmp/sel_items.pt --out /tmp/dc_sweep

Writes ``dc_weight_sweep.md`` and ``dc_weight_sweep.json`` (every item's PSNR per weight) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import list_data_collate

from rim_monai.classical import cg_normal_shifted
from rim_monai.data.mri_corpus import VALIDATION_ACQUISITIONS
from rim_monai.data.file_utils import atomic_write_text
from rim_monai.engines import format_table, network_weights
from rim_monai.experiments.environment import SHARED_DATA, machine_line
from rim_monai.experiments.heldout_evaluation import parse_overrides
from rim_monai.experiments.training_ablation import load_ablation_config, validation_items, variant_parser
from rim_monai.metrics import image_quality
from rim_monai.networks.utils import DC_HOLDOUT_LAMBDAS, NETWORK_CG_TOL

__all__ = ["sweep_items", "summarise_sweep", "acquisition_names", "main"]

#: the weights swept by default: the hold-out choice's candidates and one smaller
DEFAULT_LAMS: tuple[float, ...] = (*DC_HOLDOUT_LAMBDAS, 0.0003)


def sweep_items(network: torch.nn.Module, items: Sequence[Mapping[str, Any]], prepare_batch: Any,
                lams: Sequence[float], iterations: int = 16) -> list[list[float]]:
    """Per item, the PSNR of ``network``'s estimate and of the step with each of ``lams``.

    Args:
        network: called as ``network(y, A, *args, **kwargs)`` (no data-consistency step of its own).
        items: uncollated validation items.
        prepare_batch: the validation's ``(batch, device) -> (y, target, args, kwargs)``; ``args[0]`` is the operator.
        lams: positive weights.
        iterations: CG iterations.

    Returns:
        One ``[psnr_plain, psnr_lam_0, psnr_lam_1, ...]`` per item (dB, data range max − min of the reference).
    """
    if not lams or not all(float(v) > 0 for v in lams):
        raise ValueError(f"lams: expected positive data-consistency weights, got {list(lams)!r}.")
    rows = []
    network = network.eval()
    with torch.inference_mode():
        for item in items:
            y, target, args, kwargs = prepare_batch(list_data_collate([item]), "cpu")
            A = args[0]
            x = network(y, *args, **kwargs)
            steps = cg_normal_shifted(y - A(x), A, [float(v) for v in lams], iterations, tol=NETWORK_CG_TOL)
            candidates = torch.cat([x[None], x[None] + steps])
            rows.append([float(image_quality(c, target, "per_image", ("psnr",), reduction="none")["psnr"][0])
                         for c in candidates])
    return rows


def summarise_sweep(rows: Sequence[Sequence[float]], lams: Sequence[float],
                    groups: Sequence[str]) -> list[dict[str, Any]]:
    """One summary per group (and ``"all"``): items, mean PSNR without a step, mean gain and worst item per weight,
    the per-item best weight's mean gain (``oracle``) and how often each weight is the best (``"none"``: no step)."""
    names = ["none", *(f"{float(v):g}" for v in lams)]
    out = []
    for group in [*dict.fromkeys(groups), "all"]:
        members = [r for r, g in zip(rows, groups) if group in ("all", g)]
        gains = [[r[j + 1] - r[0] for r in members] for j in range(len(lams))]
        best = Counter(names[max(range(len(r)), key=r.__getitem__)] for r in members)
        out.append({"group": group, "items": len(members), "psnr": sum(r[0] for r in members) / len(members),
                    "gain": {names[j + 1]: sum(g) / len(g) for j, g in enumerate(gains)},
                    "worst": {names[j + 1]: min(g) for j, g in enumerate(gains)},
                    "oracle": sum(max(r) - r[0] for r in members) / len(members),
                    "best_weight_counts": {n: best[n] for n in names if best[n]}})
    return out


def acquisition_names(count: int) -> list[str]:
    """The acquisition of each of ``count`` validation items: ``VALIDATION_ACQUISITIONS`` cycled in item order (with
    or without ``every_acquisition``, the cycle runs over the items)."""
    cycle = [f"{a.coils}c {a.mask_func} {a.acceleration:g}x "
             f"{'no noise' if a.snr_db is None else f'{a.snr_db:g} dB'} {a.estimator}" for a in VALIDATION_ACQUISITIONS]
    return [cycle[i % len(cycle)] for i in range(count)]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a model-selection config (training_ablation)")
    parser.add_argument("--variant", required=True, help="the variant whose weights are swept")
    parser.add_argument("--out", required=True, help="folder for dc_weight_sweep.{md,json}")
    parser.add_argument("--data", default=str(SHARED_DATA), help="the shared data root")
    parser.add_argument("--items-cache", default=None, help="as training_ablation's")
    parser.add_argument("--common", action="append", default=[], metavar="KEY=VALUE",
                        help="a common override added to the config's, as training_ablation's; repeatable")
    parser.add_argument("--lams", nargs="+", type=float, default=list(DEFAULT_LAMS), help="the weights swept")
    parser.add_argument("--iterations", type=int, default=16, help="CG iterations (multi-shift)")
    args = parser.parse_args(argv)
    config = load_ablation_config(args.config, [args.variant])
    config["common"] = {**config.get("common", {}), **parse_overrides(args.common, "--common")}
    variant = next((v for v in config["variants"] if v["name"] == args.variant), None)
    if variant is None:
        raise SystemExit(f"--variant: {args.variant!r} is not in {args.config}.")
    variant = {**variant, "overrides": {**variant.get("overrides", {}), "dc_lambda": None}}
    data, out = Path(args.data), Path(args.out)
    items = validation_items(config, data, Path(args.items_cache) if args.items_cache else None)
    network = variant_parser(config, variant, data).get_parsed_content("network_def")
    network.load_state_dict(network_weights(variant["weights"]))
    prepare = variant_parser(config, None, data).get_parsed_content("validate#prepare_batch")
    rows = sweep_items(network, items, prepare, args.lams, args.iterations)
    groups = acquisition_names(len(items))
    summary = summarise_sweep(rows, args.lams, groups)
    names = list(summary[0]["gain"])  # the weights as summarise_sweep names them
    table = format_table(
        [{"acquisition": s["group"], "items": s["items"], "psnr": s["psnr"],
          **{f"λ {n}": f"{s['gain'][n]:+.2f} ({s['worst'][n]:+.1f})" for n in names},
          "oracle": s["oracle"], "best λ per item": ", ".join(f"{k}: {v}" for k, v in s["best_weight_counts"].items())}
         for s in summary],
        ["acquisition", "items", "psnr", *(f"λ {n}" for n in names), "oracle", "best λ per item"],
        {"items": "{:d}", "psnr": "{:.2f}", "oracle": "{:+.2f}"})
    caption = (f"The output data-consistency step on {len(items)} validation items of {config['train_config']} "
               f"(common overrides {config['common']}), variant {args.variant}, {args.iterations} CG iterations: "
               "PSNR (dB) without the step, the mean gain of each fixed weight (its worst item in brackets), the "
               "per-item best weight's mean gain (oracle) and how often each weight is best. "
               f"Machine: {machine_line()}.")
    atomic_write_text(out / "dc_weight_sweep.md", f"{caption}\n\n{table}\n")
    atomic_write_text(out / "dc_weight_sweep.json", json.dumps(
        {"config": config, "variant": args.variant, "lams": args.lams, "iterations": args.iterations,
         "groups": groups, "items": rows, "summary": summary}, indent=1))
    print(f"{caption}\n\n{table}")
    return summary


if __name__ == "__main__":
    main()

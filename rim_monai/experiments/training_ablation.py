"""Training ablation: variants of a bundle's ``train.json`` trained on one short budget, scored on its validation split.

A variant is the bundle's recipe with a few config overrides (``configs/ct_ablation.json``: one network for both
geometries against a fan-beam-only one, real patients against synthetic images only, 128² patches only). Every
variant trains with the same ``common`` overrides (epochs, epoch length, warm-up), from the same seed, in its own run
folder ``<out>/<variant>``, through ``python -m monai.bundle run`` as a user would, so a killed run resumes from its
newest checkpoint on the next call and a finished one (``checkpoint_final.pt``) is not trained again.

Each variant's best-validation weights (``<out>/<variant>/models/model.pt``) are then scored on the validation items of
the common recipe (the same items for every variant, never the test split): PSNR and SSIM per item (data range max −
min of each reference, :func:`rim_monai.metrics.image_quality`), their mean, and the mean per value of ``group_by``
(an item key, e.g. ``"geometry"``: a fan-beam-only network is judged on the fan-beam items). The table also gives the
iterations and the CPU time of each run (``curve.csv``).

Usage::

    OMP_NUM_THREADS=1 python -m rim_monai.experiments.training_ablation --config configs/ct_ablation.json \\
        --out bundles/ct_lpd_recon/runs/ablation
    # score only (the runs exist); a subset of variants
    python -m rim_monai.experiments.training_ablation --config configs/ct_ablation.json \\
        --out bundles/ct_lpd_recon/runs/ablation --variants reference fan_only --skip-training

With ``"weights"`` in the config (a checkpoint) nothing is trained: every variant is those weights under its own
overrides of the network's options — an inference-time ablation (``configs/mri_inference_ablation.json``: the RIM's
start and an output data-consistency step, on the shipped weights). A variant's own ``"weights"`` (a state dict or a
training checkpoint) are scored instead of trained: with ``common`` overrides that enlarge the validation split, model
selection among finished runs on more items (``configs/mri_model_selection.json``).

Every row also gives its mean PSNR difference to a reference variant on the same items and the paired standard
error of that difference (``--reference``, default the first variant scored): with items shared, the paired error is
far smaller than the spread of the items, which is what lets 180 items resolve 0.1 dB.

``--items-cache PATH`` keeps the simulated validation items in a file (minutes to simulate the 180 MRI items, seconds to
load), keyed by the train config's text, the ``common`` overrides, the data root and the source of
:mod:`rim_monai.data` and :mod:`rim_monai.operators`: a cache written for anything else is rebuilt, never reused.

Writes ``<out>/ablation.md`` and ``<out>/ablation.json`` (atomically).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.data import list_data_collate

import rim_monai.data
import rim_monai.operators
from rim_monai.data.file_utils import atomic_write, atomic_write_text
from rim_monai.engines import format_table, latest_checkpoint, network_weights
from rim_monai.experiments.environment import SHARED_DATA, machine_line
from rim_monai.experiments.heldout_evaluation import load_config, parse_overrides
from rim_monai.metrics import image_quality

__all__ = ["load_ablation_config", "variant_parser", "training_command", "train_variant", "validation_items",
           "score_network", "summarise", "paired_difference", "main"]

#: What the run folder of a finished variant holds (``train.json``'s ``final_filename``).
FINAL_CHECKPOINT = "checkpoint_final.pt"


def load_ablation_config(path: str | Path, variants: Sequence[str] | None = None) -> dict[str, Any]:
    """The ablation config in ``path``, checked (the ``weights`` files of the named ``variants`` only, when given: a
    config may list a run that has not finished while the others are scored).

    Keys: ``train_config`` (a bundle's ``train.json``), ``common`` (overrides of every variant), ``variants`` (a list
    of ``{"name", "description", "overrides"}``, names unique and usable as folder names) and optionally ``group_by``
    (an item key of the validation dataset) and ``weights`` (one checkpoint scored under every variant's overrides,
    without training). A variant's own ``weights`` (a state dict or a training checkpoint) are scored instead of
    training it: model selection among finished runs on one fixed set of validation items.

    Raises:
        ValueError: naming ``path`` and the key that is missing or malformed.
    """
    config = load_config(path)
    train = config.get("train_config")
    if not isinstance(train, str) or not Path(train).is_file():
        raise ValueError(f"{path}: train_config: expected the path of a bundle's train.json, got {train!r}.")
    if not isinstance(config.get("common", {}), dict):
        raise ValueError(f"{path}: common: expected an object of config overrides, got {config['common']!r}.")
    entries = config.get("variants")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: variants: expected a non-empty list, got {entries!r}.")
    names = []
    for index, variant in enumerate(entries):
        name = variant.get("name") if isinstance(variant, dict) else None
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{path}: variants[{index}].name: expected a folder name (letters, digits, _ and -), "
                             f"got {name!r}.")
        if not isinstance(variant.get("overrides", {}), dict):
            raise ValueError(f"{path}: variants[{index}].overrides: expected an object, got {variant['overrides']!r}.")
        if variants is None or name in variants:
            _check_weights(variant.get("weights"), f"{path}: variants[{index}].weights")
        names.append(name)
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: variants: expected unique names, got {names}.")
    if not isinstance(config.get("group_by", ""), str):
        raise ValueError(f"{path}: group_by: expected an item key (a string), got {config['group_by']!r}.")
    _check_weights(config.get("weights"), f"{path}: weights", " to score every variant with")
    return config


def _check_weights(weights: Any, where: str, purpose: str = "") -> None:
    """Raise a ``ValueError`` starting with ``where`` unless ``weights`` is ``None`` or the path of a file."""
    if weights is not None and (not isinstance(weights, str) or not Path(weights).is_file()):
        raise ValueError(f"{where}: expected the path of a checkpoint{purpose}, got {weights!r}.")


def _overrides(config: Mapping[str, Any], variant: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**config.get("common", {}), **((variant or {}).get("overrides", {}))}


def training_command(config: Mapping[str, Any], variant: Mapping[str, Any], run_dir: Path, data: Path) -> list[str]:
    """The ``python -m monai.bundle run`` command line that trains ``variant`` into ``run_dir``, resuming from its
    newest checkpoint when a previous call left one. Override values are written as Python literals (``fire`` parses
    them back: ``['fan']`` a list, ``True`` a bool)."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(config["train_config"]),
               "--dataset_dir", str(data), "--run_dir", str(run_dir), "--ckpt_dir", str(run_dir / "models")]
    for key, value in _overrides(config, variant).items():
        command += [f"--{key}", repr(value)]
    if any(run_dir.glob("checkpoint_*.pt")):
        command += ["--resume", "True"]
    return command


def train_variant(config: Mapping[str, Any], variant: Mapping[str, Any], out: Path, data: Path) -> Path:
    """Train ``variant`` into ``<out>/<name>`` unless it finished before; its output goes to ``train.log`` there.

    Returns:
        The run folder.

    Raises:
        RuntimeError: naming the variant and its log when the training fails.
    """
    run_dir = out / variant["name"]
    if (run_dir / FINAL_CHECKPOINT).exists():
        print(f"{variant['name']}: trained ({run_dir / FINAL_CHECKPOINT})", flush=True)
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    command = training_command(config, variant, run_dir, data)
    print(f"{variant['name']}: training ({'resumed from ' + latest_checkpoint(run_dir) if '--resume' in command else 'start'})",
          flush=True)
    with open(run_dir / "train.log", "a") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"variant {variant['name']}: training failed (exit {done.returncode}); see "
                           f"{run_dir / 'train.log'}.")
    return run_dir


def variant_parser(config: Mapping[str, Any], variant: Mapping[str, Any] | None, data: Path) -> ConfigParser:
    """The train config with ``dataset_dir`` = ``data``, the common overrides and ``variant``'s (``None``: the
    common recipe only), for its ``network_def``, ``validate#dataset`` and ``validate#prepare_batch``."""
    parser = ConfigParser()
    parser.read_config(config["train_config"])
    parser["dataset_dir"] = str(data)
    for key, value in _overrides(config, variant).items():
        parser[key] = value
    return parser


def _items_key(config: Mapping[str, Any], data: Path) -> str:
    """What the validation items depend on: the train config's text, the common overrides, the data root and the
    source of the data and operator packages (the simulation, the masks, the coil-map estimation)."""
    digest = hashlib.sha256()
    digest.update(Path(config["train_config"]).read_bytes())
    digest.update(json.dumps([config.get("common", {}), str(data)], sort_keys=True, default=str).encode())
    for package in (rim_monai.data, rim_monai.operators):
        for source in sorted(Path(package.__file__).parent.glob("*.py")):
            digest.update(package.__name__.encode() + source.name.encode() + source.read_bytes())
    return digest.hexdigest()


def validation_items(config: Mapping[str, Any], data: Path, cache: Path | None = None) -> list[Any]:
    """The validation items of the common recipe (``validate#dataset`` of the train config with the ``common``
    overrides), simulated, or loaded from ``cache`` when it was written for the same inputs (:func:`_items_key`).

    Args:
        config: the ablation config.
        data: the shared data root.
        cache: a file to load the items from or to save them to (atomically); ``None``: no cache.

    Returns:
        The uncollated items.
    """
    key = _items_key(config, data)
    if cache is not None and cache.is_file():
        stored = torch.load(cache, map_location="cpu", weights_only=False)
        if isinstance(stored, dict) and stored.get("key") == key:
            return list(stored["items"])
        print(f"--items-cache {cache}: written for another config, data or code; simulating the items again",
              flush=True)
    items = list(variant_parser(config, None, data).get_parsed_content("validate#dataset"))
    if cache is not None:
        with atomic_write(cache, overwrite=True) as tmp:
            torch.save({"key": key, "items": items}, tmp)
    return items


def score_network(network: torch.nn.Module, items: Sequence[Mapping[str, Any]], prepare_batch: Any,
                  group_by: str | None = None, device: str | torch.device = "cpu") -> list[dict[str, Any]]:
    """PSNR and SSIM of ``network`` on each item (data range max − min of each reference).

    Args:
        network: called as ``network(y, *args, **kwargs)`` with what ``prepare_batch`` returns.
        items: uncollated dataset items (each is collated into a batch of one).
        prepare_batch: a ``(batch, device) -> (y, target, args, kwargs)`` callable (the validation's
            :class:`~rim_monai.engines.PrepareMeasurementBatch`).
        group_by: an item key whose value is recorded as ``"group"`` (``None``: no group).
        device: where the network runs.

    Returns:
        One ``{"index", "name", "group", "psnr", "ssim"}`` per item.
    """
    rows = []
    network = network.to(device).eval()
    with torch.inference_mode():
        for index, item in enumerate(items):
            y, target, args, kwargs = prepare_batch(list_data_collate([item]), device)
            quality = image_quality(network(y, *args, **kwargs), target, "per_image", ("psnr", "ssim"),
                                    reduction="none")
            rows.append({"index": index, "name": str(item.get("name", index)),
                         "group": None if not group_by else str(item[group_by]),
                         "psnr": float(quality["psnr"][0]), "ssim": float(quality["ssim"][0])})
    return rows


def _curve(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "curve.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    best = max(rows, key=lambda r: float(r["val_psnr"]))
    return {"iterations": int(rows[-1]["iteration"]), "cpu_hours": float(rows[-1]["cpu_s_total"]) / 3600,
            "best_epoch": int(best["epoch"]), "curve_best_psnr": float(best["val_psnr"])}


def summarise(variant: Mapping[str, Any], run_dir: Path, scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One table row: the variant, its run (``curve.csv``) and the mean PSNR / SSIM of ``scores`` overall and per
    group (``psnr[<group>]``)."""
    row: dict[str, Any] = {"variant": variant["name"], "description": variant.get("description", ""),
                           **_curve(run_dir)}
    if scores:
        row["psnr"] = sum(s["psnr"] for s in scores) / len(scores)
        row["ssim"] = sum(s["ssim"] for s in scores) / len(scores)
        groups: dict[str, list[float]] = defaultdict(list)
        for s in scores:
            if s["group"] is not None:
                groups[s["group"]].append(s["psnr"])
        for group, values in sorted(groups.items()):
            row[f"psnr[{group}]"] = sum(values) / len(values)
    return row


def paired_difference(scores: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
                      key: str = "psnr") -> tuple[float, float]:
    r"""Mean and paired standard error of ``scores`` minus ``reference`` over the same items:

    .. math::
        \bar d = \frac{1}{n} \sum_i (a_i - b_i), \qquad
        \mathrm{s.e.} = \sqrt{\frac{1}{n (n - 1)} \sum_i (a_i - b_i - \bar d)^2}.

    Args:
        scores: per-item rows of :func:`score_network` (``"index"`` and ``key``).
        reference: the reference's rows on the same items.
        key: the figure compared.

    Returns:
        ``(mean difference, standard error)``; the error is 0 for a single item.

    Raises:
        ValueError: when the two do not cover the same item indices.
    """
    ours, theirs = {s["index"]: s[key] for s in scores}, {s["index"]: s[key] for s in reference}
    if not ours or set(ours) != set(theirs):
        raise ValueError(f"scores: expected the reference's {len(theirs)} items, got {len(ours)} (other indices).")
    diffs = [ours[i] - theirs[i] for i in sorted(ours)]
    mean = sum(diffs) / len(diffs)
    if len(diffs) < 2:
        return mean, 0.0
    return mean, (sum((d - mean) ** 2 for d in diffs) / (len(diffs) * (len(diffs) - 1))) ** 0.5


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the ablation config (JSON)")
    parser.add_argument("--out", required=True, help="the folder of the variants' runs and the summary")
    parser.add_argument("--data", default=str(SHARED_DATA), help="the shared data root (the bundle's dataset_dir)")
    parser.add_argument("--variants", nargs="*", default=None, help="only these variants")
    parser.add_argument("--skip-training", action="store_true", help="score the variants' existing weights only")
    parser.add_argument("--items-cache", default=None,
                        help="a file that keeps the simulated validation items between runs (rebuilt when stale)")
    parser.add_argument("--common", action="append", default=[], metavar="KEY=VALUE",
                        help="a common override added to the config's (VALUE as JSON, else a string), e.g. "
                             "--common val_field_of_view=fill: the same variants on another validation set; repeatable")
    parser.add_argument("--reference", default=None,
                        help="the variant the others are compared with, item by item (default: the first scored)")
    args = parser.parse_args(argv)
    config = load_ablation_config(args.config, args.variants or None)
    config["common"] = {**config.get("common", {}), **parse_overrides(args.common, "--common")}
    out, data = Path(args.out), Path(args.data)
    known = [v["name"] for v in config["variants"]]
    unknown = sorted(set(args.variants or []) - set(known))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; the config has {known}.")
    variants = [v for v in config["variants"] if not args.variants or v["name"] in args.variants]
    if args.reference is not None and args.reference not in [v["name"] for v in variants]:
        raise SystemExit(f"--reference: {args.reference!r} is not among the variants scored "
                         f"{[v['name'] for v in variants]}.")
    fixed = config.get("weights")
    if not args.skip_training and fixed is None:
        for variant in variants:
            if variant.get("weights") is None:
                train_variant(config, variant, out, data)
    items = validation_items(config, data, Path(args.items_cache) if args.items_cache else None)
    prepare = variant_parser(config, None, data).get_parsed_content("validate#prepare_batch")
    rows, per_item = [], {}
    for variant in variants:
        run_dir = out / variant["name"]
        weights = Path(variant.get("weights") or fixed or run_dir / "models" / "model.pt")
        scores: list[dict[str, Any]] = []
        if weights.exists():
            network = variant_parser(config, variant, data).get_parsed_content("network_def")
            network.load_state_dict(network_weights(weights))
            scores = score_network(network, items, prepare, config.get("group_by") or None)
        else:
            print(f"{variant['name']}: no weights at {weights}; left out of the scores", flush=True)
        per_item[variant["name"]] = scores
        rows.append(summarise(variant, run_dir, scores))
    reference = args.reference or next((name for name, scores in per_item.items() if scores), None)
    if reference is not None and per_item.get(reference):
        for row in rows:
            if per_item[row["variant"]]:
                row["psnr_minus_reference"], row["paired_se"] = paired_difference(per_item[row["variant"]],
                                                                                  per_item[reference])
    groups = sorted({k for row in rows for k in row if k.startswith("psnr[")})
    columns = ["variant", "iterations", "cpu_hours", "best_epoch", "psnr", "psnr_minus_reference", "paired_se",
               *groups, "ssim", "description"]
    table = format_table(rows, columns, {"iterations": "{:d}", "best_epoch": "{:d}", "cpu_hours": "{:.2f}",
                                         "psnr": "{:.2f}", "psnr_minus_reference": "{:+.2f}", "paired_se": "{:.2f}",
                                         "ssim": "{:.3f}", **{g: "{:.2f}" for g in groups}})
    caption = (f"Validation items of {config['train_config']} with the common overrides {config.get('common', {})}: "
               f"{len(items)} items; PSNR dB (data range max − min of each reference); psnr_minus_reference and its "
               f"paired standard error against {reference}. Machine: {machine_line()}.")
    atomic_write_text(out / "ablation.md", f"{caption}\n\n{table}\n")
    atomic_write_text(out / "ablation.json", json.dumps({"config": config, "reference": reference, "rows": rows,
                                                         "items": per_item}, indent=1))
    print(f"{caption}\n\n{table}")


if __name__ == "__main__":
    main()

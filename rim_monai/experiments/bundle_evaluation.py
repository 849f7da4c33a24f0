"""Run a bundle's ``evaluate.json`` over a table of settings and gather one evaluation table.

``python -m rim_monai.experiments.bundle_evaluation --bundle bundles/mri_rim_recon --settings configs/mri_evaluation.json
--out bundles/mri_rim_recon/docs/evaluation``

The settings file is a JSON list of ``{"name": ..., "overrides": {config id: value}}``. Each setting runs the bundle's
``inference.json`` merged with ``evaluate.json`` and the overrides (the learned network and the classical baselines
on the same inputs, as the bundle's ``ReconstructionSaver`` scores them), into ``<out>/<name>/``. The per-file rows
are averaged per setting and method into ``<out>/evaluation.md`` and ``<out>/evaluation.json``, which also record the
machine and torch version.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigWorkflow

from rim_monai.data.file_utils import atomic_write
from rim_monai.engines import ReconstructionSaver, format_table
from rim_monai.machine import cpu_model

__all__ = ["evaluate_settings", "summarise", "main"]


def _saver(workflow: ConfigWorkflow) -> ReconstructionSaver:
    for handler in workflow.parser.get_parsed_content("handlers"):
        if isinstance(handler, ReconstructionSaver):
            return handler
    raise ValueError("handlers: the bundle's evaluation has no ReconstructionSaver to read the metrics from.")


def evaluate_settings(bundle: str | os.PathLike, settings: list[dict[str, Any]], out: str | os.PathLike) -> list[dict]:
    """Run every setting; return the per-file metric rows, each tagged with its ``setting``."""
    configs = Path(bundle) / "configs"
    rows: list[dict] = []
    for setting in settings:
        name = setting["name"]
        overrides = {"output_dir": str(Path(out) / name), **setting.get("overrides", {})}
        workflow = ConfigWorkflow(
            config_file=[str(configs / "inference.json"), str(configs / "evaluate.json")],
            workflow_type="infer",
            **overrides,
        )
        workflow.initialize()
        start = time.perf_counter()
        workflow.run()
        workflow.finalize()
        print(f"{name}: {time.perf_counter() - start:.1f} s")
        rows += [{"setting": name, **row} for row in _saver(workflow).rows]
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean PSNR / SSIM / NMSE (and seconds per slice of the network) per setting and method, in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["setting"], row["method"])].append(row)
    table = []
    for (setting, method), group in groups.items():
        entry: dict[str, Any] = {"setting": setting, "method": method, "files": len(group)}
        for key in ("psnr", "ssim", "nmse", "seconds_per_slice"):
            values = [float(r[key]) for r in group if key in r and not math.isnan(float(r[key]))]
            entry[key] = sum(values) / len(values) if values else float("nan")
        table.append(entry)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="the bundle folder")
    parser.add_argument("--settings", required=True, help="JSON list of {name, overrides}")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    settings = json.loads(Path(args.settings).read_text())
    if not isinstance(settings, list) or not all("name" in s for s in settings):
        raise ValueError(f"settings: expected a JSON list of {{'name', 'overrides'}} objects in {args.settings}.")
    rows = evaluate_settings(args.bundle, settings, args.out)
    table = summarise(rows)
    machine = f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"
    markdown = format_table(table, ["setting", "method", "files", "psnr", "ssim", "nmse", "seconds_per_slice"])
    out = Path(args.out)
    with atomic_write(out / "evaluation.md", overwrite=True) as tmp:
        tmp.write_text(f"Machine: {machine}\n\n{markdown}\n")
    with atomic_write(out / "evaluation.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps({"machine": machine, "rows": rows, "table": table}, indent=2))
    print(f"\n{markdown}")


if __name__ == "__main__":
    main()

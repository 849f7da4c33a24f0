"""Run a bundle's ``evaluate.json`` over a table of settings and gather one evaluation table.

``python -m rim_monai.experiments.bundle_evaluation --bundle bundles/mri_rim_recon --settings configs/mri_evaluation.json
--out bundles/mri_rim_recon/docs/evaluation``

The settings file is a JSON list of ``{"name": ..., "overrides": {config id: value}}``; ``{data}`` in a string value
stands for the data folder (``--data``, default ``../shared/data`` next to the checkout). Each setting runs the bundle's
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

from rim_monai.data.file_utils import atomic_write_text
from rim_monai.engines import ReconstructionSaver, format_table
from rim_monai.experiments.environment import SHARED_DATA
from rim_monai.machine import cpu_model

__all__ = ["with_data_folder", "evaluate_settings", "summarise", "main"]


def _saver(workflow: ConfigWorkflow) -> ReconstructionSaver:
    for handler in workflow.parser.get_parsed_content("handlers"):
        if isinstance(handler, ReconstructionSaver):
            return handler
    raise ValueError("handlers: the bundle's evaluation has no ReconstructionSaver to read the metrics from.")


def with_data_folder(value: Any, data: str | os.PathLike) -> Any:
    """``value`` with ``{data}`` in its strings (also inside lists and dicts) replaced by the folder ``data``."""
    if isinstance(value, str):
        return value.replace("{data}", os.fspath(data))
    if isinstance(value, list):
        return [with_data_folder(v, data) for v in value]
    if isinstance(value, dict):
        return {k: with_data_folder(v, data) for k, v in value.items()}
    return value


def evaluate_settings(
    bundle: str | os.PathLike, settings: list[dict[str, Any]], out: str | os.PathLike, data: str | os.PathLike = SHARED_DATA
) -> list[dict]:
    """Run every setting (``{data}`` in its overrides: the folder ``data``); return the per-file metric rows, each
    tagged with its ``setting``."""
    configs = Path(bundle) / "configs"
    rows: list[dict] = []
    for setting in settings:
        name = setting["name"]
        overrides = {"output_dir": str(Path(out) / name), **with_data_folder(setting.get("overrides", {}), data)}
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
    parser.add_argument("--data", default=str(SHARED_DATA), help="the data folder that {data} in the settings means")
    args = parser.parse_args(argv)
    settings = json.loads(Path(args.settings).read_text())
    if not isinstance(settings, list) or not all("name" in s for s in settings):
        raise ValueError(f"settings: expected a JSON list of {{'name', 'overrides'}} objects in {args.settings}.")
    rows = evaluate_settings(args.bundle, settings, args.out, args.data)
    table = summarise(rows)
    machine = f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"
    markdown = format_table(table, ["setting", "method", "files", "psnr", "ssim", "nmse", "seconds_per_slice"])
    out = Path(args.out)
    atomic_write_text(out / "evaluation.md", f"Machine: {machine}\n\n{markdown}\n")
    atomic_write_text(out / "evaluation.json", json.dumps({"machine": machine, "rows": rows, "table": table}, indent=2))
    print(f"\n{markdown}")


if __name__ == "__main__":
    main()

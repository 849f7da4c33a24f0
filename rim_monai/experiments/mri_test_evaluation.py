r"""The MRI network on real test scans it never saw, beside zero-filled, CG-SENSE, validation-tuned TV and oracle TV.

``python -m rim_monai.experiments.mri_test_evaluation --config configs/mri_test_evaluation.json --out DIR``

The config names the test sets (magnitude or complex images under the data folder, simulated with the bundle's own
:class:`~rim_monai.data.MRIProtocol` per setting; or measured k-space, undersampled retrospectively by the same
protocol and read by its fastMRI path), the settings (coils and acceleration), the TV weight grid and the validation
subjects (by default the ``val_subjects`` of the bundle's ``train.json``, never a test file). Per item it runs

- ``zero_filled`` :math:`A^H y`, ``cg_sense`` (:func:`~rim_monai.classical.cg_normal` with its data-driven stop),
- TV (:func:`~rim_monai.classical.scaled_tv`) at every grid weight :math:`c`,
- ``rim``: the bundle's network (``inference.json``'s ``network_def``) with the given checkpoint,

and scores magnitudes with the fastMRI protocol: per file, PSNR with the data range :math:`R` = the maximum of its
references, :math:`10 \log_{10}(R^2 / \mathrm{MSE})` with the MSE over all its pixels, SSIM the pixel-weighted mean
of the slices' SSIM (7x7 window, :math:`R`), NMSE :math:`\sum\|\hat x - x\|^2 / \sum\|x\|^2`; then the mean over
files. ``tv_val`` is TV at the weight with the best mean validation PSNR of the setting the test setting tunes on;
``tv_oracle`` TV at the best weight on the test set itself (for reference only). Every item's scores are cached in
``<out>/cache.json`` (written atomically after each item), so a rerun with another checkpoint (``--methods rim``)
only runs the network; the table goes to ``<out>/evaluation.md`` and ``<out>/evaluation.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch

from rim_monai.classical import cg_normal, scaled_tv, zero_filled
from rim_monai.data import MRIProtocol
from rim_monai.data.file_utils import atomic_write_text
from rim_monai.data.mr_readers import read_mr_slices
from rim_monai.data.samples import write_fastmri_kspace
from rim_monai.engines import format_table, load_bundle_network
from rim_monai.experiments.environment import SHARED_DATA
from rim_monai.machine import cpu_model
from rim_monai.metrics import ssim
from rim_monai.operators import MaskedFourier, ifft2c, rss

__all__ = ["measured_kspace", "test_items", "score", "run_methods", "set_scores", "summarise", "main"]

BASELINES = ("zero_filled", "cg_sense")
#: slices with a side below this (the short axes of a thin volume) are left out
MIN_SIZE = 32


def measured_kspace(path: Path, key: str | None = None) -> np.ndarray:
    """Fully sampled measured k-space ``(slices, coils, H, W)`` with the phase-encode direction last (the axis
    fastMRI masks undersample): a ``(coils, lines, columns)`` ``.npy`` (Siemens twix, lines = phase encodes), or a
    ``.mat`` array ``key`` of shape ``(H, W, frames)`` (single coil, frames as slices).

    Raises:
        ValueError: naming ``path`` for another format or shape.
    """
    if path.suffix == ".npy":
        data = np.load(path)
        if data.ndim != 3 or not np.iscomplexobj(data):
            raise ValueError(f"{path}: expected complex (coils, lines, columns), got {data.shape} {data.dtype}.")
        return np.swapaxes(data, -1, -2)[None]
    if path.suffix == ".mat":
        data = scipy.io.loadmat(path)[key or "kdata"]
        if data.ndim != 3 or not np.iscomplexobj(data):
            raise ValueError(f"{path}[{key}]: expected complex (H, W, frames), got {data.shape} {data.dtype}.")
        return np.moveaxis(data, -1, 0)[:, None]
    raise ValueError(f"{path}: expected a .npy or .mat k-space file, got {path.suffix!r}.")


def _fastmri_file(entry: Mapping[str, Any], data: Path, out: Path) -> Path:
    """The set's k-space as a fastMRI-layout file: as stored (``.h5``), or converted into ``<out>/kspace/``."""
    path = data / entry["kspace"]
    if path.suffix == ".h5":
        return path
    target = out / "kspace" / f"{entry['name']}.h5"
    if not target.exists():
        full = measured_kspace(path, entry.get("key"))
        reference = rss(ifft2c(torch.from_numpy(full.astype(np.complex64))), dim=1).numpy()
        write_fastmri_kspace(target, full, reference, acquisition="MEASURED")
    return target


def _picks(count: int, wanted: int) -> list[int]:
    """``wanted`` indices evenly spread over ``range(count)`` (all of them when there are fewer)."""
    if count <= wanted:
        return list(range(count))
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, wanted + 2)[1:-1]})


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[top : top + min(h, size), left : left + min(w, size)]


def _seed(*parts: Any) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) % (2**31)


def _measured_item(item: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The entries a reconstruction needs, with the reference as a magnitude ``(H, W)``."""
    target = torch.as_tensor(item["target"]).abs().reshape(item["kspace"].shape[-2:])
    return {"kspace": item["kspace"], "mask": item["mask"], "sens": item["sens"], "target": target}


def test_items(
    entry: Mapping[str, Any], setting: Mapping[str, Any], config: Mapping[str, Any], data: Path, out: Path
) -> Iterator[tuple[str, int, dict[str, torch.Tensor]]]:
    """``(file, slice, item)`` of one set under one setting; ``item`` has ``kspace`` ``(C, H, W)``, ``mask``
    ``(1, H, W)``, ``sens`` ``(C, H, W)`` and the magnitude ``target`` ``(H, W)``."""
    estimator = entry.get("map_estimator", config.get("map_estimator", "lowres"))
    wanted = int(entry.get("slices_per_file", config.get("slices_per_file", 3)))
    if "kspace" in entry:
        protocol = MRIProtocol(acceleration=setting.get("acceleration") or 4.0, mask_func=config["mask_func"],
                               seed=_seed(entry["name"], setting["name"]), map_estimator=estimator)
        path = _fastmri_file(entry, data, out)
        dataset = protocol.read_scans("kspace", [path], None, -1)
        for index in _picks(len(dataset), wanted):
            yield path.name, index, _measured_item(dataset[index])
        return
    for name in entry["files"]:
        slices = [s for s in read_mr_slices(data / name) if min(s.shape) >= MIN_SIZE]
        for index in _picks(len(slices), wanted):
            image = torch.from_numpy(np.ascontiguousarray(_centre_crop(slices[index], int(config.get("max_size", 512)))))
            protocol = MRIProtocol(acceleration=setting["acceleration"], mask_func=config["mask_func"],
                                   coils=setting["coils"], snr_db=config["snr_db"], map_estimator=estimator)
            simulate = protocol.simulation()
            simulate.set_random_state(seed=_seed(entry["name"], name, index, setting["name"]))
            yield name, index, _measured_item(simulate({"image": image[None]}))


def score(estimate: torch.Tensor, target: torch.Tensor, data_range: float) -> dict[str, float]:
    """The sums a volume metric needs: squared error, reference energy, pixel count, and the slice's mean SSIM
    with ``data_range`` (magnitudes of ``estimate`` and ``target`` ``(H, W)``)."""
    pred = estimate.abs().reshape(target.shape).double()
    ref = target.double()
    value = ssim(pred[None, None], ref[None, None], data_range=data_range)
    return {"err2": float((pred - ref).square().sum()), "ref2": float(ref.square().sum()),
            "pixels": int(ref.numel()), "ssim": float(value), "range": float(data_range)}


def _methods(config: Mapping[str, Any], network: torch.nn.Module | None, which: str) -> dict[str, Callable]:
    methods: dict[str, Callable] = {}
    if which in ("all", "baselines"):
        methods["zero_filled"] = zero_filled
        methods["cg_sense"] = cg_normal
        for c in config["tv_weights"]:
            methods[f"tv@{c:g}"] = lambda y, A, c=c: scaled_tv(y, A, weight=c, iterations=config["tv_iterations"])
    if which in ("all", "rim") and network is not None:
        methods["rim"] = network
    return methods


def run_methods(
    role: str, entry: Mapping[str, Any], setting: Mapping[str, Any], config: Mapping[str, Any], data: Path,
    out: Path, methods: Mapping[str, Callable], cache: dict[str, dict], label: str,
) -> None:
    """Reconstruct every item of one set under one setting with every method not yet in ``cache`` (the network's
    entries are keyed by ``label``), saving the cache after each item."""
    items = list(test_items(entry, setting, config, data, out))
    ranges: dict[str, float] = defaultdict(float)
    for name, _, item in items:
        ranges[name] = max(ranges[name], float(item["target"].max()))
    for name, index, item in items:
        y, operator = item["kspace"][None], MaskedFourier(item["mask"][None], item["sens"][None])
        start = time.perf_counter()
        for method, function in methods.items():
            key = "|".join([role, entry["name"], setting["name"], name, str(index), label if method == "rim" else method])
            if key in cache:
                continue
            tick = time.perf_counter()
            with torch.inference_mode():
                estimate = function(y, operator)
            seconds = time.perf_counter() - tick
            if entry.get("align_scale"):
                mag, ref = estimate.abs().reshape(item["target"].shape), item["target"]
                estimate = mag * (mag * ref).sum() / mag.square().sum().clamp_min(1e-30)
            cache[key] = {**score(estimate, item["target"], ranges[name]), "seconds": seconds}
        atomic_write_text(out / "cache.json", json.dumps(cache))
        print(f"{role} {entry['name']} {setting['name']} {name}[{index}] {tuple(y.shape[-3:])}: "
              f"{time.perf_counter() - start:.1f} s", flush=True)


def _psnr(err2: float, pixels: int, peak: float) -> float:
    return 10 * math.log10(peak**2 / max(err2 / pixels, 1e-30))


def _entries(cache: Mapping[str, dict], prefix: str, method: str) -> dict[str, list[dict]]:
    """The cached slices ``prefix|file|slice|method``, per file (each with its ``slice`` index)."""
    files: dict[str, list[dict]] = defaultdict(list)
    for key, value in cache.items():
        head, file, index, name = key.rsplit("|", 3)
        if head == prefix and name == method:
            files[file].append({**value, "slice": int(index)})
    return files


def set_scores(cache: Mapping[str, dict], prefix: str, method: str) -> dict[str, float] | None:
    """Mean over files of the volume PSNR / SSIM / NMSE (module docstring) of ``method`` on ``prefix``
    (``role|set|setting``), the slices' PSNR, and the mean seconds per slice; ``None`` when nothing is cached."""
    files = _entries(cache, prefix, method)
    if not files:
        return None
    volumes, slices = [], {}
    for file, values in sorted(files.items()):
        err2, pixels = sum(v["err2"] for v in values), sum(v["pixels"] for v in values)
        volumes.append({"psnr": _psnr(err2, pixels, values[0]["range"]),
                        "ssim": sum(v["ssim"] * v["pixels"] for v in values) / pixels,
                        "nmse": err2 / sum(v["ref2"] for v in values)})
        slices.update({f"{file}[{v['slice']}]": _psnr(v["err2"], v["pixels"], v["range"]) for v in values})
    seconds = [v["seconds"] for values in files.values() for v in values]
    mean = {key: sum(v[key] for v in volumes) / len(volumes) for key in ("psnr", "ssim", "nmse")}
    return {**mean, "files": len(volumes), "slices": slices, "seconds": sum(seconds) / len(seconds)}


def _best_weight(cache: Mapping[str, dict], prefix: str, weights: list[float]) -> tuple[float, dict] | None:
    scored = [(c, set_scores(cache, prefix, f"tv@{c:g}")) for c in weights]
    scored = [(c, s) for c, s in scored if s is not None]
    return max(scored, key=lambda cs: cs[1]["psnr"]) if scored else None


def summarise(cache: Mapping[str, dict], config: Mapping[str, Any], label: str) -> list[dict[str, Any]]:
    """One row per test set and setting: zero-filled, CG-SENSE, TV at the validation-tuned weight, the oracle TV
    and the network (``label``), their PSNR (SSIM for the network), the network's margin over ``tv_val`` and its
    worst slice margin over zero-filled."""
    settings = {s["name"]: s for s in config["settings"]}
    rows = []
    for entry in config["test_sets"]:
        for name in entry.get("settings", list(settings)):
            setting = settings[name]
            prefix = f"test|{entry['name']}|{name}"
            scores = {m: set_scores(cache, prefix, m) for m in (*BASELINES, label)}
            tuned = _best_weight(cache, f"val|validation|{setting.get('tune_on', name)}", config["tv_weights"])
            oracle = _best_weight(cache, prefix, config["tv_weights"])
            tv_val = set_scores(cache, prefix, f"tv@{tuned[0]:g}") if tuned else None
            row: dict[str, Any] = {"set": entry["name"], "setting": name,
                                   "files": scores["zero_filled"]["files"] if scores["zero_filled"] else 0}
            row.update({m: scores[m]["psnr"] if scores[m] else float("nan") for m in BASELINES})
            row["tv_val"] = tv_val["psnr"] if tv_val else float("nan")
            row["c_val"] = tuned[0] if tuned else float("nan")
            row["tv_oracle"] = oracle[1]["psnr"] if oracle else float("nan")
            row["c_oracle"] = oracle[0] if oracle else float("nan")
            net = scores[label]
            row.update({"rim": net["psnr"] if net else float("nan"), "rim_ssim": net["ssim"] if net else float("nan"),
                        "rim_minus_tv_val": (net["psnr"] - row["tv_val"]) if net else float("nan"),
                        "worst_slice_rim_minus_zf": min(net["slices"][k] - scores["zero_filled"]["slices"][k]
                                                        for k in net["slices"]) if net and scores["zero_filled"]
                        else float("nan"),
                        "rim_seconds": net["seconds"] if net else float("nan")})
            rows.append(row)
    return rows


def _validation_entry(config: Mapping[str, Any]) -> dict[str, Any]:
    """The validation set: ``config["validation_files"]``, or the ``val_subjects`` of ``config["train_config"]``."""
    files = config.get("validation_files")
    if files is None:
        subjects = json.loads(Path(config["train_config"]).read_text())["val_subjects"]
        files = [p for s in subjects for p in ([s] if isinstance(s, str) else s)]
    return {"name": "validation", "files": files, "slices_per_file": config.get("validation_slices_per_file", 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the evaluation config (JSON)")
    parser.add_argument("--out", required=True, help="output folder (cache.json, evaluation.md/json)")
    parser.add_argument("--data", default=str(SHARED_DATA), help="the shared data root")
    parser.add_argument("--bundle", default="bundles/mri_rim_recon", help="the bundle whose network is evaluated")
    parser.add_argument("--checkpoint", default=None, help="weights (default: the bundle's models/model.pt)")
    parser.add_argument("--label", default="rim", help="the network's name in the cache (one per checkpoint)")
    parser.add_argument("--methods", choices=("all", "baselines", "rim"), default="all")
    parser.add_argument("--sets", nargs="*", default=None, help="only these test sets (and validation)")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = json.loads((out / "cache.json").read_text()) if (out / "cache.json").exists() else {}
    network = None if args.methods == "baselines" else load_bundle_network(args.bundle, checkpoint=args.checkpoint)
    methods = _methods(config, network, args.methods)
    settings = {s["name"]: s for s in config["settings"]}
    validation = _validation_entry(config)
    for name in config.get("validation_settings", [s for s in settings if "tune_on" not in settings[s]]):
        tv_only = {k: v for k, v in methods.items() if k.startswith("tv@") or k == "rim"}
        run_methods("val", validation, settings[name], config, data, out, tv_only, cache, args.label)
    for entry in config["test_sets"]:
        if args.sets and entry["name"] not in args.sets:
            continue
        for name in entry.get("settings", list(settings)):
            run_methods("test", entry, settings[name], config, data, out, methods, cache, args.label)
    rows = summarise(cache, config, args.label)
    columns = ["set", "setting", "files", "zero_filled", "cg_sense", "tv_val", "c_val", "tv_oracle", "c_oracle", "rim",
               "rim_ssim", "rim_minus_tv_val", "worst_slice_rim_minus_zf", "rim_seconds"]
    machine = f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    table = format_table(rows, columns)
    atomic_write_text(out / "evaluation.md", f"Network: {args.label} ({args.checkpoint or 'models/model.pt'})\n"
                      f"Machine: {machine}\n\n{table}\n")
    atomic_write_text(out / "evaluation.json", json.dumps({"machine": machine, "config": config, "label": args.label,
                                                           "checkpoint": args.checkpoint, "rows": rows}, indent=2))
    print(table)


if __name__ == "__main__":
    main()

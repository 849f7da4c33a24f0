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
only runs the network; the table goes to ``<out>/evaluation.md`` and ``<out>/evaluation.json``. The cache, the
scores, the choice of the weight and the summary files are :mod:`~rim_monai.experiments.heldout_evaluation`'s,
shared with the CT evaluation. ``--settings NAME ...`` runs only those settings (and the validation settings they are
tuned on), e.g. the single-coil rows after a change to single-coil maps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch

from rim_monai.classical import cg_normal, scaled_tv, zero_filled
from rim_monai.data import MRIProtocol
from rim_monai.data.mr_readers import read_mr_slices
from rim_monai.data.samples import write_fastmri_kspace
from rim_monai.engines import load_bundle_network
from rim_monai.experiments.heldout_evaluation import (
    argument_parser, evenly_spaced, load_cache, load_config, metric, nan_if_none, network_overrides, run_items, score,
    set_scores, stable_seed, subject_files, tuned_and_oracle, worst_slice_margin, write_summary,
)
from rim_monai.operators import MaskedFourier, ifft2c, rss

__all__ = [
    "measured_kspace", "test_items", "score", "run_methods", "set_scores", "summarise", "select_settings", "main",
]

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


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return image[top : top + min(h, size), left : left + min(w, size)]


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
                               seed=stable_seed(entry["name"], setting["name"]), map_estimator=estimator)
        path = _fastmri_file(entry, data, out)
        dataset = protocol.read_scans("kspace", [path], None, -1)
        for index in evenly_spaced(len(dataset), wanted):
            yield path.name, index, _measured_item(dataset[index])
        return
    for name in entry["files"]:
        slices = [s for s in read_mr_slices(data / name) if min(s.shape) >= MIN_SIZE]
        for index in evenly_spaced(len(slices), wanted):
            image = torch.from_numpy(np.ascontiguousarray(_centre_crop(slices[index], int(config.get("max_size", 512)))))
            protocol = MRIProtocol(acceleration=setting["acceleration"], mask_func=config["mask_func"],
                                   coils=setting["coils"], snr_db=config["snr_db"], map_estimator=estimator)
            simulate = protocol.simulation()
            simulate.set_random_state(seed=stable_seed(entry["name"], name, index, setting["name"]))
            yield name, index, _measured_item(simulate({"image": image[None]}))


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


def _magnitude(estimate: torch.Tensor, item: Mapping[str, Any], align_scale: bool) -> torch.Tensor:
    """The magnitude image scored against the reference; with ``align_scale`` its least-squares multiple of it."""
    mag, ref = estimate.abs().reshape(item["target"].shape), item["target"]
    return mag * (mag * ref).sum() / mag.square().sum().clamp_min(1e-30) if align_scale else mag


def run_methods(
    role: str, entry: Mapping[str, Any], setting: Mapping[str, Any], config: Mapping[str, Any], data: Path,
    out: Path, methods: Mapping[str, Callable], cache: dict[str, dict], label: str,
) -> None:
    """Reconstruct every item of one set under one setting with every method not yet in ``cache`` (the network's
    entries are keyed by ``label``), saving the cache after each item."""
    run_items(
        f"{role}|{entry['name']}|{setting['name']}", list(test_items(entry, setting, config, data, out)), methods,
        cache, out, measure=lambda item: (item["kspace"][None], MaskedFourier(item["mask"][None], item["sens"][None])),
        network="rim", label=label,
        prepare=lambda estimate, item: _magnitude(estimate, item, bool(entry.get("align_scale"))),
    )


def summarise(cache: Mapping[str, dict], config: Mapping[str, Any], label: str) -> list[dict[str, Any]]:
    """One row per test set and setting: zero-filled, CG-SENSE, TV at the validation-tuned weight, the oracle TV
    and the network (``label``), their PSNR (SSIM for the network), the network's margin over ``tv_val`` and its
    worst slice margin over zero-filled."""
    settings = {s["name"]: s for s in config["settings"]}
    rows = []
    for entry in config["test_sets"]:
        for name in entry.get("settings", list(settings)):
            prefix = f"test|{entry['name']}|{name}"
            scores = {m: set_scores(cache, prefix, m) for m in (*BASELINES, label)}
            tv = tuned_and_oracle(cache, f"val|validation|{settings[name].get('tune_on', name)}", prefix,
                                  {c: f"tv@{c:g}" for c in config["tv_weights"]})
            net = scores[label]
            row: dict[str, Any] = {"set": entry["name"], "setting": name,
                                   "files": scores["zero_filled"]["files"] if scores["zero_filled"] else 0}
            row.update({m: metric(scores[m]) for m in BASELINES})
            row.update({"tv_val": metric(tv.scores), "c_val": nan_if_none(tv.value),
                        "tv_oracle": metric(tv.oracle_scores), "c_oracle": nan_if_none(tv.oracle)})
            row.update({"rim": metric(net), "rim_ssim": metric(net, "ssim"),
                        "rim_minus_tv_val": metric(net) - row["tv_val"] if net else float("nan"),
                        "worst_slice_rim_minus_zf": worst_slice_margin(net, scores["zero_filled"]),
                        "rim_seconds": metric(net, "seconds")})
            rows.append(row)
    return rows


def select_settings(config: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """``config`` restricted to the settings ``names``: each test set keeps those of its settings, a set with none is
    dropped, and validation runs only the settings they are tuned on (``tune_on``, else their own).

    Raises:
        ValueError: naming ``--settings`` for a name the config does not define.

    Example:
        >>> config = {"settings": [{"name": "8coil_4x"}, {"name": "1coil_4x"},
        ...                        {"name": "measured_1coil_4x", "tune_on": "1coil_4x"}],
        ...           "test_sets": [{"name": "a", "settings": ["8coil_4x", "1coil_4x"]},
        ...                         {"name": "b", "settings": ["measured_1coil_4x"]}]}
        >>> selected = select_settings(config, ["1coil_4x", "measured_1coil_4x"])
        >>> [(e["name"], e["settings"]) for e in selected["test_sets"]], selected["validation_settings"]
        ([('a', ['1coil_4x']), ('b', ['measured_1coil_4x'])], ['1coil_4x'])
    """
    settings = {s["name"]: s for s in config["settings"]}
    unknown = [n for n in names if n not in settings]
    if unknown:
        raise ValueError(f"--settings: {unknown} not among the config's settings {sorted(settings)}.")
    selected = dict(config)
    selected["test_sets"] = [dict(entry, settings=[n for n in entry.get("settings", list(settings)) if n in names])
                             for entry in config["test_sets"]]
    selected["test_sets"] = [entry for entry in selected["test_sets"] if entry["settings"]]
    selected["validation_settings"] = sorted({settings[n].get("tune_on", n) for n in names})
    return selected


def _validation_entry(config: Mapping[str, Any]) -> dict[str, Any]:
    """The validation set: ``config["validation_files"]``, or the ``val_subjects`` of ``config["train_config"]``."""
    files = config.get("validation_files")
    if files is None:
        files = subject_files(config["train_config"], "val_subjects")
    return {"name": "validation", "files": files, "slices_per_file": config.get("validation_slices_per_file", 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0], "bundles/mri_rim_recon", "rim")
    parser.add_argument("--settings", nargs="*", default=None,
                        help="only these settings (e.g. 1coil_4x 1coil_8x measured_1coil_4x measured_1coil_8x), with "
                             "the validation settings they are tuned on")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.settings:
        config = select_settings(config, args.settings)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = load_cache(out)
    config["bundle_overrides"] = network_overrides(config, args.override)  # the summary records what was used
    network = None if args.methods == "baselines" else load_bundle_network(
        args.bundle, overrides=config["bundle_overrides"], checkpoint=args.checkpoint)
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
    print(write_summary(out, rows, columns, config, args.label, args.checkpoint))


if __name__ == "__main__":
    main()

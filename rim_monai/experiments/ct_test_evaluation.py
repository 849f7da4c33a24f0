r"""The CT network on held-out patients and ellipses, 3 doses x 2 geometries, beside tuned FBP and TV; and on the
real HTC 2022 sinograms.

``python -m rim_monai.experiments.ct_test_evaluation --config configs/ct_test_evaluation.json --out DIR``

**Items.** The config's test sets list files under the data folder (the ``test_subjects`` of the bundle's
``train.json``, grouped by body region; a file that is one of its training or validation subjects is an error) or a
number of ellipse phantoms. Each slice (:func:`~rim_monai.data.ct_corpus.read_ct_slices`, ``slices_per_file`` evenly
spread, padded to a square with air) is measured by the bundle's own acquisition: the ``protocol`` of its
``inference.json``, merged with the setting's ``config`` (``inference_fan.json`` for fan beam, as MONAI merges a list
of configs) and ``photons`` — the 256² grid of 1 mm pixels, 60 views, Poisson counts at :math:`I_0` per detector bin,
simulated on a 2x finer grid — seeded per (set, file, slice, setting). Ellipses are the protocol's seeded phantoms
(:meth:`~rim_monai.data.CTProtocol.phantoms`; stream 2 is the bundle's test split, 1 its validation split).

**Methods**, per item:

- ``fbp@<filter>``: :func:`~rim_monai.classical.fbp` with each filter of ``filters`` (default all of
  :data:`~rim_monai.operators.tomography.FBP_FILTERS`);
- ``tv@<c>``: :func:`~rim_monai.classical.scaled_tv` (non-negative, from the Hann FBP, at most ``tv_iterations``
  with the solver's stopping rule) at the weights of the setting's ``tv_weights`` that a walk on the set's mean PSNR
  visits (:func:`~rim_monai.experiments.heldout_evaluation.climb`: from the grid's middle on a validation set, from
  the validation weight on a test set, to the best weight of the grid when PSNR is unimodal in the weight; about 4
  weights instead of 11), or at every weight with ``tv_search`` = ``"grid"``;
- ``tv_default``: :func:`~rim_monai.classical.tv_pdhg` given no weight (discrepancy principle, noise from the data);
- ``lpd``: the bundle's ``network_def`` with ``--checkpoint`` (cached under ``--label``), loaded with the setting's
  configs (:func:`~rim_monai.engines.load_bundle_network`).

**Scores** (:mod:`~rim_monai.experiments.heldout_evaluation`): attenuation images in mm⁻¹; per file, PSNR
:math:`10\log_{10}(R^2/\mathrm{MSE})` with :math:`R` = **the maximum of the file's reference** (air is 0 in every
reference, so :math:`R` is also its max − min), SSIM (7x7 window, :math:`R`); then the mean over the set's files.
``fbp_best`` is FBP with the filter of the best mean PSNR on the validation set (the test set's ``validation``,
default the first of ``validation_sets``: the ``val_subjects`` of ``train.json``), ``tv_val`` TV at the weight chosen
the same way, per setting; ``fbp_oracle`` / ``tv_oracle`` the best on the test set itself, for reference only. The
summary flags a validation or oracle weight at the edge of its grid.

**HTC 2022** (``htc`` in the config): every sinogram of ``ct/htc2022_limited_angle`` with its own fan-beam operator
(:func:`~rim_monai.data.htc.htc2022_operator`: the bundle's ``operator`` config names no source and detector
distances, detector pitch or pixel size, so the network receives this ray transform, as in
:mod:`~rim_monai.experiments.htc_adaptation`); FBP with the validation filter and TV at the validation weight of
``htc.validation_setting``, ``tv_default``, and the network of ``htc.network_config``. There is no reference, so the
score is the data consistency :math:`\|A\hat x - y\| / \|y\|`; the images go to ``<out>/htc/`` and a figure to
``<out>/htc_reconstructions.png``.

Every score is cached in ``<out>/cache.json``, so another checkpoint is one cheap extra run
(``--methods lpd --label NAME --checkpoint PATH``); the tables go to ``<out>/evaluation.md`` and ``.json``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rim_monai.classical import fbp, scaled_tv, tv_pdhg
from rim_monai.classical.noise import estimate_photons
from rim_monai.data.ct_corpus import read_ct_slices
from rim_monai.data.htc import bin_detectors, htc2022_operator, read_htc2022
from rim_monai.data.keys import Keys
from rim_monai.engines import bundle_config, find_bundle_root, format_table, load_bundle_network
from rim_monai.experiments.heldout_evaluation import (
    Item, argument_parser, best_candidate, climb, evenly_spaced, load_cache, load_config, metric, nan_if_none,
    network_overrides, run_items, save_cache, set_scores, stable_seed, subject_files, tuned_and_oracle,
    worst_slice_margin, write_summary,
)
from rim_monai.experiments.htc_adaptation import htc_files, relative_residual, residual_figure
from rim_monai.operators.tomography import FBP_FILTERS

__all__ = ["NETWORK", "check_config", "validation_sets", "test_items", "setting_methods", "summarise", "htc_rows",
           "COLUMNS", "main"]

#: the network's method name (its cache entries carry ``--label``)
NETWORK = "lpd"
#: the summary table's columns
COLUMNS = ("set", "setting", "files", "fbp_best", "filter_val", "fbp_oracle", "tv_default", "tv_val", "c_val",
           "tv_oracle", "c_oracle", "lpd", "lpd_ssim", "tv_val_ssim", "lpd_minus_tv_val", "lpd_minus_fbp_best",
           "worst_slice_lpd_minus_fbp", "lpd_seconds")
_HTC_COLUMNS = ("file", "photons_est", "fbp", "tv_val", "tv_default", "lpd")


# ---------------------------------------------------------------------------------------------------- the config
def _fail(path: Any, field: str, message: str) -> ValueError:
    return ValueError(f"{path}: {field}: {message}")


def _names(entries: Any, path: Any, field: str) -> list[str]:
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise _fail(path, field, f"expected a non-empty list of objects with a 'name', got {entries!r}.")
    names = [str(e["name"]) for e in entries]
    if len(set(names)) != len(names):
        raise _fail(path, field, f"expected unique names, got {names}.")
    return names


def _check_source(entry: Mapping[str, Any], path: Any, field: str, keys: tuple[str, ...]) -> None:
    present = [k for k in keys if k in entry]
    if len(present) != 1:
        raise _fail(path, field, f"expected exactly one of {list(keys)}, got {present or 'none'}.")
    if "files" in entry and (not isinstance(entry["files"], list) or not entry["files"]):
        raise _fail(path, f"{field}.files", f"expected a non-empty list of paths, got {entry['files']!r}.")
    if "ellipses" in entry and not (isinstance(entry["ellipses"], int) and entry["ellipses"] > 0):
        raise _fail(path, f"{field}.ellipses", f"expected a positive number of phantoms, got {entry['ellipses']!r}.")


def _check_weights(weights: Any, path: Any, field: str) -> None:
    if not isinstance(weights, list) or not weights or not all(isinstance(c, (int, float)) and c > 0 for c in weights):
        raise _fail(path, field, f"expected a non-empty list of positive TV weights, got {weights!r}.")


def check_config(config: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Check the evaluation config read from ``path`` (module docstring; ``configs/ct_test_evaluation.json``).

    Raises:
        ValueError: naming ``path`` and the field: a missing or malformed field, an unknown setting, validation set
            or filter, a TV grid that is not positive numbers, or a test file that is a training or validation
            subject of ``train_config``.
    """
    settings = _names(config.get("settings"), path, "settings")
    for i, setting in enumerate(config["settings"]):
        photons = setting.get("photons")
        if not isinstance(photons, (int, float)) or photons <= 0:
            raise _fail(path, f"settings[{i}].photons", f"expected a positive photon count I0, got {photons!r}.")
        _check_weights(setting.get("tv_weights", config.get("tv_weights")), path, f"settings[{i}].tv_weights")
    if config.get("tv_search", "climb") not in ("climb", "grid"):
        raise _fail(path, "tv_search", f"expected 'climb' or 'grid', got {config['tv_search']!r}.")
    unknown = [f for f in config.get("filters", FBP_FILTERS) if f not in FBP_FILTERS]
    if unknown:
        raise _fail(path, "filters", f"expected names from {FBP_FILTERS}, got {unknown}.")
    validations = _names(config.get("validation_sets", [{"name": "patients", "subjects": "val_subjects"}]), path,
                         "validation_sets")
    for i, entry in enumerate(config.get("validation_sets", [{"subjects": "val_subjects"}])):
        if "validation_sets" in config:
            _check_source(entry, path, f"validation_sets[{i}]", ("files", "subjects", "ellipses"))
        if "subjects" in entry and "train_config" not in config:
            raise _fail(path, f"validation_sets[{i}].subjects", "names subjects of train_config, which is not given.")
    _names(config.get("test_sets"), path, "test_sets")
    for i, entry in enumerate(config["test_sets"]):
        _check_source(entry, path, f"test_sets[{i}]", ("files", "ellipses"))
        for name in entry.get("settings", settings):
            if name not in settings:
                raise _fail(path, f"test_sets[{i}].settings", f"unknown setting {name!r} (settings: {settings}).")
        if entry.get("validation", validations[0]) not in validations:
            raise _fail(path, f"test_sets[{i}].validation",
                        f"unknown validation set {entry['validation']!r} (validation_sets: {validations}).")
    htc = config.get("htc")
    if htc is not None and (not isinstance(htc, dict) or htc.get("validation_setting") not in settings):
        got = htc.get("validation_setting") if isinstance(htc, dict) else htc
        raise _fail(path, "htc.validation_setting", f"expected one of {settings}, got {got!r}.")
    if "train_config" in config:
        _check_split(config, path)


def _check_split(config: Mapping[str, Any], path: Any) -> None:
    """No test file among ``train_config``'s training or validation subjects, none among the validation files."""
    train = config["train_config"]
    seen = {f: "training" for f in subject_files(train, "train_subjects")}
    seen.update({f: "validation" for f in subject_files(train, "val_subjects")})
    seen.update({f: "validation" for entry in validation_sets(config).values() for f in entry.get("files", [])})
    for i, entry in enumerate(config["test_sets"]):
        for file in entry.get("files", []):
            if file in seen:
                raise _fail(path, f"test_sets[{i}].files", f"{file} is a {seen[file]} subject ({train}).")


def validation_sets(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The validation sets by name, ``subjects`` (a key of ``train_config``, e.g. ``"val_subjects"``) resolved to
    ``files``; default one set ``patients``: the ``val_subjects``, ``validation_slices_per_file`` slices each."""
    entries = config.get("validation_sets", [{"name": "patients", "subjects": "val_subjects"}])
    sets = {}
    for entry in entries:
        entry = dict(entry)
        if "subjects" in entry:
            entry["files"] = subject_files(config["train_config"], entry.pop("subjects"))
        entry.setdefault("slices_per_file", config.get("validation_slices_per_file", 1))
        sets[entry["name"]] = entry
    return sets


def _weights(config: Mapping[str, Any], setting: Mapping[str, Any]) -> list[float]:
    return [float(c) for c in setting.get("tv_weights", config.get("tv_weights"))]


def _filters(config: Mapping[str, Any]) -> list[str]:
    return list(config.get("filters", FBP_FILTERS))


# ---------------------------------------------------------------------------------------------------- the items
def _plain(item: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``sinogram`` ``(1, views, detectors)`` and ``target`` ``(H, W)`` as plain float tensors."""
    plain = {k: torch.as_tensor(item[k]).as_subclass(torch.Tensor).detach().float() for k in (Keys.SINOGRAM, Keys.TARGET)}
    return {Keys.SINOGRAM: plain[Keys.SINOGRAM], Keys.TARGET: plain[Keys.TARGET][0]}


def _square_hu(relative: np.ndarray) -> torch.Tensor:
    """A relative-attenuation slice padded to a square with air (0), in HU."""
    h, w = relative.shape
    n = max(h, w)
    padded = np.zeros((n, n), np.float32)
    padded[(n - h) // 2 : (n - h) // 2 + h, (n - w) // 2 : (n - w) // 2 + w] = relative
    return torch.from_numpy(1000.0 * (padded - 1.0))


def test_items(entry: Mapping[str, Any], setting: str, protocol: Any, config: Mapping[str, Any], data: Path
               ) -> list[Item]:
    """``(file, slice, item)`` of one set under the setting named ``setting`` measured by ``protocol`` (a
    :class:`~rim_monai.data.CTProtocol`); ``item`` has ``"sinogram"`` ``(1, views, detectors)`` and ``"target"``
    ``(H, W)`` (attenuation, mm⁻¹).

    Raises:
        ValueError: naming the set and file when a file has no slice with tissue.
    """
    if "ellipses" in entry:
        dataset = protocol.phantoms(int(entry["ellipses"]), int(entry.get("seed", 2)))
        return [(str(item[Keys.FILENAME]), 0, _plain(item)) for item in (dataset[i] for i in range(len(dataset)))]
    wanted = int(entry.get("slices_per_file", config.get("slices_per_file", 1)))
    items: list[Item] = []
    for name in entry["files"]:
        slices = read_ct_slices(data / name)
        if not slices:
            raise ValueError(f"{entry['name']}: {data / name} has no slice with tissue (5 % above -500 HU).")
        for index in evenly_spaced(len(slices), wanted):
            simulate = protocol.simulation()
            simulate.set_random_state(seed=stable_seed(entry["name"], name, index, setting))
            items.append((name, index, _plain(simulate({Keys.IMAGE: _square_hu(slices[index])[None]}))))
    return items


def _tv(config: Mapping[str, Any], weight: float | None) -> Callable:
    """TV as evaluated: non-negative, at most ``tv_iterations``; ``weight`` None: :func:`tv_pdhg`'s own choice."""
    iterations = int(config.get("tv_iterations", 2000))
    if weight is None:
        return partial(tv_pdhg, nonneg=True, iterations=iterations)
    return partial(scaled_tv, weight=weight, iterations=iterations, nonneg=True)


def setting_methods(config: Mapping[str, Any], setting: Mapping[str, Any], network: torch.nn.Module | None,
                    which: str) -> dict[str, Callable]:
    """``name -> f(y, A)``: ``fbp@<filter>``, ``tv@<c>``, ``tv_default`` (``which`` ``all`` / ``baselines``) and
    :data:`NETWORK` (``all`` / ``lpd``, when ``network`` is given)."""
    methods: dict[str, Callable] = {}
    if which in ("all", "baselines"):
        methods.update({f"fbp@{f}": partial(fbp, filter=f) for f in _filters(config)})
        methods.update({f"tv@{c:g}": _tv(config, c) for c in _weights(config, setting)})
        methods["tv_default"] = _tv(config, None)
    if which in ("all", NETWORK) and network is not None:
        methods[NETWORK] = network
    return methods


class _Bundle:
    """The bundle's protocol per setting and network per config file, built once when first asked for."""

    def __init__(self, bundle: str, config: Mapping[str, Any], checkpoint: str | None, with_network: bool) -> None:
        self.bundle, self.config, self.checkpoint, self.with_network = bundle, config, checkpoint, with_network
        self.root = Path(bundle) if (Path(bundle) / "configs").is_dir() else Path(find_bundle_root(bundle))
        self.settings = {s["name"]: s for s in config["settings"]}
        self._protocols: dict[str, Any] = {}
        self._networks: dict[str, torch.nn.Module] = {}

    def overrides(self, config_file: str, setting: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``inference.json`` overrides: ``config_file``'s content (unless it is ``inference.json``), the config's
        ``bundle_overrides``, the setting's ``overrides`` and ``photons``."""
        merged = {} if config_file == "inference.json" else load_config(self.root / "configs" / config_file)
        merged.update(self.config.get("bundle_overrides", {}))
        if setting is not None:
            merged.update({**setting.get("overrides", {}), "photons": float(setting["photons"])})
        return merged

    def protocol(self, name: str) -> Any:
        if name not in self._protocols:
            setting = self.settings[name]
            parser = bundle_config(self.root, self.overrides(setting.get("config", "inference.json"), setting))
            self._protocols[name] = parser.get_parsed_content("protocol")
        return self._protocols[name]

    def network(self, config_file: str) -> torch.nn.Module | None:
        if not self.with_network:
            return None
        if config_file not in self._networks:
            self._networks[config_file] = load_bundle_network(self.root, overrides=self.overrides(config_file),
                                                              checkpoint=self.checkpoint)
        return self._networks[config_file]

    def setting_network(self, name: str) -> torch.nn.Module | None:
        return self.network(self.settings[name].get("config", "inference.json"))


def _run_set(role: str, entry: Mapping[str, Any], setting: str, bundle: _Bundle, config: Mapping[str, Any],
             data: Path, out: Path, methods: Mapping[str, Callable], cache: dict[str, dict], label: str,
             tv_start: int) -> None:
    """Run ``methods`` on the items of one set under one setting; with ``tv_search`` = ``"climb"`` the TV weights
    among them by :func:`~rim_monai.experiments.heldout_evaluation.climb` from the grid index ``tv_start`` on the
    set's mean PSNR (every weight with ``"grid"``)."""
    protocol, prefix = bundle.protocol(setting), f"{role}|{entry['name']}|{setting}"
    run = partial(run_items, prefix, test_items(entry, setting, protocol, config, data), cache=cache, out=out,
                  measure=lambda item: (item[Keys.SINOGRAM][None], protocol.operator), network=NETWORK, label=label)
    climbing = config.get("tv_search", "climb") == "climb" and any(k.startswith("tv@") for k in methods)
    run(methods={k: f for k, f in methods.items() if not (climbing and k.startswith("tv@"))})
    if climbing:
        def evaluate(weight: float) -> float:
            run(methods={f"tv@{weight:g}": methods[f"tv@{weight:g}"]})
            return metric(set_scores(cache, prefix, f"tv@{weight:g}"))

        climb(_weights(config, bundle.settings[setting]), tv_start, evaluate)


def _validation_start(cache: Mapping[str, dict], config: Mapping[str, Any], setting: Mapping[str, Any],
                      val_prefix: str) -> int:
    """Where a test set's TV walk starts: the validation weight's grid index (the middle without one)."""
    weights = _weights(config, setting)
    chosen = best_candidate(cache, val_prefix, {c: f"tv@{c:g}" for c in weights})
    return weights.index(chosen[0]) if chosen else len(weights) // 2


# ---------------------------------------------------------------------------------------------------- the summary
def _pairs(config: Mapping[str, Any], sets: list[str] | None, settings: list[str] | None) -> list[tuple[dict, str]]:
    """``(test set, setting)`` pairs selected by ``--sets`` / ``--settings``."""
    names = [s["name"] for s in config["settings"]]
    return [(entry, name) for entry in config["test_sets"] if not sets or entry["name"] in sets
            for name in entry.get("settings", names) if not settings or name in settings]


def _validation_name(config: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    return entry.get("validation", next(iter(validation_sets(config))))


def summarise(cache: Mapping[str, dict], config: Mapping[str, Any], label: str) -> list[dict[str, Any]]:
    """One row per test set and setting with cached scores: FBP with the validation filter and the oracle filter,
    TV with no weight, at the validation weight and the oracle weight, and the network (``label``); PSNR (and SSIM
    of ``lpd`` and ``tv_val``), the network's margins over ``tv_val`` and ``fbp_best``, its worst slice margin over
    ``fbp_best`` and its seconds per slice."""
    settings = {s["name"]: s for s in config["settings"]}
    rows = []
    for entry, name in _pairs(config, None, None):
        prefix, val_prefix = f"test|{entry['name']}|{name}", f"val|{_validation_name(config, entry)}|{name}"
        if not any(key.startswith(prefix + "|") for key in cache):
            continue
        filters = tuned_and_oracle(cache, val_prefix, prefix, {f: f"fbp@{f}" for f in _filters(config)})
        weights = _weights(config, settings[name])
        tv = tuned_and_oracle(cache, val_prefix, prefix, {c: f"tv@{c:g}" for c in weights})
        default, net = set_scores(cache, prefix, "tv_default"), set_scores(cache, prefix, label)
        counted = [s["files"] for s in (filters.oracle_scores, tv.oracle_scores, default, net) if s]
        rows.append({
            "set": entry["name"], "setting": name, "files": max(counted, default=0),
            "fbp_best": metric(filters.scores), "filter_val": filters.value or "",
            "fbp_oracle": metric(filters.oracle_scores), "filter_oracle": filters.oracle or "",
            "tv_default": metric(default), "tv_val": metric(tv.scores), "c_val": nan_if_none(tv.value),
            "c_val_at_edge": tv.at_edge, "tv_oracle": metric(tv.oracle_scores), "c_oracle": nan_if_none(tv.oracle),
            "c_oracle_at_edge": tv.oracle in (min(weights), max(weights)),
            NETWORK: metric(net), "lpd_ssim": metric(net, "ssim"), "tv_val_ssim": metric(tv.scores, "ssim"),
            "fbp_best_ssim": metric(filters.scores, "ssim"), "tv_default_ssim": metric(default, "ssim"),
            "lpd_minus_tv_val": metric(net) - metric(tv.scores), "lpd_minus_fbp_best": metric(net) - metric(filters.scores),
            "worst_slice_lpd_minus_fbp": worst_slice_margin(net, filters.scores), "lpd_seconds": metric(net, "seconds"),
        })
    return rows


def _edge_note(rows: list[dict[str, Any]]) -> str:
    notes = []
    for key, what in (("c_val_at_edge", "validation"), ("c_oracle_at_edge", "oracle")):
        edges = [f"{row['set']} {row['setting']}" for row in rows if row[key]]
        if edges:
            notes.append(f"The {what} TV weight is at the edge of its grid for {', '.join(edges)}: widen `tv_weights`.")
    return "".join(f"{note}\n" for note in notes)


# ---------------------------------------------------------------------------------------------------- HTC 2022
def _htc_methods(config: Mapping[str, Any], cache: Mapping[str, dict], network: torch.nn.Module | None, which: str,
                 label: str) -> dict[str, tuple[str, Callable]]:
    """``column -> (cache method, f(y, A))``: FBP and TV at the validation choices of ``htc.validation_setting``
    (Hann FBP, no TV when it has no validation scores yet), ``tv_default`` and the network."""
    spec = config["htc"]
    setting = next(s for s in config["settings"] if s["name"] == spec["validation_setting"])
    val_prefix = f"val|{spec.get('validation', next(iter(validation_sets(config))))}|{setting['name']}"
    methods: dict[str, tuple[str, Callable]] = {}
    if which in ("all", "baselines"):
        chosen = best_candidate(cache, val_prefix, {f: f"fbp@{f}" for f in _filters(config)})
        name = chosen[0] if chosen else "hann"
        methods["fbp"] = (f"fbp@{name}", partial(fbp, filter=name))
        weight = best_candidate(cache, val_prefix, {c: f"tv@{c:g}" for c in _weights(config, setting)})
        if weight is not None:
            methods["tv_val"] = (f"tv@{weight[0]:g}", _tv(config, weight[0]))
        methods["tv_default"] = ("tv_default", _tv(config, None))
    if which in ("all", NETWORK) and network is not None:
        methods[NETWORK] = (label, network)
    return methods


def _htc_label(path: Path, record: Mapping[str, Any]) -> str:
    arc = round(float(record["angles_deg"][-1] - record["angles_deg"][0]))
    return f"{path.stem.replace('_subsample', '')} ({arc}°)"


def htc_rows(config: Mapping[str, Any], data: Path, out: Path, cache: dict[str, dict], network: torch.nn.Module | None,
             which: str, label: str) -> list[dict[str, Any]]:
    """Reconstruct every HTC 2022 sinogram with the methods not yet cached (module docstring); return one row of
    relative residuals per file and the mean, and write ``<out>/htc_reconstructions.png``."""
    spec = config["htc"]
    paths = htc_files(data / spec.get("folder", "ct/htc2022_limited_angle"))
    size, binning = int(spec.get("image_size", 256)), int(spec.get("detector_binning", 2))
    current = _htc_methods(config, cache, network, which, label)
    shown = {column: method for column, (method, _) in _htc_methods(config, cache, network, "all", label).items()}
    rows, labels = [], []
    for path in paths:
        record = read_htc2022(path)
        labels.append(_htc_label(path, record))
        y, operator = bin_detectors(record[Keys.SINOGRAM], binning)[None, None], None
        for column, (method, function) in current.items():
            key = f"htc|htc2022|{path.parent.name}|{path.stem}|0|{method}"  # role|set|setting|file|slice|method
            image_file = out / "htc" / method / f"{path.parent.name}_{path.stem}.npy"
            if key in cache and image_file.exists():
                continue
            if operator is None:
                operator = htc2022_operator(record, (size, size), float(spec.get("pixel_mm", 0.3)), binning)
            tick = time.perf_counter()
            with torch.inference_mode():
                x = function(y, operator)
            seconds = time.perf_counter() - tick
            image_file.parent.mkdir(parents=True, exist_ok=True)
            np.save(image_file, x[0, 0].float().numpy())
            cache[key] = {"residual": relative_residual(x, y, operator), "seconds": seconds}
            save_cache(out, cache)
        prefix = f"htc|htc2022|{path.parent.name}|{path.stem}|0|"
        rows.append({"file": labels[-1], "photons_est": float(estimate_photons(y)),
                     **{c: cache.get(prefix + shown.get(c, ""), {}).get("residual", float("nan")) for c in _HTC_COLUMNS[2:]}})
        print(f"htc {labels[-1]}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items() if k != "file"), flush=True)
    _htc_figure(paths, labels, shown, rows, spec, out)
    means = {column: float(np.mean([row[column] for row in rows])) for column in _HTC_COLUMNS[1:]}
    return rows + [{"file": "mean", **means}]


def _htc_figure(paths: list[Path], labels: list[str], shown: Mapping[str, str], rows: list[dict], spec: Mapping,
                out: Path) -> None:
    """The reconstructions of ``htc.figure`` files (default 4 of them), side by side, titled with their residuals."""
    images, residuals = {}, {}
    for column, method in shown.items():
        files = [out / "htc" / method / f"{p.parent.name}_{p.stem}.npy" for p in paths]
        if all(f.exists() for f in files):
            title = {"fbp": f"FBP {method[4:]}", "tv_val": f"TV c={method[3:]}", "tv_default": "TV default"}.get(
                column, f"LPD {method}")
            images[title] = [np.load(f) for f in files]
            residuals[title] = [row[column] for row in rows]
    chosen = spec.get("figure", ["tb_subsample_90", "tb_subsample_60", "tb_subsample_30", "ta_subsample73"])
    shown_rows = [i for i, p in enumerate(paths) if p.stem in chosen] or list(range(min(4, len(paths))))
    if images:
        residual_figure(images, residuals, labels, out / "htc_reconstructions.png", shown_rows)


# ---------------------------------------------------------------------------------------------------- the command
def _htc_section(rows: list[dict[str, Any]], label: str) -> str:
    table = format_table(rows, _HTC_COLUMNS, {"photons_est": "{:.3g}"},
                         headers=["file", "I0 estimated", "FBP", "TV (val weight)", "TV default", label])
    return ("\nHTC 2022 (real limited-angle fan-beam sinograms, no reference): relative residual "
            f"‖A x − y‖ / ‖y‖; figure: htc_reconstructions.png\n\n{table}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(__doc__.splitlines()[0], "bundles/ct_lpd_recon", NETWORK)
    parser.add_argument("--settings", nargs="*", default=None, help="only these settings")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    check_config(config, args.config)
    config["bundle_overrides"] = network_overrides(config, args.override)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = load_cache(out)
    bundle = _Bundle(args.bundle, config, args.checkpoint, args.methods != "baselines")
    pairs = _pairs(config, args.sets, args.settings)
    validations = validation_sets(config)
    for validation, setting in dict.fromkeys((_validation_name(config, e), s) for e, s in pairs):
        methods = setting_methods(config, bundle.settings[setting], None, args.methods)
        tuning = {k: f for k, f in methods.items() if k.startswith(("fbp@", "tv@"))}
        if tuning:
            _run_set("val", validations[validation], setting, bundle, config, data, out, tuning, cache, args.label,
                     len(_weights(config, bundle.settings[setting])) // 2)
    for entry, setting in pairs:
        methods = setting_methods(config, bundle.settings[setting], bundle.setting_network(setting), args.methods)
        start = _validation_start(cache, config, bundle.settings[setting],
                                  f"val|{_validation_name(config, entry)}|{setting}")
        _run_set("test", entry, setting, bundle, config, data, out, methods, cache, args.label, start)
    htc, notes = [], ""
    if "htc" in config and (not args.sets or "htc" in args.sets):
        network = bundle.network(config["htc"].get("network_config", "inference_fan.json"))
        htc = htc_rows(config, data, out, cache, network, args.methods, args.label)
        notes = _htc_section(htc, args.label)
    rows = summarise(cache, config, args.label)
    notes = _edge_note(rows) + notes
    table = write_summary(out, rows, COLUMNS, config, args.label, args.checkpoint, notes, extra={"htc": htc})
    print(table + "\n" + notes)


if __name__ == "__main__":
    main()

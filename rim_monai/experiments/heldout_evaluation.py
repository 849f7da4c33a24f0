r"""What the bundles' test-set evaluations share (:mod:`~rim_monai.experiments.mri_test_evaluation`,
:mod:`~rim_monai.experiments.ct_test_evaluation`): the per-item cache, the scores of a file and of a set, the
validation-tuned and oracle choice of a baseline's parameter, the summary files and the command line.

The cache ``<out>/cache.json`` maps ``role|set|setting|file|slice|method`` (``role`` is ``val`` or ``test``; the
network's entries carry its ``--label`` as the method) to what one reconstructed slice adds to the scores
(:func:`score`): the squared error ``err2``, the reference energy ``ref2``, ``pixels``, the slice's ``ssim``, the
data range ``range`` it was scored with and the method's ``seconds``. :func:`run_items` rewrites it atomically after
every slice, so an interrupted run resumes where it stopped and a new checkpoint (``--methods <network> --label
NAME``) only runs the network.

Scores (:func:`set_scores`): per file, PSNR :math:`10 \log_{10}(R^2 / \mathrm{MSE})` with :math:`R` the maximum of
the file's references and the MSE over all its scored pixels, SSIM the pixel-weighted mean of its slices' SSIM (7x7
window, :math:`R`), NMSE :math:`\sum\|\hat x - x\|^2 / \sum\|x\|^2`; then the mean over the set's files. A baseline's
parameter (a TV weight, an FBP filter) is chosen by :func:`tuned_and_oracle`: the candidate with the best mean PSNR on
a validation set, scored on the test set, and beside it the best candidate on the test set itself (the oracle, a
reference, never a baseline to beat).

Example:
    >>> cache = {"test|s|x|a.dcm|0|fbp": score(torch.ones(8, 8), torch.ones(8, 8) * 2, 2.0) | {"seconds": 0.1}}
    >>> round(set_scores(cache, "test|s|x", "fbp")["psnr"], 2)
    6.02
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rim_monai.data.file_utils import atomic_write_text
from rim_monai.engines import format_table
from rim_monai.experiments.environment import SHARED_DATA
from rim_monai.machine import cpu_model
from rim_monai.metrics import ssim

__all__ = [
    "CACHE", "Item", "stable_seed", "evenly_spaced", "load_config", "subject_files", "load_cache", "save_cache", "score", "run_items",
    "set_scores", "metric", "nan_if_none", "worst_slice_margin", "best_candidate", "Choice", "tuned_and_oracle",
    "climb", "argument_parser", "network_overrides", "parse_overrides",
    "machine_description", "write_summary",
]

#: the cache's file name under ``--out``
CACHE = "cache.json"
#: an item: ``(file, slice index, item)``, the item holding the reference ``"target"`` ``(H, W)``
Item = tuple[str, int, Mapping[str, Any]]


def stable_seed(*parts: Any) -> int:
    """A seed in ``[0, 2**31)`` from the text of ``parts`` (the same in every process and Python version).

    Example:
        >>> stable_seed("chest", "a.dcm", 0, "parallel_1e4") == stable_seed("chest", "a.dcm", 0, "parallel_1e4")
        True
    """
    return zlib.crc32("|".join(map(str, parts)).encode()) % (2**31)


def evenly_spaced(count: int, wanted: int) -> list[int]:
    """``wanted`` indices evenly spread over ``range(count)``, ends excluded (all of them when there are fewer).

    Example:
        >>> evenly_spaced(10, 2), evenly_spaced(2, 3)
        ([3, 6], [0, 1])
    """
    if count <= wanted:
        return list(range(count))
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, wanted + 2)[1:-1]})


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        ValueError: naming ``path`` when it is missing, not JSON, or not an object.
    """
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: expected a JSON evaluation config, got {type(err).__name__}: {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}.")
    return config


def subject_files(train_config: str | os.PathLike, key: str) -> list[str]:
    """The files of the subjects ``key`` (``"val_subjects"``, ...) of a bundle's ``train.json``, each subject a path
    or a list of paths (one person's files), flattened in order.

    Raises:
        ValueError: naming the file and ``key`` when it has no such list.
    """
    subjects = load_config(train_config).get(key)
    if not isinstance(subjects, list):
        raise ValueError(f"{train_config}: {key}: expected a list of subjects, got {subjects!r}.")
    return [p for s in subjects for p in ([s] if isinstance(s, str) else s)]


def load_cache(out: Path) -> dict[str, dict]:
    """``<out>/cache.json`` (empty when there is none yet)."""
    return json.loads((out / CACHE).read_text()) if (out / CACHE).exists() else {}


def save_cache(out: Path, cache: Mapping[str, dict]) -> None:
    """Write ``cache`` to ``<out>/cache.json`` atomically (what :func:`load_cache` reads)."""
    atomic_write_text(out / CACHE, json.dumps(cache))


def score(estimate: torch.Tensor, target: torch.Tensor, data_range: float) -> dict[str, float]:
    """The sums a file's metric needs: squared error, reference energy, pixel count, and the slice's SSIM with
    ``data_range``. ``estimate`` is reshaped to ``target`` ``(H, W)``; a complex one is scored by its magnitude."""
    pred = (estimate.abs() if estimate.is_complex() else estimate).reshape(target.shape).double()
    ref = target.double()
    value = ssim(pred[None, None], ref[None, None], data_range=data_range)
    return {"err2": float((pred - ref).square().sum()), "ref2": float(ref.square().sum()),
            "pixels": int(ref.numel()), "ssim": float(value), "range": float(data_range)}


def run_items(
    prefix: str, items: Sequence[Item], methods: Mapping[str, Callable], cache: dict[str, dict], out: Path,
    measure: Callable[[Mapping[str, Any]], tuple[torch.Tensor, Any]], network: str, label: str,
    prepare: Callable[[torch.Tensor, Mapping[str, Any]], torch.Tensor] | None = None,
) -> None:
    """Reconstruct ``items`` of one set under one setting (``prefix`` = ``role|set|setting``) with every method not
    yet in ``cache``, saving the cache after each item.

    Args:
        prefix: ``role|set|setting``.
        items: ``(file, slice, item)``; the data range of a file is the maximum of its items' ``"target"``.
        methods: ``name -> f(y, A)``.
        cache: the cache (updated in place and written to ``out``).
        out: the output folder.
        measure: ``item -> (y, A)``.
        network: the method name of the network, whose entries are keyed by ``label``.
        label: the network's name in the cache.
        prepare: ``(estimate, item) -> image`` scored against the target (default: the estimate).
    """
    ranges: dict[str, float] = defaultdict(float)
    for name, _, item in items:
        ranges[name] = max(ranges[name], float(item["target"].max()))
    for name, index, item in items:
        y, operator = measure(item)
        start, computed = time.perf_counter(), False
        for method, function in methods.items():
            key = "|".join([prefix, name, str(index), label if method == network else method])
            if key in cache:
                continue
            computed = True
            tick = time.perf_counter()
            with torch.inference_mode():
                estimate = function(y, operator)
            seconds = time.perf_counter() - tick
            estimate = prepare(estimate, item) if prepare is not None else estimate
            cache[key] = {**score(estimate, item["target"], ranges[name]), "seconds": seconds}
        if computed:
            save_cache(out, cache)
        print(f"{prefix.replace('|', ' ')} {name}[{index}] {tuple(y.shape[-3:])}: "
              f"{time.perf_counter() - start:.1f} s", flush=True)


def _psnr(err2: float, pixels: int, peak: float) -> float:
    return 10 * math.log10(peak**2 / max(err2 / pixels, 1e-30))


def _entries(cache: Mapping[str, dict], prefix: str, method: str) -> dict[str, list[dict]]:
    """The cached slices ``prefix|file|slice|method``, per file (each with its ``slice`` index)."""
    files: dict[str, list[dict]] = defaultdict(list)
    for key, value in cache.items():
        if not key.startswith(prefix + "|"):
            continue
        head, file, index, name = key.rsplit("|", 3)
        if head == prefix and name == method:
            files[file].append({**value, "slice": int(index)})
    return files


def set_scores(cache: Mapping[str, dict], prefix: str, method: str) -> dict[str, Any] | None:
    """Mean over files of the file PSNR / SSIM / NMSE (module docstring) of ``method`` on ``prefix``
    (``role|set|setting``), the slices' PSNR (``"file[slice]"``), and the mean seconds per slice; ``None`` when
    nothing is cached."""
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


def metric(scores: Mapping[str, Any] | None, key: str = "psnr") -> float:
    """``scores[key]`` of :func:`set_scores`, NaN when there are no scores."""
    return float(scores[key]) if scores else float("nan")


def nan_if_none(value: Any) -> Any:
    """``value``, or NaN for ``None`` (an empty table cell that JSON keeps as a number)."""
    return float("nan") if value is None else value


def worst_slice_margin(scores: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None) -> float:
    """The smallest per-slice PSNR margin of ``scores`` over ``baseline`` (both :func:`set_scores`), NaN without
    either or while they cover different slices (a run still in progress)."""
    if not scores or not baseline or scores["slices"].keys() != baseline["slices"].keys():
        return float("nan")
    return min(scores["slices"][k] - baseline["slices"][k] for k in scores["slices"])


def best_candidate(cache: Mapping[str, dict], prefix: str, candidates: Mapping[Hashable, str]
                   ) -> tuple[Any, dict] | None:
    """The candidate (``value -> method``) whose method has the best mean PSNR on ``prefix`` (the first of equals),
    with its scores; ``None`` when none is cached."""
    scored = [(value, set_scores(cache, prefix, method)) for value, method in candidates.items()]
    scored = [(value, s) for value, s in scored if s is not None]
    return max(scored, key=lambda vs: vs[1]["psnr"]) if scored else None


@dataclass
class Choice:
    """A parameter chosen on validation and on the test set itself.

    Attributes:
        value: the candidate with the best mean validation PSNR (``None``: no validation scores).
        scores: :func:`set_scores` of ``value`` on the test set.
        oracle: the candidate with the best mean PSNR on the test set.
        oracle_scores: its scores there.
        at_edge: ``value`` is the smallest or largest of numeric candidates (widen the grid).
    """

    value: Any = None
    scores: dict | None = None
    oracle: Any = None
    oracle_scores: dict | None = None
    at_edge: bool = False


def tuned_and_oracle(cache: Mapping[str, dict], val_prefix: str, test_prefix: str,
                     candidates: Mapping[Hashable, str]) -> Choice:
    """The candidate (``value -> method``, e.g. ``{0.5: "tv@0.5"}``) with the best mean PSNR on ``val_prefix``,
    scored on ``test_prefix``, and the test set's own best (the oracle). Only the validation scores choose
    ``value``; the test entries are read for its score and for the oracle.

    Example:
        >>> entry = lambda e: {"err2": e, "ref2": 1.0, "pixels": 1, "ssim": 1.0, "range": 1.0, "seconds": 0.0}
        >>> cache = {"val|v|s|a|0|tv@1": entry(0.1), "val|v|s|a|0|tv@2": entry(0.2),
        ...          "test|t|s|b|0|tv@1": entry(0.2), "test|t|s|b|0|tv@2": entry(0.1)}
        >>> choice = tuned_and_oracle(cache, "val|v|s", "test|t|s", {1: "tv@1", 2: "tv@2"})
        >>> choice.value, choice.oracle, choice.at_edge
        (1, 2, True)
    """
    tuned, oracle = best_candidate(cache, val_prefix, candidates), best_candidate(cache, test_prefix, candidates)
    choice = Choice()
    if oracle is not None:
        choice.oracle, choice.oracle_scores = oracle
    if tuned is not None:
        choice.value = tuned[0]
        choice.scores = set_scores(cache, test_prefix, candidates[tuned[0]])
        numbers = [v for v in candidates if isinstance(v, (int, float))]
        choice.at_edge = len(numbers) == len(candidates) > 1 and tuned[0] in (min(numbers), max(numbers))
    return choice


def climb(candidates: Sequence[Hashable], start: int, evaluate: Callable[[Hashable], float]) -> Hashable:
    """The best of ``candidates`` (a grid in order, e.g. TV weights) by a walk from ``candidates[start]``: score it
    and its neighbours, move to the better neighbour while it improves, stop at a candidate better than both
    neighbours (or at an end of the grid). On a unimodal score (PSNR against a regularisation weight) that is the
    grid's best, at 3 + (number of steps) evaluations instead of one per candidate.

    Args:
        candidates: the grid.
        start: where the walk starts (the validation choice on a test set, the middle on a validation set).
        evaluate: ``candidate -> score``, higher is better (called once per visited candidate).

    Example:
        >>> seen = []
        >>> climb([1, 2, 3, 4, 5, 6], 1, lambda c: seen.append(c) or -(c - 4) ** 2), sorted(seen)
        (4, [1, 2, 3, 4, 5])
    """
    scores: dict[int, float] = {}

    def value(i: int) -> float:
        if i not in scores:
            scores[i] = evaluate(candidates[i])
        return scores[i]

    index = min(max(int(start), 0), len(candidates) - 1)
    while True:
        best = max((j for j in (index - 1, index, index + 1) if 0 <= j < len(candidates)), key=value)
        if best == index:
            return candidates[index]
        index = best


def argument_parser(description: str, bundle: str, network: str) -> argparse.ArgumentParser:
    """The options every test-set evaluation takes: ``--config``, ``--out``, ``--data``, ``--bundle``,
    ``--checkpoint``, ``--label`` (default ``network``), ``--methods`` (``all``, ``baselines`` or ``network``) and
    ``--sets``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="the evaluation config (JSON)")
    parser.add_argument("--out", required=True, help="output folder (cache.json, evaluation.md/json)")
    parser.add_argument("--data", default=str(SHARED_DATA), help="the shared data root")
    parser.add_argument("--bundle", default=bundle, help="the bundle whose network is evaluated")
    parser.add_argument("--checkpoint", default=None, help="weights (default: the bundle's models/model.pt)")
    parser.add_argument("--label", default=network, help="the network's name in the cache (one per checkpoint)")
    parser.add_argument("--methods", choices=("all", "baselines", network), default="all")
    parser.add_argument("--sets", nargs="*", default=None, help="only these test sets (and validation)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="an inference.json override for the network (VALUE as JSON, else a string), e.g. "
                             "--override init='\"adjoint\"'; repeatable; added to the config's bundle_overrides")
    return parser


def parse_overrides(pairs: Sequence[str], option: str = "--override") -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict (VALUE parsed as JSON, else kept as a string).

    Raises:
        ValueError: naming ``option`` for a pair without ``=``.

    Example:
        >>> parse_overrides(["steps=10", "padding_mode=circular"])
        {'steps': 10, 'padding_mode': 'circular'}
    """
    merged: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{option}: expected KEY=VALUE, got {pair!r}.")
        try:
            merged[key] = json.loads(value)
        except json.JSONDecodeError:
            merged[key] = value
    return merged


def network_overrides(config: Mapping[str, Any], pairs: Sequence[str]) -> dict[str, Any]:
    """The config's ``bundle_overrides`` updated with ``--override KEY=VALUE`` pairs (:func:`parse_overrides`).

    Raises:
        ValueError: naming ``--override`` for a pair without ``=``.
    """
    return {**config.get("bundle_overrides", {}), **parse_overrides(pairs, "--override")}


def machine_description() -> str:
    """CPU model, cores, torch version and threads, for the summary's caption."""
    return f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def write_summary(out: Path, rows: list[dict[str, Any]], columns: Sequence[str], config: Mapping[str, Any],
                  label: str, checkpoint: str | None, notes: str = "",
                  extra: Mapping[str, Any] | None = None) -> str:
    """Write ``<out>/evaluation.md`` (the network, the machine, the table of ``columns`` and ``notes``) and
    ``<out>/evaluation.json`` (machine, config, label, checkpoint, rows and ``extra``) atomically; return the table."""
    machine = machine_description()
    table = format_table(rows, columns)
    tail = f"\n{notes}" if notes else ""
    atomic_write_text(out / "evaluation.md", f"Network: {label} ({checkpoint or 'models/model.pt'})\n"
                      f"Machine: {machine}\n\n{table}\n{tail}")
    record = {"machine": machine, "config": config, "label": label, "checkpoint": checkpoint, "rows": rows,
              **(extra or {})}
    atomic_write_text(out / "evaluation.json", json.dumps(record, indent=2))
    return table

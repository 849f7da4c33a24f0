"""Timing of training steps, shared by the bundles' speed benchmarks (:mod:`rim_training_step` for the MRI RIM,
:mod:`lpd_training_step` for the CT learned primal-dual, and :mod:`mri_inference` for the MRI bundle's inference
latency, which times wall clock instead of CPU time).

A contender is a closure that runs one training iteration (forward, loss, backward, optimiser step) on a fixed batch.
:func:`time_steps` warms every contender up once (oneDNN builds its primitives on the first call), then alternates
them for ``rounds`` rounds of ``per_round`` iterations and reports the median CPU time per iteration
(:func:`time.process_time`, which counts every thread), so a busy shared machine distorts the figures less than wall
time would. :func:`write_report` writes the markdown table and the JSON report under ``docs/benchmarks/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["time_steps", "write_report", "add_timing_arguments"]

_CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def time_steps(
    steps: Mapping[str, Callable[[], Any]], rounds: int, per_round: int, log: Callable[[str], Any] = print,
    clock: str = "cpu",
) -> dict[str, dict[str, Any]]:
    """Median seconds per iteration of each contender, alternating ``rounds`` times ``per_round`` iterations.

    Args:
        steps: contender name -> a closure running one iteration.
        rounds: alternating rounds.
        per_round: iterations of one contender per round.
        log: where the per-round lines go.
        clock: ``"cpu"`` (:func:`time.process_time`, every thread's CPU time) or ``"wall"``
            (:func:`time.perf_counter`, what a user waits; for latency bars).

    Returns:
        ``{name: {"<clock>_s_per_iteration", "iterations_per_<clock>_minute", "samples"}}`` (``samples``: the
        per-round seconds per iteration).

    Raises:
        ValueError: naming ``rounds`` / ``per_round`` when not positive, or ``clock``.

    Example:
        >>> time_steps({"noop": lambda: None}, 1, 1, log=lambda line: None)["noop"]["samples"][0] >= 0
        True
    """
    if int(rounds) < 1 or int(per_round) < 1:
        raise ValueError(f"rounds, per_round: expected positive numbers, got {rounds}, {per_round}.")
    if clock not in _CLOCKS:
        raise ValueError(f"clock: expected one of {sorted(_CLOCKS)}, got {clock!r}.")
    timer = _CLOCKS[clock]
    for step in steps.values():
        step()  # warm-up (oneDNN primitive creation)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(int(rounds)):
        for name, step in steps.items():
            start = timer()
            for _ in range(int(per_round)):
                step()
            times[name].append((timer() - start) / int(per_round))
            log(f"round {r + 1}/{rounds} {name}: {times[name][-1]:.3f} {clock} s/iteration")
    return {name: {f"{clock}_s_per_iteration": statistics.median(t),
                   f"iterations_per_{clock}_minute": 60 / statistics.median(t), "samples": t}
            for name, t in times.items()}


def write_report(out: str | Path, stem: str, title: str, report: Mapping[str, Any], notes: Sequence[str],
                 header: Sequence[str], rows: Sequence[Sequence[str]], footer: Sequence[str] = ()) -> str:
    """Write ``<out>/<stem>.md`` (a title, the machine and ``notes``, a table, ``footer``) and ``<out>/<stem>.json``
    (``report``) atomically; returns (and prints) the markdown.

    Args:
        out: the folder (created).
        stem: file name without suffix.
        title: the markdown title.
        report: the JSON report; its ``"machine"`` entry (``machine_info()``) is named under the title.
        notes: sentences after the machine line (protocol, rounds).
        header: the table's column names.
        rows: the table's rows (strings).
        footer: lines after the table.
    """
    from rim_monai.data.file_utils import atomic_write_text

    machine = report.get("machine", {})
    lines = [f"# {title}", "",
             f"Machine: {machine.get('cpu')}, torch {machine.get('torch')}, {machine.get('torch_threads')} thread(s). "
             + " ".join(notes), "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if footer:
        lines += ["", *footer]
    text = "\n".join(lines) + "\n"
    print(text)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{stem}.md", text)
    atomic_write_text(folder / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    return text


def add_timing_arguments(
    parser: argparse.ArgumentParser, contenders: Sequence[str], quick: str, threads: int = 1
) -> argparse.ArgumentParser:
    """The options every timing benchmark takes: ``--rounds`` (5), ``--per_round`` (3), ``--contenders`` (all of
    ``contenders``), ``--threads`` (``threads``), ``--quick`` (its help: ``quick``) and ``--out`` (``docs/benchmarks``).

    Example:
        >>> add_timing_arguments(argparse.ArgumentParser(), ["a", "b"], "tiny").parse_args([]).contenders
        ['a', 'b']
    """
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per_round", type=int, default=3)
    parser.add_argument("--contenders", nargs="+", default=list(contenders), choices=list(contenders))
    parser.add_argument("--threads", type=int, default=threads, help=f"torch threads (default {threads})")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--out", default="docs/benchmarks")
    return parser

"""Where an experiment runs and what it records about that: the repository, the shared data, the machine, timing,
and atomic writes of its text outputs."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rim_monai.machine import cpu_model

__all__ = ["REPOSITORY", "SHARED_DATA", "describe_machine", "machine_line", "timed"]

#: The source checkout this package runs from (its ``bundles/`` and ``configs/`` folders).
REPOSITORY = Path(__file__).resolve().parents[2]
#: The shared data folder next to the checkout (``../shared/data``).
SHARED_DATA = REPOSITORY.parent / "shared" / "data"


def describe_machine() -> dict[str, Any]:
    """CPU model, cores, torch threads, load average at the call, Python and torch versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in load] if load else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def machine_line(cores: bool = True) -> str:
    """One line for a table's caption: CPU model, (visible cores,) torch version and ``OMP_NUM_THREADS``."""
    visible = f", {os.cpu_count()} cores visible" if cores else ""
    return f"{cpu_model()}{visible}, torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), wall seconds)``.

    Example:
        >>> value, seconds = timed(lambda: 2 + 2)
        >>> value, seconds >= 0
        (4, True)
    """
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started

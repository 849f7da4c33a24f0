"""Network cases for the shared contract test (``tests/networks/test_contract.py``).

Each module in this folder defines ``CASES: list[NetworkCase]``; the contract test collects them all, so a new
network joins the shape, gradient, iteration-count, deprecated-name, bad-input, scale-equivariance and overfitting
checks by adding a case.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

__all__ = ["NetworkCase", "all_cases"]


@dataclass
class NetworkCase:
    """One network configuration to put through the contract.

    Attributes:
        name: test id.
        build: ``build(in_channels, complex_) -> network``; keep the network tiny.
        iterations: the number of estimates ``return_all=True`` gives by default (1 for non-iterative networks).
        any_iterations: the network also runs with ``iterations=2 * iterations`` (recurrent or weight-shared networks).
        build_deprecated: ``build`` written with the network's deprecated name of ``iterations`` (RIM's ``steps``,
            DeepEquilibrium's ``max_iter``), for the check that it warns and builds the same network.
        lr: Adam learning rate of the overfitting test.
        overfit_iterations: maximum optimiser steps of the overfitting test.
    """

    name: str
    build: Callable[[int, bool], nn.Module]
    iterations: int = 1
    any_iterations: bool = False
    build_deprecated: Callable[[int, bool], nn.Module] | None = None
    lr: float = 3e-3
    overfit_iterations: int = 300


def all_cases() -> list[NetworkCase]:
    cases: list[NetworkCase] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(getattr(module, "CASES", []))
    return cases

"""Operator cases for the shared contract test (``tests/operators/test_contract.py``).

Each module in this folder defines ``CASES: list[OperatorCase]``; the contract test collects them all, so a new
operator joins adjointness, autograd, shape, device and bad-input checks by adding a case, not a test.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["OperatorCase", "all_cases"]


@dataclass
class OperatorCase:
    """One operator configuration to put through the contract.

    Attributes:
        name: test id.
        build: zero-argument factory returning the operator (built lazily, inside the test).
        batch: leading batch dimensions to test with.
        float64: whether the backend computes in double precision (tighter adjointness bound).
        tol: relative adjointness tolerance in single precision.
        requires: names of optional modules that must import (``"astra"``, ``"odl"``), else the case skips.
        cuda: whether the case can run on a CUDA device when one is present.
        per_sample: the operator carries per-sample buffers (masks, coil maps) of the batch size, so a one-sample
            slice cannot be applied on its own and the batched-versus-single check is skipped.
        changes: for an operator with the ``"replace"`` ability, a ``replace(**changes)`` that must change its
            output (shapes kept); empty: only the round trip of every parameter is checked.
    """

    name: str
    build: Callable
    batch: tuple[int, ...] = (2, 1)
    float64: bool = True
    tol: float = 1e-4
    requires: tuple[str, ...] = field(default_factory=tuple)
    cuda: bool = True
    per_sample: bool = False
    changes: dict = field(default_factory=dict)


def all_cases() -> list[OperatorCase]:
    cases: list[OperatorCase] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(getattr(module, "CASES", []))
    return cases

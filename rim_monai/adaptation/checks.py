"""Argument checks shared by :func:`~rim_monai.adaptation.adapt` and its baselines (errors name the argument)."""

from __future__ import annotations

import math
from typing import Any

from rim_monai.metrics import PROTOCOLS

__all__ = ["check_positive", "check_mu", "check_protocol"]


def check_positive(value: Any, name: str, integer: bool = False, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite number ``> 0`` (``>= 0`` with ``allow_zero``).

    Args:
        value: the argument's value.
        name: the argument's name.
        integer: also require a whole number.
        allow_zero: accept 0.

    Example:
        >>> check_positive(3, "steps", integer=True)
        >>> check_positive(0.0, "lr")
        Traceback (most recent call last):
        ...
        ValueError: lr: expected a finite number > 0, got 0.0.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        kind = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite {kind} {bound}, got {value!r}.")


def check_mu(mu: Any) -> None:
    r"""Raise ``ValueError`` naming ``mu`` unless it is a number :math:`\ge 0` (``math.inf`` freezes the weights)."""
    if not (isinstance(mu, (int, float)) and not isinstance(mu, bool)) or math.isnan(mu) or mu < 0:
        raise ValueError(f"mu: expected a number >= 0 (math.inf freezes the weights), got {mu!r}.")


def check_protocol(protocol: Any) -> None:
    """Raise ``ValueError`` naming ``metric_protocol`` unless it is one of :data:`rim_monai.metrics.PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"metric_protocol: expected 'per_image', 'volume' or '8bit', got {protocol!r}.")

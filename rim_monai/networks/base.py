"""What the reconstruction networks share: the image layout they are built for and their iteration count.

Every network is called as ``net(y, A)`` and reconstructs images of ``C`` channels, real or complex (complex images
are processed as ``2C`` real channels, :attr:`ReconstructionNetwork.real_channels`). The iterative ones
(:class:`~rim_monai.networks.RIM`, :class:`~rim_monai.networks.LearnedGradientDescent`,
:class:`~rim_monai.networks.LearnedPrimalDual`, :class:`~rim_monai.networks.DeepEquilibrium`) take their number of
iterations under one name, ``iterations``, both when built and when called (``net(y, A, iterations=K)``); the
names used before (RIM's ``steps``, the deep equilibrium's ``max_iter``) still work as deprecated aliases.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from rim_monai.networks.utils import INIT_MODES, check_count, check_inputs
from rim_monai.operators.base import LinearOperator

__all__ = ["ReconstructionNetwork", "IterativeNetwork", "renamed_argument"]


def renamed_argument(owner: str, new: str, value: Any, old: str, old_value: Any, default: Any = None) -> Any:
    """The value of argument ``new``, accepting its deprecated name ``old``.

    When ``old`` is given (not ``None``) a ``DeprecationWarning`` names ``new``, and its value is used.

    Args:
        owner: who takes the argument, for the messages (``"RIM"``, ``"RIM.forward"``).
        new: the argument's name.
        value: the value given as ``new`` (``default`` when not given).
        old: the deprecated name.
        old_value: the value given as ``old`` (``None`` when not given).
        default: ``new``'s default.

    Raises:
        ValueError: naming ``old`` when both names are given with different values.

    Example:
        >>> renamed_argument("RIM", "iterations", 10, "steps", None, default=10)
        10
    """
    if old_value is None:
        return value
    warnings.warn(f"{owner}: '{old}' is deprecated, use '{new}' (the same number).", DeprecationWarning, stacklevel=3)
    if value != default and value != old_value:
        raise ValueError(f"{old}: the deprecated name of '{new}'; got both {old}={old_value!r} and {new}={value!r}.")
    return old_value


class ReconstructionNetwork(nn.Module):
    """Base of the networks ``net(y, A)`` that reconstruct ``(B, C, H, W)`` images, real or complex.

    Args:
        in_channels: image channels ``C``.
        complex_: complex images, processed as ``2C`` real channels (see :attr:`real_channels`).

    Raises:
        ValueError: naming ``in_channels`` when it is not positive.
    """

    def __init__(self, in_channels: int = 1, complex_: bool = False) -> None:
        super().__init__()
        if int(in_channels) < 1:
            raise ValueError(f"in_channels: expected a positive number of image channels, got {in_channels}.")
        self.in_channels, self.complex_ = int(in_channels), bool(complex_)

    @property
    def real_channels(self) -> int:
        """Real channels of the image layout the network computes in: ``C``, or ``2C`` for complex images."""
        return self.in_channels * (2 if self.complex_ else 1)

    def check(self, y: torch.Tensor, A: LinearOperator) -> torch.Tensor:
        """Validate ``(y, A)`` for this network and return ``A^H y`` (:func:`~rim_monai.networks.utils.check_inputs`)."""
        return check_inputs(y, A, self.in_channels, self.complex_)


class IterativeNetwork(ReconstructionNetwork):
    """Base of the networks that run a number of ``iterations`` (steps, unrolled layers, fixed-point updates).

    With ``share_weights`` the same weights serve every iteration, so a call may run any number of them
    (:meth:`call_iterations`); otherwise each iteration has its own weights (:meth:`weight_index`) and a call runs
    exactly ``iterations``. A subclass implements :meth:`iterate`; :meth:`forward` checks the inputs, resolves the
    iteration count and returns the last estimate (or all of them).

    Args:
        in_channels: image channels ``C``.
        complex_: complex images.
        iterations: the number of iterations ``K`` (> 0).
        init: the start, one of ``init_modes`` (see :func:`~rim_monai.networks.utils.initial_estimate`).
        share_weights: one set of weights for all iterations.
        init_modes: the starts this network accepts.

    Raises:
        ValueError: naming ``in_channels``, ``iterations`` or ``init``.
    """

    def __init__(
        self,
        in_channels: int,
        complex_: bool,
        iterations: int,
        init: str,
        share_weights: bool = True,
        init_modes: Sequence[str] = INIT_MODES,
    ) -> None:
        super().__init__(in_channels, complex_)
        if init not in init_modes:
            raise ValueError(f"init: expected one of {tuple(init_modes)}, got {init!r}.")
        iterations = check_count(iterations, "iterations", "iterations")
        self.init, self.iterations, self.share_weights = init, iterations, bool(share_weights)

    @property
    def num_weight_sets(self) -> int:
        """How many sets of weights the iterations use: 1 with shared weights, else ``iterations``."""
        return 1 if self.share_weights else self.iterations

    def weight_index(self, k: int) -> int:
        """The set of weights iteration ``k`` (0-based) uses."""
        return 0 if self.share_weights else k

    def call_iterations(self, iterations: int | None, steps: int | None = None) -> int:
        """The number of iterations a call runs: ``iterations`` (``steps``, its deprecated name), else the built one.

        Raises:
            ValueError: naming ``iterations`` when it is not positive, or differs from the built number on a network
                whose iterations have their own weights.
        """
        iterations = renamed_argument(f"{type(self).__name__}.forward", "iterations", iterations, "steps", steps)
        count = self.iterations if iterations is None else int(iterations)
        if count < 1:
            raise ValueError(f"iterations: expected a positive number of iterations, got {count}.")
        if not self.share_weights and count != self.iterations:
            raise ValueError(
                f"iterations: this network has {self.iterations} iterations with their own weights, got "
                f"iterations={count} (build it with share_weights=True to run any number of iterations)."
            )
        return count

    def forward(
        self,
        y: torch.Tensor,
        A: LinearOperator,
        iterations: int | None = None,
        return_all: bool = False,
        *,
        steps: int | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Reconstruct from measurements ``y`` of operator ``A``.

        Args:
            y: measurements ``(B, ..., *A.range_shape)``.
            A: the forward operator (any :class:`~rim_monai.operators.LinearOperator`; may differ from the one
                trained with).
            iterations: the number of iterations of this call (default: the built one; without shared weights it
                must be the built one).
            return_all: return the list of the estimates of all iterations instead of the last.
            steps: deprecated name of ``iterations``.

        Returns:
            Images shaped like ``A.adjoint(y)``, or the list of them with ``return_all=True``.

        Raises:
            ValueError: bad ``y``/``A`` (naming them) or ``iterations``.
        """
        adjoint = self.check(y, A)
        estimates = self.iterate(y, A, adjoint, self.call_iterations(iterations, steps))
        return estimates if return_all else estimates[-1]

    def iterate(self, y: torch.Tensor, A: LinearOperator, adjoint: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        """The estimates of ``iterations`` iterations on validated inputs (``adjoint = A^H y``), last one last."""
        raise NotImplementedError(f"{type(self).__name__} does not implement iterate")

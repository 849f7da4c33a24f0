r"""Unknown operator parameters :math:`\psi` of R&R+ and how each kind is updated.

R&R+ (Gilton, Ongie & Willett 2021) adapts a trained network to an operator that is only partly known,
:math:`A(\psi)`, by minimising the same data term over the network weights and :math:`\psi`. Three kinds of
parameter differ in how :math:`\psi` can be updated:

===========================  =====================================  =====================================================
kind                         examples                               update
===========================  =====================================  =====================================================
:class:`OperatorParameter`   MRI k-space shift                      jointly with :math:`\theta` by Adam: the operator
                             (``MaskedFourier(..., learnable_shift  computes with torch ops (``native_autograd``), so the
                             =True).shift``), a blur kernel         gradient of the data term reaches the parameter
                             (``Blur(..., learnable_kernel=True)``)
:class:`GeometryParameter`   CT ``angle_offset``,                   outer derivative-free search (coarse grid + golden
                             ``detector_shift``, ``src_radius``,    section) over ``operator.replace(name=value)`` with
                             ``det_radius``                         :math:`\theta` fixed, alternating with
                                                                    :math:`\theta` updates
:class:`Reestimated`         MRI coil sensitivities from the        once, before the optimisation, from the new
                             calibration region of the new data     measurements themselves
                             (:func:`coil_sensitivities`)
===========================  =====================================  =====================================================

:class:`ParameterEstimator` groups them and sets how many outer search rounds are run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch

from rim_monai.operators.base import LinearOperator

__all__ = [
    "OperatorParameter",
    "GeometryParameter",
    "Reestimated",
    "coil_sensitivities",
    "ParameterEstimator",
    "unit_sum_nonnegative",
]


def _value(tensor: torch.Tensor) -> float | list:
    """A JSON-friendly copy of a parameter value: a float for one element, else nested lists."""
    t = tensor.detach().cpu()
    if t.is_complex():
        t = torch.view_as_real(t)
    return float(t.reshape(())) if t.numel() == 1 and t.ndim <= 1 else t.tolist()


def _resolve(module: torch.nn.Module, name: str) -> Any:
    """``module.a.b`` for ``name="a.b"``; ValueError naming ``name`` when it is missing."""
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise ValueError(
                f"name: the operator {type(module).__name__} has no attribute '{name}' (missing '{part}')."
            )
        target = getattr(target, part)
    return target


def unit_sum_nonnegative(kernel: torch.Tensor) -> torch.Tensor:
    """Projection-like constraint for a blur kernel: clamp at 0, then rescale to unit sum (a ``project`` callable).

    Example:
        >>> unit_sum_nonnegative(torch.tensor([-1.0, 1.0, 3.0])).tolist()
        [0.0, 0.25, 0.75]
    """
    k = kernel.clamp_min(0)
    total = k.sum()
    return k / total if float(total) > 0 else torch.full_like(kernel, 1.0 / kernel.numel())


class OperatorParameter:
    """A differentiable operator parameter (an ``nn.Parameter`` of the operator), optimised jointly with θ.

    The operator must compute with differentiable torch ops and declare ``native_autograd = True`` (for example
    ``MaskedFourier(mask, learnable_shift=True)`` for the ``shift`` or ``Blur(kernel, shape,
    learnable_kernel=True)`` for the ``kernel``); operators behind a custom autograd function (matrix or ASTRA
    backends) cannot pass a gradient to their parameters: use :class:`GeometryParameter` for those.

    Args:
        name: attribute path of the parameter on the operator (``"shift"``, ``"kernel"``, ``"blur.kernel"``).
        lr: learning rate of this parameter (``None``: the learning rate of the network weights).
        bounds: optional ``(lo, hi)``: the parameter is clamped to it after every step.
        project: optional map applied to the parameter after every step (e.g. :func:`unit_sum_nonnegative` for a
            blur kernel).

    Raises:
        ValueError: naming ``lr`` or ``bounds`` for invalid values, and (when bound to an operator) ``name`` when the
            attribute is missing, is not an ``nn.Parameter``, or the operator does not use native autograd.

    Example:
        >>> estimate = [OperatorParameter("shift", lr=0.05, bounds=(-4, 4))]
    """

    kind = "gradient"

    def __init__(
        self,
        name: str,
        lr: float | None = None,
        bounds: tuple[float, float] | None = None,
        project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: expected a positive learning rate or None, got {lr}.")
        if bounds is not None and not (len(bounds) == 2 and float(bounds[0]) < float(bounds[1])):
            raise ValueError(f"bounds: expected (lo, hi) with lo < hi, got {bounds}.")
        self.name = str(name)
        self.lr = lr
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.project = project

    def bind(self, operator: LinearOperator) -> torch.nn.Parameter:
        """Return the operator's parameter after checking that gradients can reach it."""
        value = _resolve(operator, self.name)
        if not isinstance(value, torch.nn.Parameter):
            raise ValueError(
                f"name: '{self.name}' of {type(operator).__name__} is a {type(value).__name__}, expected an "
                "nn.Parameter (build the operator with its learnable option, e.g. learnable_shift=True)."
            )
        if not operator.native_autograd:
            raise ValueError(
                f"name: {type(operator).__name__} does not use native autograd, so no gradient reaches "
                f"'{self.name}'; estimate it with GeometryParameter (an outer search) instead."
            )
        value.requires_grad_(True)
        return value

    @torch.no_grad()
    def constrain(self, operator: LinearOperator) -> None:
        """Apply ``bounds`` and ``project`` to the parameter in place."""
        value = _resolve(operator, self.name)
        if self.bounds is not None:
            value.clamp_(*self.bounds)
        if self.project is not None:
            value.copy_(self.project(value.detach().clone()))

    def value(self, operator: LinearOperator) -> float | list:
        """The current value (a float, or nested lists for a tensor)."""
        return _value(_resolve(operator, self.name))

    def __repr__(self) -> str:
        return f"OperatorParameter({self.name!r}, lr={self.lr}, bounds={self.bounds})"


class GeometryParameter:
    """A non-differentiable scalar parameter, changed through ``operator.replace(**{name: value})``.

    R&R+ estimates it by a derivative-free search of the data term with the network fixed
    (:func:`~rim_monai.adaptation.search.grid_golden_search`): the first round searches all of ``bounds``, later
    rounds (after θ updates) a window of two grid cells around the current estimate.

    Args:
        name: the constructor parameter ``replace`` accepts (``"detector_shift"``, ``"angle_offset"``,
            ``"src_radius"``, ``"det_radius"`` for :class:`~rim_monai.operators.RayTransform`; units are the
            operator's: detector length units, radians).
        bounds: the search interval ``(lo, hi)``; the current value need not lie in it.
        tol: width of the final golden-section bracket (the accuracy aimed at).
        grid_points: points of the coarse grid (ends included).

    Raises:
        ValueError: naming ``bounds``, ``tol`` or ``grid_points``; naming ``name`` when the operator does not
            support ``"replace"`` or has no such attribute.

    Example:
        >>> estimate = [GeometryParameter("detector_shift", bounds=(-3.0, 3.0), tol=0.01)]
    """

    kind = "search"

    def __init__(self, name: str, bounds: tuple[float, float], tol: float = 1e-3, grid_points: int = 9) -> None:
        if len(bounds) != 2 or not (math.isfinite(bounds[0]) and math.isfinite(bounds[1])) or not bounds[0] < bounds[1]:
            raise ValueError(f"bounds: expected finite (lo, hi) with lo < hi, got {bounds}.")
        if not tol > 0:
            raise ValueError(f"tol: expected a positive number, got {tol}.")
        if int(grid_points) < 3:
            raise ValueError(f"grid_points: expected at least 3, got {grid_points}.")
        self.name = str(name)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.tol = float(tol)
        self.grid_points = int(grid_points)

    def bind(self, operator: LinearOperator) -> None:
        """Check that the operator supports ``"replace"`` and has the parameter."""
        if not operator.supports("replace"):
            raise ValueError(
                f"name: {type(operator).__name__} does not support 'replace' (operator.supports('replace') is False), "
                f"so '{self.name}' cannot be searched; expected an operator family such as RayTransform."
            )
        self.value(operator)

    def value(self, operator: LinearOperator) -> float:
        """The operator's current value of the parameter."""
        value = _resolve(operator, self.name)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"name: '{self.name}' is {value!r}, expected a scalar.") from None

    def apply(self, operator: LinearOperator, value: float) -> LinearOperator:
        """``operator.replace(**{name: value})``: the same operator family member with the parameter changed."""
        return operator.replace(**{self.name: float(value)})

    def __repr__(self) -> str:
        return f"GeometryParameter({self.name!r}, bounds={self.bounds}, tol={self.tol})"


class Reestimated:
    """A parameter recomputed once from the new measurements before the optimisation (no search, no gradient).

    Args:
        name: the parameter's name (an attribute of the operator, or a ``replace`` argument).
        estimate: ``estimate(y, operator) -> value``, with ``y`` the measurements of the operator's samples
            ``(n, *)`` (all ``N`` for a shared operator, the sample's own ``(1, *)`` with one operator per sample).
        rebuild: ``rebuild(operator, value) -> operator``; ``None`` uses ``operator.replace(**{name: value})``.
        per_sample: the value belongs to one sample (coil maps of one slice): a shared operator is then split into
            ``N`` per-sample operators, each rebuilt from its own measurement ``(1, *)``.

    Example:
        >>> est = Reestimated("gain", lambda y, A: y.abs().mean(), rebuild=lambda A, g: A)
    """

    kind = "once"

    def __init__(
        self,
        name: str,
        estimate: Callable[[torch.Tensor, LinearOperator], Any],
        rebuild: Callable[[LinearOperator, Any], LinearOperator] | None = None,
        per_sample: bool = False,
    ) -> None:
        if not callable(estimate):
            raise ValueError(f"estimate: expected a callable (y, operator) -> value, got {type(estimate).__name__}.")
        self.name = str(name)
        self.estimate = estimate
        self.rebuild = rebuild
        self.per_sample = bool(per_sample)

    def bind(self, operator: LinearOperator) -> None:
        """Check that the operator can be rebuilt with a new value."""
        if self.rebuild is None and not operator.supports("replace"):
            raise ValueError(
                f"name: {type(operator).__name__} does not support 'replace' (operator.supports('replace') is False); "
                f"give rebuild=... for '{self.name}'."
            )

    def apply(self, operator: LinearOperator, y: torch.Tensor) -> LinearOperator:
        """The operator rebuilt with the value estimated from ``y``."""
        value = self.estimate(y, operator)
        if self.rebuild is not None:
            return self.rebuild(operator, value)
        return operator.replace(**{self.name: value})

    def value(self, operator: LinearOperator) -> float | list | None:
        """The parameter's value on the operator (``None`` when it is not an attribute)."""
        value = getattr(operator, self.name, None)
        if isinstance(value, torch.Tensor):
            return _value(value)
        return float(value) if isinstance(value, (int, float)) else None

    def __repr__(self) -> str:
        return f"Reestimated({self.name!r})"


def coil_sensitivities(**kwargs: Any) -> Reestimated:
    """MRI: re-estimate the coil sensitivities of a ``MaskedFourier`` from the calibration region of the new k-space.

    Calls ``rim_monai.operators.estimate_sensitivities(y_i, **kwargs)`` on each measurement ``y_i`` ``(1, C, H, W)``
    and builds one operator per sample, ``operator.replace(sens=maps)``: the same mask and shift (a learnable shift
    stays learnable, at its current value; ``mask`` must be shared: ``(H, W)`` or ``(1, 1, H, W)``). With a different
    coil count the measurements already have the new number of coils; the operator given to
    :func:`~rim_monai.adaptation.adapt` only has to have the new mask.

    Args:
        kwargs: passed to ``estimate_sensitivities`` (e.g. the calibration size).

    Returns:
        A :class:`Reestimated` parameter named ``"sens"``.
    """

    def estimate(y: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
        from rim_monai.operators import estimate_sensitivities

        return estimate_sensitivities(y, **kwargs)

    return Reestimated("sens", estimate, per_sample=True)


ParameterSpec = Union[OperatorParameter, GeometryParameter, Reestimated]


class ParameterEstimator:
    """The unknown operator parameters of R&R+ and the schedule of their updates.

    Args:
        parameters: the parameters to estimate (any mix of the three kinds; names must be unique).
        search_rounds: number of outer search rounds for :class:`GeometryParameter` s; the θ updates are split into
            this many blocks and every block starts with a search of each geometry parameter in turn. The default,
            1, searches once with the trained weights θ₀ and then adapts θ with the estimated operator: on the CT
            detector-shift and angle-offset evidence (``docs/adaptation.md``) later rounds were worse, because the
            adapted weights start to absorb the operator error and pull the next search away from the true value.
        search_samples: use only the first ``search_samples`` measurements in the search objective (``None``: all).

    Raises:
        ValueError: naming ``parameters``, ``search_rounds`` or ``search_samples``.

    Example:
        >>> estimator = ParameterEstimator([GeometryParameter("detector_shift", (-3, 3)),
        ...                                 GeometryParameter("angle_offset", (-0.05, 0.05))])
    """

    def __init__(
        self, parameters: Sequence[ParameterSpec], search_rounds: int = 1, search_samples: int | None = None
    ) -> None:
        parameters = list(parameters)
        if not parameters:
            raise ValueError("parameters: expected at least one OperatorParameter, GeometryParameter or Reestimated.")
        for p in parameters:
            if not isinstance(p, (OperatorParameter, GeometryParameter, Reestimated)):
                raise ValueError(
                    f"parameters: expected OperatorParameter, GeometryParameter or Reestimated, got {type(p).__name__}."
                )
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"parameters: names must be unique, got {names}.")
        if int(search_rounds) < 1:
            raise ValueError(f"search_rounds: expected at least 1, got {search_rounds}.")
        if search_samples is not None and int(search_samples) < 1:
            raise ValueError(f"search_samples: expected a positive number or None, got {search_samples}.")
        self.parameters = parameters
        self.search_rounds = int(search_rounds)
        self.search_samples = None if search_samples is None else int(search_samples)

    @classmethod
    def wrap(cls, estimate: "ParameterEstimator | Sequence[ParameterSpec] | ParameterSpec | None") -> "ParameterEstimator | None":
        """Accept an estimator, one parameter or a list of parameters (``None`` stays ``None``)."""
        if estimate is None or isinstance(estimate, ParameterEstimator):
            return estimate
        if isinstance(estimate, (OperatorParameter, GeometryParameter, Reestimated)):
            return cls([estimate])
        if isinstance(estimate, Sequence) and not isinstance(estimate, str):
            return cls(estimate)
        raise ValueError(
            f"estimate: expected None, a ParameterEstimator or a list of operator parameters, got {type(estimate).__name__}."
        )

    @property
    def gradient_parameters(self) -> list[OperatorParameter]:
        return [p for p in self.parameters if isinstance(p, OperatorParameter)]

    @property
    def search_parameters(self) -> list[GeometryParameter]:
        return [p for p in self.parameters if isinstance(p, GeometryParameter)]

    @property
    def reestimated_parameters(self) -> list[Reestimated]:
        return [p for p in self.parameters if isinstance(p, Reestimated)]

    def prepare(self, operator: LinearOperator) -> LinearOperator:
        """The operator to optimise, validated against the parameters; the caller's operator is never changed.

        With gradient parameters (updated in place) this is a deep copy; search and re-estimated parameters build new
        operators anyway, so the operator itself is returned (no copy of a large system matrix).
        """
        op = copy.deepcopy(operator) if self.gradient_parameters else operator
        for p in self.parameters:
            p.bind(op)
        return op

    def values(self, operators: Sequence[LinearOperator]) -> dict[str, Any]:
        """Current values: one per parameter, or a list over the operators for per-sample differentiable ones."""
        out: dict[str, Any] = {}
        for p in self.parameters:
            if isinstance(p, GeometryParameter) or len(operators) == 1:
                out[p.name] = p.value(operators[0])
            else:
                out[p.name] = [p.value(op) for op in operators]
        return out

    def __repr__(self) -> str:
        return f"ParameterEstimator({self.parameters}, search_rounds={self.search_rounds})"

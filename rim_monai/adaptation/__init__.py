"""Model adaptation from measurements alone: Reuse & Regularize (R&R) and R&R+ (Gilton, Ongie & Willett 2021).

See ``docs/adaptation.md``: the objective, the operator parameters each family exposes and how they are updated.
"""

from rim_monai.adaptation.adapt import NOISE_WARNING_FACTOR, adapt, freeze_data_consistency_weights
from rim_monai.adaptation.baselines import retrain_supervised, swap_operator
from rim_monai.adaptation.batched import full_data_term, reconstruct, reconstruct_each
from rim_monai.adaptation.losses import (
    data_consistency,
    proximity_penalty,
    transmission_noise_energy,
    transmission_weights,
)
from rim_monai.adaptation.parameters import (
    GeometryParameter,
    OperatorParameter,
    ParameterEstimator,
    Reestimated,
    coil_sensitivities,
    unit_sum_nonnegative,
)
from rim_monai.adaptation.objective import AdaptationObjective
from rim_monai.adaptation.report import AdaptationReport
from rim_monai.adaptation.scoring import reference_quality
from rim_monai.adaptation.search import golden_section_search, grid_golden_search

__all__ = [
    "adapt",
    "freeze_data_consistency_weights",
    "NOISE_WARNING_FACTOR",
    "swap_operator",
    "retrain_supervised",
    "AdaptationObjective",
    "full_data_term",
    "reconstruct",
    "reconstruct_each",
    "reference_quality",
    "data_consistency",
    "proximity_penalty",
    "transmission_weights",
    "transmission_noise_energy",
    "OperatorParameter",
    "GeometryParameter",
    "Reestimated",
    "ParameterEstimator",
    "coil_sensitivities",
    "unit_sum_nonnegative",
    "AdaptationReport",
    "golden_section_search",
    "grid_golden_search",
]

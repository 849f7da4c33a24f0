"""Classical reconstructions, the baselines every learned result is printed beside.

See ``docs/classical.md`` for the update equations, the data-driven defaults (noise estimation in
:mod:`rim_monai.classical.noise`, the discrepancy principle in :mod:`rim_monai.classical.parameter_choice`) and an
example. The per-sample bookkeeping
the solvers share (argument checks, per-sample scalars, norms, operator norms) is public in
:mod:`rim_monai.classical.batching`, for writing new batched solvers.
"""

from rim_monai.classical.cg import cg_normal, cg_normal_shifted
from rim_monai.classical.direct import fbp, zero_filled
from rim_monai.classical.landweber import landweber
from rim_monai.classical.tv import DEFAULT_TV_WEIGHT, default_weight_scale, gradient2d, gradient2d_adjoint, scaled_tv, tv_pdhg

# -- further classical modules register their public names below (one import line each) --
from rim_monai.classical.noise import NoiseModel, estimate_gaussian_sigma, estimate_kspace_sigma, estimate_noise, estimate_photons, estimate_sinogram_sigma, transmission_noise_energy
from rim_monai.classical.parameter_choice import MIN_TV_WEIGHT, TAU_EARLY_STOPPING, TAU_TV, WeightChoice, choose_tv_weight, discrepancy_target

__all__ = [
    "cg_normal",
    "cg_normal_shifted",
    "fbp",
    "zero_filled",
    "landweber",
    "DEFAULT_TV_WEIGHT",
    "default_weight_scale",
    "gradient2d",
    "gradient2d_adjoint",
    "tv_pdhg",
    "scaled_tv",
    "NoiseModel",
    "estimate_noise",
    "estimate_gaussian_sigma",
    "estimate_photons",
    "estimate_sinogram_sigma",
    "estimate_kspace_sigma",
    "transmission_noise_energy",
    "TAU_TV",
    "TAU_EARLY_STOPPING",
    "MIN_TV_WEIGHT",
    "WeightChoice",
    "choose_tv_weight",
    "discrepancy_target",
]

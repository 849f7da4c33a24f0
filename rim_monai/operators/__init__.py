"""Forward models ``A`` as batched torch autograd operators with exact adjoints.

See ``docs/operators.md`` for each operator's formula, shapes and an example.
"""

from rim_monai.operators.base import AdjointOperator, LinearOperator, check_tensor
from rim_monai.operators.imaging import Identity
from rim_monai.operators.likelihood import GaussianLikelihood

# -- further operator modules register their public names below (one import line each) --
from rim_monai.operators.odl_bridge import OdlOperator, from_odl
from rim_monai.operators.tomography import FBP_FILTERS, RayTransform, fbp_filter
from rim_monai.operators.fourier import MaskedFourier, channels_to_complex, coil_combine, complex_to_channels, fft2c, ifft2c, rss
from rim_monai.operators.masks import center_fraction_for, equispaced_mask, poisson_disc_mask, random_mask
from rim_monai.operators.masks import MASK_FUNCTIONS, calibrated_poisson_disc_mask, mask_function
from rim_monai.operators.coils import (
    birdcage_maps,
    calibration_shape,
    estimate_sensitivities,
    estimate_sensitivities_or_none,
    ESPIRIT_LINES,
    SINGLE_COIL_MAPS,
)
from rim_monai.operators.imaging import Blur, Downsample, RandomProjection, gaussian_kernel, imresize_matrix
from rim_monai.operators.real_view import RealImageView
from rim_monai.operators.base import OPTIONAL_ABILITIES, UnsupportedAbilityError, all_finite
from rim_monai.operators.system_matrix import SparseSystemMatrix

__all__ = [
    "AdjointOperator",
    "LinearOperator",
    "check_tensor",
    "Identity",
    "GaussianLikelihood",
    "OdlOperator",
    "from_odl",
    "FBP_FILTERS",
    "RayTransform",
    "fbp_filter",
    "MaskedFourier",
    "channels_to_complex",
    "coil_combine",
    "complex_to_channels",
    "fft2c",
    "ifft2c",
    "rss",
    "center_fraction_for",
    "equispaced_mask",
    "poisson_disc_mask",
    "random_mask",
    "MASK_FUNCTIONS",
    "calibrated_poisson_disc_mask",
    "mask_function",
    "birdcage_maps",
    "calibration_shape",
    "estimate_sensitivities",
    "estimate_sensitivities_or_none",
    "ESPIRIT_LINES",
    "SINGLE_COIL_MAPS",
    "Blur",
    "Downsample",
    "RandomProjection",
    "RealImageView",
    "gaussian_kernel",
    "imresize_matrix",
    "all_finite",
    "OPTIONAL_ABILITIES",
    "UnsupportedAbilityError",
    "SparseSystemMatrix",
]

"""Contract cases for the RIM paper's image-domain operators: downsampling, blur, random projections."""

import torch

from rim_monai.operators import Blur, Downsample, RandomProjection, gaussian_kernel
from tests.operators.cases import OperatorCase


def _random_kernel(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


CASES = [
    OperatorCase("downsample-x2-odd", lambda: Downsample((13, 11), 2), changes={"antialias": False}),
    OperatorCase("downsample-x3-odd", lambda: Downsample((17, 10), 3), batch=(2, 3)),
    OperatorCase("downsample-x4-odd", lambda: Downsample((15, 21), 4)),
    OperatorCase("blur-circular-gaussian", lambda: Blur(gaussian_kernel(5, 1.2), (12, 10), boundary="circular"),
                 changes={"kernel": gaussian_kernel(5, 2.0)}),
    OperatorCase("blur-zero-gaussian", lambda: Blur(gaussian_kernel(5, 1.2), (12, 10), boundary="zero"),
                 changes={"boundary": "circular"}),
    OperatorCase("blur-circular-even-kernel", lambda: Blur(_random_kernel((4, 3)), (9, 8), boundary="circular")),
    OperatorCase("blur-zero-even-kernel", lambda: Blur(_random_kernel((2, 6), seed=1), (9, 8), boundary="zero")),
    OperatorCase(
        "blur-learnable-kernel",
        lambda: Blur(_random_kernel((3, 3), seed=2), (10, 10), boundary="circular", learnable_kernel=True),
        changes={"kernel": _random_kernel((3, 3), seed=3)},
    ),
    # the adjoint as an operator of its own: no optional abilities
    OperatorCase("adjoint-of-downsample", lambda: Downsample((13, 11), 2).H),
    OperatorCase("projection-gaussian", lambda: RandomProjection((8, 8), 0.5, "gaussian", seed=0), changes={"seed": 1}),
    OperatorCase("projection-bernoulli", lambda: RandomProjection((8, 6), 0.3, "bernoulli", seed=1),
                 changes={"seed": 2}),
    OperatorCase("projection-fourier", lambda: RandomProjection((6, 8), 0.25, "fourier", seed=2, normalized=True),
                 changes={"normalized": False}),
]

"""Contract cases for MaskedFourier: 1D/2D/broadcast/per-sample masks, single/multi-coil, fixed/learnable shifts."""

import torch

from rim_monai.operators import MaskedFourier, birdcage_maps, equispaced_mask, poisson_disc_mask, random_mask
from tests.operators.cases import OperatorCase

H, W = 16, 20


def _sens(batch: int | None, coils: int = 4, seed: int = 0) -> torch.Tensor:
    """Birdcage maps with a seeded complex perturbation (so coils are not trivially related)."""
    g = torch.Generator().manual_seed(seed)
    shape = (coils, H, W) if batch is None else (batch, coils, H, W)
    noise = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
    return birdcage_maps(coils, (H, W)) + 0.1 * noise


def _per_sample_masks(batch: int) -> torch.Tensor:
    return torch.stack([random_mask((H, W), 4, 0.1, seed=s) for s in range(batch)])[:, None]


CASES = [
    OperatorCase("fourier-single-random", lambda: MaskedFourier(random_mask((H, W), 4, 0.1, seed=0)),
                 changes={"mask": random_mask((H, W), 4, 0.1, seed=5)}),
    OperatorCase("fourier-single-equispaced", lambda: MaskedFourier(equispaced_mask((H, W), 4, 0.1, seed=0)), batch=(3,)),
    OperatorCase("fourier-single-poisson", lambda: MaskedFourier(poisson_disc_mask((H, W), 3, calib=(4, 4), seed=0))),
    OperatorCase(
        "fourier-single-broadcast-mask", lambda: MaskedFourier(random_mask((H, W), 4, 0.1, seed=1)[:1], shape=(H, W))
    ),
    OperatorCase("fourier-single-per-sample-mask", lambda: MaskedFourier(_per_sample_masks(2)), per_sample=True),
    OperatorCase("fourier-single-shift", lambda: MaskedFourier(random_mask((H, W), 4, 0.1, seed=2), shift=(0.3, -1.7)),
                 changes={"shift": (0.0, 1.0)}),
    OperatorCase(
        "fourier-single-per-sample-shift",
        # (a fully sampled per-sample operator would fail the contract's opnorm check only because an unbatched x is
        # broadcast to every sample there: the stacked gain is sqrt(B); masked, the per-sample gains stay below 1)
        lambda: MaskedFourier(_per_sample_masks(2), shift=torch.tensor([[0.5, 0.0], [-2.25, 1.5]])),
        per_sample=True,
    ),
    OperatorCase("fourier-multi-shared-sens", lambda: MaskedFourier(random_mask((H, W), 4, 0.1, seed=3), _sens(None)),
                 batch=(2,), changes={"sens": _sens(None, seed=7)}),
    OperatorCase(
        "fourier-multi-per-sample",
        lambda: MaskedFourier(_per_sample_masks(2), _sens(2)),
        batch=(2,),
        per_sample=True,
        changes={"sens": _sens(2, seed=3)},
    ),
    OperatorCase(
        "fourier-multi-learnable-shift",
        lambda: MaskedFourier(random_mask((H, W), 4, 0.1, seed=4), _sens(None, coils=3), shift=(0.25, 0.5), learnable_shift=True),
        batch=(2,),
        changes={"shift": (1.0, 0.0)},
    ),
]

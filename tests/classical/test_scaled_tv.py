"""scaled_tv (moved from the CT data module): tv_pdhg with the validation-tunable weight c * default_weight_scale."""

from __future__ import annotations

import pytest
import torch

from rim_monai.classical import default_weight_scale, scaled_tv, tv_pdhg
from rim_monai.data import MU_WATER, ct_operator

SHAPE = (32, 32)


def test_scaled_tv_is_tv_pdhg_with_the_scaled_default_weight():
    operator = ct_operator(image_shape=SHAPE, num_angles=10)
    image = torch.full((1, 1, *SHAPE), 0.0)
    image[..., 8:24, 10:20] = MU_WATER
    y = operator(image)
    lam = 0.3 * default_weight_scale(y, operator)
    x0 = operator.fbp(y, filter="hann").clamp_min(0.0)
    torch.testing.assert_close(scaled_tv(y, operator, 0.3, iterations=20), tv_pdhg(y, operator, lam=lam, iterations=20, x0=x0))
    torch.testing.assert_close(scaled_tv(y, operator, 0.3, warm_start=False, iterations=20),
                               tv_pdhg(y, operator, lam=lam, iterations=20))
    with pytest.raises(ValueError, match="weight"):
        scaled_tv(y, operator, -1.0)

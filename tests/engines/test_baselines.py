"""HounsfieldBaseline: classical reconstructions in the unit the CT bundle scores (HU)."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from rim_monai.classical import fbp
from rim_monai.data import MU_WATER, AttenuationToHU, ct_operator
from rim_monai.engines import HounsfieldBaseline


def test_converts_fbp_to_hu_and_keeps_the_type():
    operator = ct_operator(image_shape=(32, 32), num_angles=10)
    y = operator(torch.full((1, 1, 32, 32), MU_WATER))
    plain = fbp(y, operator)
    hu = HounsfieldBaseline(fbp)(y, operator)
    assert type(hu) is torch.Tensor
    torch.testing.assert_close(hu, AttenuationToHU(MU_WATER)(plain).as_tensor())
    torch.testing.assert_close(HounsfieldBaseline(fbp, hounsfield=False)(y, operator), plain)
    meta = HounsfieldBaseline(lambda y, A: MetaTensor(torch.zeros(1)))(y, operator)
    assert isinstance(meta, MetaTensor) and float(meta) == -1000.0
    with pytest.raises(ValueError, match="method"):
        HounsfieldBaseline("fbp")

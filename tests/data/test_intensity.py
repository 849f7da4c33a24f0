"""Percentile scaling and HU <-> attenuation: formulas, inversion, dict twins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from rim_monai.data import (
    AttenuationToHU,
    AttenuationToHUd,
    HUToAttenuation,
    HUToAttenuationd,
    PercentileScale,
    PercentileScaled,
)


@pytest.mark.parametrize("lower, upper", [(None, 99.5), (1.0, 99.0), (5.0, 100.0)])
def test_percentile_scale_matches_numpy_and_inverts(lower, upper):
    x = MetaTensor(torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0)) * 300 + 20)
    t = PercentileScale(lower, upper)
    y = t(x)
    lo = np.percentile(x.numpy(), lower) if lower is not None else 0.0
    hi = np.percentile(x.numpy(), upper)
    np.testing.assert_allclose(y.numpy(), (x.numpy() - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(t.inverse(y).as_tensor(), x.as_tensor(), rtol=1e-5, atol=1e-4)


def test_percentile_dict_clip_and_validation():
    d = PercentileScaled("image", upper=50.0, clip=True)({"image": MetaTensor(torch.arange(10.0)[None])})
    assert float(d["image"].max()) == 1.0 and float(d["image"].min()) == 0.0
    with pytest.raises(ValueError, match="upper"):
        PercentileScale(upper=0.0)
    with pytest.raises(ValueError, match="lower"):
        PercentileScale(lower=60.0, upper=50.0)


@pytest.mark.parametrize("mu_water", [0.02, 0.0192, 1.0])
def test_hu_attenuation_formulas_and_inverse(mu_water):
    hu = torch.tensor([[-1000.0, -500.0, 0.0, 1000.0, 3000.0]])
    mu = HUToAttenuation(mu_water)(hu)
    torch.testing.assert_close(mu.as_tensor(), mu_water * (1 + hu / 1000))
    torch.testing.assert_close(AttenuationToHU(mu_water)(mu).as_tensor(), hu, rtol=1e-5, atol=1e-3)
    forward = HUToAttenuationd("image", mu_water)
    d = forward({"image": MetaTensor(hu.clone())})
    assert len(d["image"].applied_operations) == 1
    back = forward.inverse(d)
    assert len(back["image"].applied_operations) == 0
    torch.testing.assert_close(back["image"].as_tensor(), hu, rtol=1e-5, atol=1e-3)
    d2 = AttenuationToHUd("image", mu_water)({"image": MetaTensor(mu.as_tensor().clone())})
    torch.testing.assert_close(d2["image"].as_tensor(), hu, rtol=1e-5, atol=1e-3)


def test_padding_values_clamped_to_zero_attenuation():
    mu = HUToAttenuation(0.02)(torch.tensor([[-3024.0, -1000.0]]))
    assert mu.tolist() == [[0.0, 0.0]]
    assert HUToAttenuation(0.02, clip_negative=False)(torch.tensor([[-3024.0]])).item() < 0
    with pytest.raises(ValueError, match="mu_water"):
        HUToAttenuation(0.0)


def test_dict_versions_pass_missing_references_through():
    from rim_monai.data import AttenuationToHUd

    mu = torch.tensor([[0.0, 0.02]])
    out = AttenuationToHUd(["pred", "label"], allow_missing_keys=True)({"pred": mu, "label": None, "other": mu})
    torch.testing.assert_close(out["pred"].as_tensor(), torch.tensor([[-1000.0, 0.0]]))
    assert out["label"] is None and out["other"] is mu


def test_attenuation_to_hu_is_within_two_ulp_of_the_shifted_form():
    """``mu * 1000/mu_w - 1000`` (this transform) against ``(mu - mu_w) * 1000/mu_w`` (the CT module's old helper):
    float32 rounding differs by at most 2 ulp of the 1000 HU offset, and air (mu = 0) is exactly -1000 HU here."""
    from rim_monai.data import AttenuationToHU

    mu = torch.rand(100_000) * 0.06
    new = AttenuationToHU(0.02)(mu).as_tensor()
    old = (mu - 0.02) * (1000.0 / 0.02)
    assert float((new - old).abs().max()) <= 2 * float(np.spacing(np.float32(1000.0)))
    assert float(AttenuationToHU(0.02)(torch.zeros(1))) == -1000.0

import pytest
import torch

from rim_monai.data import UndersampleKSpaced
from rim_monai.operators import fft2c, rss, ifft2c


def _full(coils=3, shape=(32, 40), seed=0):
    g = torch.Generator().manual_seed(seed)
    return fft2c(torch.complex(torch.randn(coils, *shape, generator=g), torch.randn(coils, *shape, generator=g)))


@pytest.mark.parametrize("mask_func, acceleration", [("random", 4), ("equispaced", 8), ("poisson_disc", 4)])
def test_fully_sampled_kspace_is_undersampled(mask_func, acceleration):
    kspace = _full()
    out = UndersampleKSpaced(acceleration=acceleration, mask_func=mask_func)({"kspace": kspace, "filename": "a.h5"})
    mask = out["mask"]
    assert mask.shape == (1, 32, 40)
    assert abs(float(mask.mean()) * acceleration - 1) < 0.35
    assert bool((out["kspace"][:, mask[0] == 0] == 0).all())
    torch.testing.assert_close(out["kspace"][:, mask[0] == 1], kspace[:, mask[0] == 1])
    # the reference is the RSS of the fully sampled coil images
    torch.testing.assert_close(out["target"], rss(ifft2c(kspace), dim=0)[None])


def test_mask_is_shared_by_a_volume_and_reproducible():
    t = UndersampleKSpaced(acceleration=4, seed=3)
    a = t({"kspace": _full(seed=0), "filename": "vol.h5"})["mask"]
    b = t({"kspace": _full(seed=1), "filename": "vol.h5"})["mask"]
    c = t({"kspace": _full(seed=0), "filename": "other.h5"})["mask"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_already_undersampled_kspace_is_untouched():
    kspace = _full()
    mask = torch.zeros(1, 32, 40)
    mask[..., ::2] = 1
    data = {"kspace": kspace * mask, "mask": mask}
    out = UndersampleKSpaced(acceleration=8)(data)
    assert out["mask"] is mask and "target" not in out


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="mask_func"):
        UndersampleKSpaced(mask_func="radial")
    with pytest.raises(ValueError, match="acceleration"):
        UndersampleKSpaced(acceleration=0.5)
    with pytest.raises(ValueError, match="key 'kspace'"):
        UndersampleKSpaced()({"image": torch.ones(1, 4, 4)})
    with pytest.raises(ValueError, match="kspace: expected complex"):
        UndersampleKSpaced()({"kspace": torch.ones(1, 4, 4)})

"""Ellipse phantoms against ODL's ellipsoid_phantom / shepp_logan, the random distribution, the seeded stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rim_monai.data import (
    EllipsePhantomDataset,
    PhantomSliceDataset,
    SimulateSinogramd,
    ellipse_phantom,
    physics_augmentations,
    phantom_to_hu,
    random_ellipses,
    shepp_logan,
)
from rim_monai.operators import RayTransform
from monai.transforms import Compose

odl = pytest.importorskip("odl")


@pytest.mark.parametrize("shape", [(32, 32), (40, 28)])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_phantom_matches_odl(shape, seed):
    ellipses = random_ellipses(np.random.default_rng(seed))
    space = odl.uniform_discr([-1, -1], [1, 1], shape)
    reference = odl.phantom.ellipsoid_phantom(space, ellipses.tolist()).data
    np.testing.assert_allclose(ellipse_phantom(ellipses, shape), reference, atol=1e-6)


@pytest.mark.parametrize("modified", [True, False])
def test_shepp_logan_matches_odl(modified):
    space = odl.uniform_discr([-1, -1], [1, 1], (64, 48))
    reference = odl.phantom.shepp_logan(space, modified=modified).data
    np.testing.assert_allclose(shepp_logan((64, 48), modified), reference, atol=1e-6)


def test_random_ellipse_distribution():
    rng = np.random.default_rng(0)
    draws = [random_ellipses(rng, n_ellipses=50) for _ in range(400)]
    counts = np.array([len(d) for d in draws])
    table = np.concatenate(draws)
    assert abs(counts.mean() - 50) < 1.0 and abs(counts.var() - 50) < 10  # Poisson(50)
    assert abs(table[:, 1:3].mean() - 0.2) < 0.01  # half-axes 0.2 * Exp(1)
    assert abs(table[:, 0].mean()) < 0.01 and abs(table[:, 0].std() - np.sqrt(2 * 0.4**2 / 12)) < 0.01
    assert table[:, 3:5].min() >= -1 and table[:, 3:5].max() <= 1
    assert table[:, 5].min() >= 0 and table[:, 5].max() < 2 * np.pi
    interior = random_ellipses(np.random.default_rng(1), interior=True)
    assert np.abs(interior[:, 3:5]).max() <= 0.5


def test_stream_is_seeded_and_worker_independent():
    ds = EllipsePhantomDataset((16, 16), seed=3, length=6)
    direct = torch.stack([ds[k]["image"] for k in range(6)])
    single = torch.cat([b["image"] for b in DataLoader(ds, batch_size=2)])
    multi = torch.cat([b["image"] for b in DataLoader(ds, batch_size=None, num_workers=2)]).reshape(6, 1, 16, 16)
    torch.testing.assert_close(single, direct)
    torch.testing.assert_close(multi, direct)  # the loader interleaves workers back into item order
    other = EllipsePhantomDataset((16, 16), seed=4, length=1)[0]["image"]
    assert not torch.equal(other, direct[0])
    with pytest.raises(TypeError):
        len(EllipsePhantomDataset((16, 16)))
    infinite = iter(EllipsePhantomDataset((8, 8), seed=0))
    assert all(next(infinite)["image"].shape == (1, 8, 8) for _ in range(5))


def test_supersampled_pairs_and_seeded_transforms():
    A = RayTransform((16, 16), num_angles=6, backend="matrix")
    pipeline = Compose([
        physics_augmentations(["image", "image_fine"], crop_size=None, rot90=True),
        SimulateSinogramd(operator=A, noise="gaussian", upsample=2),
    ])
    ds = EllipsePhantomDataset((16, 16), seed=0, length=3, supersample=2, transform=pipeline)
    a, b = ds[1], ds[1]
    assert a["image_fine"].shape == (1, 32, 32) and a["sinogram"].shape == (1, *A.range_shape)
    torch.testing.assert_close(a["sinogram"], b["sinogram"])  # augmentation and noise re-seeded per item
    plain = EllipsePhantomDataset((16, 16), seed=0, length=3, supersample=2)[1]
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(plain["image_fine"][None], 2)[0], plain["image"].as_tensor())
    sl = EllipsePhantomDataset((32, 32), kind="shepp_logan", length=1)[0]["image"]
    np.testing.assert_array_equal(sl[0].numpy(), shepp_logan((32, 32)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        EllipsePhantomDataset(kind="cube")
    with pytest.raises(ValueError, match="supersample"):
        EllipsePhantomDataset(supersample=0)
    with pytest.raises(IndexError):
        EllipsePhantomDataset(length=2)[2]


def test_distributed_processes_take_disjoint_items(monkeypatch):
    ds = EllipsePhantomDataset((8, 8), seed=2, length=6)
    direct = [ds[k]["image"] for k in range(6)]
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        items = [it["image"] for it in ds]
        assert len(items) == 3
        for j, item in enumerate(items):
            torch.testing.assert_close(item, direct[rank + 2 * j])


def test_phantom_to_hu_reads_values_as_attenuation_relative_to_water():
    torch.testing.assert_close(phantom_to_hu(torch.tensor([-0.5, 0.0, 1.0, 1.5])), torch.tensor([-1000.0, -1000.0, 0.0, 500.0]))


def test_phantom_slices_fixed_and_fresh():
    pipeline = SimulateSinogramd(operator=RayTransform((16, 16), num_angles=6, backend="matrix"), noise="gaussian")
    fixed = PhantomSliceDataset(2, (16, 16), seed=3, supersample=2, transform=pipeline, name="val")
    a, b = fixed[1], fixed[1]
    assert a["filename"] == "val_001" and a["slice"] == 0 and a["image_fine"].shape == (1, 32, 32)
    torch.testing.assert_close(a["sinogram"], b["sinogram"])  # the same phantom and noise at every access
    stream = EllipsePhantomDataset((16, 16), seed=3, supersample=2)[1]["image"]
    torch.testing.assert_close(a["image"].as_tensor(), phantom_to_hu(stream))  # phantom 1 of stream 3, in HU
    fresh = PhantomSliceDataset(2, (16, 16), seed=3, fresh=True)
    assert not torch.equal(fresh[0]["image"], fresh[0]["image"])  # a new phantom at every access
    torch.testing.assert_close(PhantomSliceDataset(2, (16, 16), seed=3, fresh=True)[0]["image"],
                               PhantomSliceDataset(2, (16, 16), seed=3, fresh=True)[0]["image"])  # seeded stream
    with pytest.raises(ValueError, match="length"):
        PhantomSliceDataset(0, (16, 16))

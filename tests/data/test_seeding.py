"""The one per-item seeding rule."""

from __future__ import annotations

import zlib

import pytest
import torch
from monai.data import Dataset as MonaiDataset
from monai.transforms import RandGaussianNoised

from rim_monai.data import SEED_STRIDE, SeededItems, item_seed


@pytest.mark.parametrize(
    "seed, key, stride, expected",
    [
        (2, 1, SEED_STRIDE, 2 * 1_000_003 + 1),  # the fixed phantom sets
        (0, "phantom_8coil.h5", SEED_STRIDE, zlib.crc32(b"phantom_8coil.h5")),  # one mask per scan file
        (3, "a.h5", SEED_STRIDE, (3 * 1_000_003 + zlib.crc32(b"a.h5")) % 2**31),
        (1, 4, 1, 5),  # the MRI bundle's validation slices: seed + i
        (5000, 7, SEED_STRIDE, (5000 * 1_000_003 + 7) % 2**31),
    ],
)
def test_item_seed_formula(seed, key, stride, expected):
    assert item_seed(seed, key, stride) == expected


@pytest.mark.parametrize("key", [-1, 1.5, None, True])
def test_item_seed_rejects_bad_keys(key):
    with pytest.raises(ValueError, match="key"):
        item_seed(0, key)


def test_seeded_items_do_not_depend_on_access_order():
    noise = RandGaussianNoised("image", prob=1.0)
    ds = SeededItems(MonaiDataset([{"image": torch.zeros(1, 8)}] * 3, noise), noise, seed=0)
    forward = [ds[i]["image"] for i in range(3)]
    backward = [ds[i]["image"] for i in (2, 1, 0)][::-1]
    for a, b in zip(forward, backward):
        torch.testing.assert_close(a, b)
    assert not torch.equal(forward[0], forward[1])
    with pytest.raises(ValueError, match="transform"):
        SeededItems(ds, lambda d: d, seed=0)

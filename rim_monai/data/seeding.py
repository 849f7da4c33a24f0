r"""Per-item seeding: one rule for every item whose random draws must not depend on the order it is read in.

An item ``key`` (an integer index, or a name such as a file name) of a stream seeded with ``seed`` is drawn with the
random state

.. math::
    s(\text{seed}, \text{key}) = (\text{seed} \cdot \text{stride} + k) \bmod 2^{31},
    \qquad k = \text{key} \text{ (an index) or } \operatorname{crc32}(\text{key}) \text{ (a name)},

with ``stride`` = :data:`SEED_STRIDE` (1 000 003, a prime), so the streams of different seeds do not share item
states for their first million items. The same item gets the same draws however the data are shuffled, split over
``DataLoader`` workers or processes, and revisited each epoch. Users of the rule:

- fixed sets of phantoms (validation and test sets): item ``i`` of phantom stream ``seed``;
- :class:`~rim_monai.data.UndersampleKSpaced`: one mask per scan file (``key`` = its file name), shared by its slices;
- :class:`~rim_monai.data.EllipsePhantomDataset`'s transform;
- :class:`SeededItems`, a validation set whose masks and noise are the same at every epoch (the MRI bundle's
  validation slices use ``stride`` = 1, :math:`s = \text{seed} + i`, the draws its shipped model was selected with).

Reconstruction datasets are seeded the MONAI way instead: their pipeline is seeded once (``set_random_state``) and
draws in item order, the order a ``DataLoader`` without shuffling reads them in.
"""

from __future__ import annotations

import zlib
from typing import Any

from torch.utils.data import Dataset

__all__ = ["SEED_STRIDE", "item_seed", "SeededItems"]

SEED_STRIDE = 1_000_003
"""Distance between the item states of consecutive stream seeds (a prime above a million)."""


def item_seed(seed: int, key: int | str, stride: int = SEED_STRIDE) -> int:
    r"""The random state of item ``key`` of the stream ``seed``.

    :math:`s = (\text{seed} \cdot \text{stride} + k) \bmod 2^{31}`, with :math:`k` the index, or the CRC-32 of a name.

    Args:
        seed: the stream's seed.
        key: the item's index, or its name (hashed with CRC-32, stable across runs and platforms).
        stride: distance between the states of consecutive stream seeds.

    Returns:
        A seed in :math:`[0, 2^{31})` for ``set_random_state`` or a ``torch.Generator``.

    Raises:
        ValueError: a negative index, or a key that is neither an integer nor a string.

    Example:
        >>> item_seed(2, 1), item_seed(0, "a.h5") == item_seed(0, "a.h5"), item_seed(1, 4, stride=1)
        (2000007, True, 5)
    """
    if isinstance(key, str):
        k = zlib.crc32(key.encode())
    elif isinstance(key, int) and not isinstance(key, bool) and key >= 0:
        k = int(key)
    else:
        raise ValueError(f"key: expected an item index >= 0 or a name, got {key!r}.")
    return (int(seed) * int(stride) + k) % (2**31)


class SeededItems(Dataset):
    """Item ``i`` of ``dataset`` read with ``transform`` seeded by :func:`item_seed` ``(seed, i, stride)``.

    ``transform`` is the random transform ``dataset`` applies to its items (a MONAI ``Compose`` or ``Randomizable``),
    so a validation set gets the same masks and noise at every epoch and the key metric compares checkpoints, not
    random draws.

    Args:
        dataset: a map-style dataset applying ``transform``.
        transform: the transform to seed before each item.
        seed: the stream's seed.
        stride: see :func:`item_seed`.

    Example:
        >>> import torch
        >>> from monai.transforms import RandGaussianNoised
        >>> from monai.data import Dataset as MonaiDataset
        >>> noise = RandGaussianNoised("image", prob=1.0)
        >>> ds = SeededItems(MonaiDataset([{"image": torch.zeros(1, 4)}] * 2, noise), noise, seed=0)
        >>> bool((ds[1]["image"] == ds[1]["image"]).all()), bool((ds[0]["image"] == ds[1]["image"]).all())
        (True, False)
    """

    def __init__(self, dataset: Dataset, transform: Any, seed: int, stride: int = SEED_STRIDE) -> None:
        if not hasattr(transform, "set_random_state"):
            raise ValueError("transform: expected a MONAI random transform (with set_random_state), got "
                             f"{type(transform).__name__}.")
        self.dataset, self.transform, self.seed, self.stride = dataset, transform, int(seed), int(stride)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        self.transform.set_random_state(seed=item_seed(self.seed, int(index), self.stride))
        return self.dataset[index]

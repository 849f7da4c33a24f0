r"""Ellipse phantoms: the random-ellipse distribution of the learned primal-dual paper and Shepp–Logan.

An ellipse phantom is a sum of constant ellipses on the reference square :math:`[-1, 1]^2`; each ellipse is
``(value, a, b, x0, y0, theta)`` (half-axes :math:`a, b`, centre, rotation in radians) and covers the pixel centres
:math:`p` with :math:`(R_\theta^T (p - c))_1^2 / a^2 + (R_\theta^T (p - c))_2^2 / b^2 \le 1`. Array index ``[i, j]``
is the point :math:`(x_1, x_2) = (-1 + 2i/(H - 1),\ -1 + 2j/(W - 1))` — the reference square spans the pixel
*centres*, the convention of ODL's ``ellipsoid_phantom`` (array axes as in
:class:`rim_monai.operators.RayTransform`), which the tests check pixel by pixel.

Random ellipses (Adler & Öktem 2018, *Learned primal-dual reconstruction*): the number of ellipses is
Poisson(``n_ellipses`` = 50); each has value :math:`(U - 1/2)\, E_{0.4}`, half-axes :math:`0.2\, E_1` each, centre
uniform in :math:`[-1, 1]^2` (:math:`[-1/2, 1/2]^2` with ``interior=True``) and angle uniform in
:math:`[0, 2\pi)`, with :math:`U \sim \mathcal U[0, 1]` and :math:`E_s` exponential with mean :math:`s`. Values add
up where ellipses overlap (so they can be negative; the paper uses them as they are).

CT reads a phantom value :math:`v` as attenuation relative to water, clamped at 0: :math:`\mu / \mu_\text{water} =
\max(v, 0)`, i.e. :math:`\text{HU} = 1000 (\max(v, 0) - 1)` (:func:`phantom_to_hu`); :class:`PhantomSliceDataset`
serves phantoms in HU as slice items, the way scans enter a protocol's simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import apply_transform
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from rim_monai.data.keys import Keys
from rim_monai.data.seeding import item_seed

__all__ = [
    "ellipse_phantom",
    "random_ellipses",
    "shepp_logan_ellipses",
    "shepp_logan",
    "EllipsePhantomDataset",
    "phantom_to_hu",
    "PhantomSliceDataset",
]

# (value, a, b, x0, y0, theta in degrees): the Shepp-Logan table (Shepp & Logan 1974), in ODL's axis convention
_SHEPP_LOGAN = [
    (2.00, 0.6900, 0.9200, 0.0000, 0.0000, 0.0),
    (-0.98, 0.6624, 0.8740, 0.0000, -0.0184, 0.0),
    (-0.02, 0.1100, 0.3100, 0.2200, 0.0000, -18.0),
    (-0.02, 0.1600, 0.4100, -0.2200, 0.0000, 18.0),
    (0.01, 0.2100, 0.2500, 0.0000, 0.3500, 0.0),
    (0.01, 0.0460, 0.0460, 0.0000, 0.1000, 0.0),
    (0.01, 0.0460, 0.0460, 0.0000, -0.1000, 0.0),
    (0.01, 0.0460, 0.0230, -0.0800, -0.6050, 0.0),
    (0.01, 0.0230, 0.0230, 0.0000, -0.6060, 0.0),
    (0.01, 0.0230, 0.0460, 0.0600, -0.6050, 0.0),
]
# the "modified" (Toft 1996) intensities with better contrast
_MODIFIED_VALUES = [1.0, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


def ellipse_phantom(ellipses: np.ndarray | Sequence[Sequence[float]], shape: Sequence[int]) -> np.ndarray:
    """Rasterise ellipses ``(value, a, b, x0, y0, theta)`` on an ``(H, W)`` grid of pixel centres (float32).

    Args:
        ellipses: ``(N, 6)`` parameters on the reference square ``[-1, 1]^2`` (see the module docstring).
        shape: ``(H, W)``.

    Returns:
        float32 ``(H, W)``; values of overlapping ellipses add.

    Example:
        >>> ellipse_phantom([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]], (5, 5))[2].tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    height, width = int(shape[0]), int(shape[1])
    ellipses = np.asarray(ellipses, dtype=np.float64).reshape(-1, 6)
    image = np.zeros((height, width), dtype=np.float32)
    x1 = np.linspace(-1.0, 1.0, height) if height > 1 else np.zeros(1)
    x2 = np.linspace(-1.0, 1.0, width) if width > 1 else np.zeros(1)
    for value, a, b, c1, c2, theta in ellipses:
        if a <= 0 or b <= 0:
            continue
        cos, sin = math.cos(theta), math.sin(theta)
        d1, d2 = (x1 - c1)[:, None], (x2 - c2)[None, :]
        u = cos * d1 + sin * d2
        v = -sin * d1 + cos * d2
        inside = u * u * (1.0 / (a * a)) + v * v * (1.0 / (b * b)) <= 1.0
        image[inside] += np.float32(value)
    return image


def random_ellipses(
    rng: np.random.Generator, n_ellipses: float = 50.0, interior: bool = False
) -> np.ndarray:
    """Draw ellipse parameters from the learned primal-dual distribution (see the module docstring).

    Args:
        rng: a NumPy generator.
        n_ellipses: mean of the Poisson number of ellipses.
        interior: centres in ``[-1/2, 1/2]^2`` instead of ``[-1, 1]^2``.

    Returns:
        ``(N, 6)`` float64 array ``(value, a, b, x0, y0, theta)``.
    """
    n = int(rng.poisson(n_ellipses))
    span = 0.5 if interior else 1.0
    value = (rng.uniform(size=n) - 0.5) * rng.exponential(0.4, size=n)
    axes = 0.2 * rng.exponential(1.0, size=(n, 2))
    centre = rng.uniform(-span, span, size=(n, 2))
    theta = rng.uniform(0.0, 2.0 * math.pi, size=n)
    return np.column_stack([value, axes, centre, theta])


def shepp_logan_ellipses(modified: bool = True) -> np.ndarray:
    """The 10 Shepp–Logan ellipses ``(value, a, b, x0, y0, theta)``; ``modified`` uses Toft's intensities."""
    table = np.array(_SHEPP_LOGAN, dtype=np.float64)
    table[:, 5] = np.deg2rad(table[:, 5])
    if modified:
        table[:, 0] = _MODIFIED_VALUES
    return table


def shepp_logan(shape: Sequence[int], modified: bool = True) -> np.ndarray:
    """The Shepp–Logan phantom on an ``(H, W)`` grid (float32; the modified one has values in [0, 1])."""
    return ellipse_phantom(shepp_logan_ellipses(modified), shape)


class EllipsePhantomDataset(IterableDataset):
    """An infinite (or finite, ``length``) seeded stream of ellipse phantoms as MONAI dicts.

    Item ``k`` is drawn from ``numpy.random.default_rng([seed, k])``: the stream is the same for any number of
    ``DataLoader`` workers (worker ``w`` of ``n`` yields items ``w, w + n, ...``, which the loader interleaves back in
    order), and ``dataset[k]`` gives item ``k`` directly. Under ``torch.distributed`` each process takes every
    ``world_size``-th item from its rank (no ``DistributedSampler`` needed). When ``transform`` has
    ``set_random_state`` (MONAI ``Compose`` / ``Randomizable``), it is re-seeded with
    :func:`~rim_monai.data.seeding.item_seed` ``(seed, k)`` before item ``k``, so augmentations and simulated noise
    are reproducible too.

    Each item is ``{"image": MetaTensor (1, H, W) float32}``; with ``supersample = s > 1`` the phantom is rendered on
    an ``s``-times finer grid, ``"image"`` is its ``s x s`` block average and ``"image_fine"`` the fine one (for
    :class:`SimulateSinogramd`'s inverse-crime-free simulation).

    Args:
        shape: ``(H, W)`` of ``"image"``.
        kind: ``"random"`` (learned primal-dual ellipses) or ``"shepp_logan"`` (then only the transform varies).
        n_ellipses: mean number of random ellipses.
        interior: random centres in ``[-1/2, 1/2]^2``.
        modified: modified Shepp–Logan intensities.
        seed: seed of the stream.
        length: number of items (``None``: infinite).
        supersample: rendering refinement ``s``.
        transform: applied to each item (augmentations, then a simulator).
        image_key, fine_key: output keys.

    Example:
        >>> ds = EllipsePhantomDataset((64, 64), seed=0, length=4)
        >>> [item["image"].shape for item in ds][0]
        torch.Size([1, 64, 64])
    """

    def __init__(
        self,
        shape: Sequence[int] = (128, 128),
        kind: str = "random",
        n_ellipses: float = 50.0,
        interior: bool = False,
        modified: bool = True,
        seed: int = 0,
        length: int | None = None,
        supersample: int = 1,
        transform: Callable | None = None,
        image_key: str = Keys.IMAGE,
        fine_key: str = Keys.IMAGE_FINE,
    ) -> None:
        if kind not in ("random", "shepp_logan"):
            raise ValueError(f"kind: expected 'random' or 'shepp_logan', got {kind!r}.")
        if not isinstance(supersample, int) or supersample < 1:
            raise ValueError(f"supersample: expected a positive integer, got {supersample!r}.")
        if length is not None and length < 0:
            raise ValueError(f"length: expected None or a number >= 0, got {length}.")
        self.shape = (int(shape[0]), int(shape[1]))
        self.kind, self.n_ellipses, self.interior, self.modified = kind, n_ellipses, interior, modified
        self.seed, self.length, self.supersample = int(seed), length, supersample
        self.transform, self.image_key, self.fine_key = transform, image_key, fine_key

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("EllipsePhantomDataset: an infinite stream has no length (pass length=...).")
        return self.length

    def __getitem__(self, k: int) -> dict[str, Any]:
        if k < 0 or (self.length is not None and k >= self.length):
            raise IndexError(f"k: expected an index in [0, {self.length}), got {k}.")
        rng = np.random.default_rng([self.seed, int(k)])
        s = self.supersample
        fine_shape = (self.shape[0] * s, self.shape[1] * s)
        ellipses = (
            random_ellipses(rng, self.n_ellipses, self.interior) if self.kind == "random"
            else shepp_logan_ellipses(self.modified)
        )
        fine = torch.from_numpy(ellipse_phantom(ellipses, fine_shape))[None]
        meta = {"phantom_index": int(k), "phantom_seed": self.seed, "filename_or_obj": f"{self.kind}_{self.seed}_{k}"}
        item: dict[str, Any] = {}
        if s > 1:
            item[self.image_key] = MetaTensor(F.avg_pool2d(fine[None], s)[0], meta=meta)
            item[self.fine_key] = fine
        else:
            item[self.image_key] = MetaTensor(fine, meta=meta)
        if self.transform is None:
            return item
        if hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(seed=item_seed(self.seed, int(k)))
        return apply_transform(self.transform, item)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        # process `rank` of `world` takes items rank, rank + world, ...; its workers split those further
        k, step = rank + world * worker, world * workers
        while self.length is None or k < self.length:
            yield self[k]
            k += step


def phantom_to_hu(phantom: torch.Tensor | np.ndarray) -> torch.Tensor:
    r"""Ellipse phantom values (attenuation relative to water) to HU: :math:`1000(\max(v, 0) - 1)`.

    Example:
        >>> phantom_to_hu(torch.tensor([-0.5, 0.0, 1.0, 1.5])).tolist()
        [-1000.0, -1000.0, 0.0, 500.0]
    """
    return 1000.0 * (torch.as_tensor(phantom).float().clamp_min(0.0) - 1.0)


class PhantomSliceDataset(Dataset):
    """``length`` random-ellipse phantoms in HU (:func:`phantom_to_hu`) as slice items, through ``transform``.

    Item ``i`` is ``{"image": MetaTensor (1, H, W), "image_fine": (1, sH, sW), "filename": "<name>_<i>", "slice": 0}``
    (``"image_fine"`` when ``supersample`` > 1), passed through ``transform`` seeded with
    :func:`~rim_monai.data.seeding.item_seed` ``(seed, k)`` for phantom ``k`` of the stream
    ``EllipsePhantomDataset(shape, seed=seed)``:

    - ``fresh=False``: ``k = i`` (validation and test sets: the same phantoms and noise every time);
    - ``fresh=True``: every access draws a new ``k`` from a generator seeded with ``seed`` and the process's
      ``torch.distributed`` rank (training: new phantoms every epoch, different on each process).

    Args:
        length: number of items.
        shape: ``(H, W)`` of the phantoms.
        seed: the phantom stream's seed.
        supersample: render ``supersample`` times finer too (``"image_fine"``, no inverse crime).
        transform: the simulation (a seeded MONAI transform), or ``None``.
        fresh: draw new phantoms on every access.
        name: file-name stem of the items (the saver names outputs after it).

    Raises:
        ValueError: ``length`` < 1.

    Example:
        >>> ds = PhantomSliceDataset(2, (16, 16), seed=2, name="ellipses_seed2")
        >>> ds[1]["filename"], ds[1]["image"].shape
        ('ellipses_seed2_001', torch.Size([1, 16, 16]))
    """

    def __init__(
        self,
        length: int,
        shape: Sequence[int],
        seed: int = 0,
        supersample: int = 1,
        transform: Callable | None = None,
        fresh: bool = False,
        name: str = "ellipses",
    ) -> None:
        if int(length) < 1:
            raise ValueError(f"length: expected a positive number of phantoms, got {length}.")
        self.length, self.seed, self.fresh, self.name = int(length), int(seed), bool(fresh), name
        self.stream = EllipsePhantomDataset(tuple(shape), seed=self.seed, supersample=supersample)
        self.transform = transform
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return self.length

    def phantom_index(self, i: int) -> int:
        """The stream index of the phantom item ``i`` shows (a new random one on each call when ``fresh``)."""
        if not self.fresh:
            return int(i)
        if self._rng is None:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self._rng = np.random.default_rng([self.seed, rank, 7919])
        return int(self._rng.integers(0, 2**62))

    def __getitem__(self, i: int) -> dict[str, Any]:
        k = self.phantom_index(i)
        phantom = self.stream[k]
        name = f"{self.name}_{int(i):03d}"
        item: dict[str, Any] = {
            Keys.IMAGE: MetaTensor(phantom_to_hu(phantom[Keys.IMAGE]), meta={"filename_or_obj": name}),
            Keys.FILENAME: name,
            Keys.SLICE: 0,
        }
        if Keys.IMAGE_FINE in phantom:
            item[Keys.IMAGE_FINE] = phantom_to_hu(phantom[Keys.IMAGE_FINE])
        if self.transform is None:
            return item
        if hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(seed=item_seed(self.seed, k))
        return apply_transform(self.transform, item)

"""Grey image patches for the random-projection experiment: image folders, synthetic images, patch sampling.

The RIM paper (Putzky & Welling 2017, Sec. 4.4) trains on 32x32 grey patches of the BSDS300 training images drawn
from a stride-4 grid and tests on patches of the test images; :class:`PatchSampler` draws both, from images read by
:func:`load_grey_images` (or :func:`synthetic_images` when the data folder is absent).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["IMAGE_SUFFIXES", "GREY_WEIGHTS", "load_grey_images", "synthetic_images", "PatchSampler"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: ITU-R BT.601 luma weights (MATLAB ``rgb2gray``), applied to RGB values on [0, 1]
GREY_WEIGHTS = (0.298936, 0.587043, 0.114021)


def load_grey_images(folder: str | os.PathLike, max_images: int | None = None) -> list[np.ndarray]:
    """Read every image of ``folder`` (sorted by name) as grey ``float32`` on [0, 1].

    RGB is converted with the BT.601 luma weights of MATLAB ``rgb2gray`` (:data:`GREY_WEIGHTS`) on the 8-bit
    values scaled to [0, 1]; grey images are only scaled.

    Args:
        folder: a folder of PNG/JPEG images (e.g. ``bsds300/images/train``).
        max_images: read only the first ``max_images`` files.

    Returns:
        A list of ``(H, W)`` arrays.

    Raises:
        ValueError: ``folder`` does not exist or holds no image.
    """
    from PIL import Image

    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"folder: {str(path)!r} is not a directory (expected a folder of images, e.g. bsds300/images/train).")
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder: {str(path)!r} holds no image with a suffix in {IMAGE_SUFFIXES}.")
    if max_images is not None:
        files = files[: int(max_images)]
    images = []
    for f in files:
        with Image.open(f) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        images.append((arr @ np.asarray(GREY_WEIGHTS)).astype(np.float32))
    return images


def synthetic_images(count: int, shape: Sequence[int] = (96, 96), seed: int = 0) -> list[np.ndarray]:
    """Smooth synthetic grey images on [0, 1] (blurred noise plus a random straight edge), for data-free smoke runs."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    h, w = (int(s) for s in shape)
    rows, cols = np.mgrid[0:h, 0:w]
    images = []
    for _ in range(int(count)):
        field = gaussian_filter(rng.standard_normal((h, w)), sigma=float(rng.uniform(2, 6)))
        angle, offset = rng.uniform(0, np.pi), rng.uniform(-0.3, 0.3) * max(h, w)
        edge = (np.cos(angle) * (rows - h / 2) + np.sin(angle) * (cols - w / 2) > offset).astype(np.float64)
        img = field / (np.abs(field).max() + 1e-12) + rng.uniform(0.3, 1.0) * edge
        img = 0.05 + 0.9 * (img - img.min()) / (img.max() - img.min() + 1e-12)
        images.append(img.astype(np.float32))
    return images


class PatchSampler:
    """Square patches of a list of grey images: uniform draws from the stride-``stride`` grid (training) or from
    every position (held-out test patches).

    Args:
        images: ``(H, W)`` arrays, each at least ``patch`` on both sides.
        patch: patch side length.
        stride: grid stride of :meth:`sample` (4 in the paper: every patch of the grid is equally likely).

    Raises:
        ValueError: no image, or an image smaller than the patch.

    Example:
        >>> s = PatchSampler(synthetic_images(2, (40, 40)), patch=32, stride=4)
        >>> s.grid_size, s.sample(3, np.random.default_rng(0)).shape
        (18, torch.Size([3, 1, 32, 32]))
    """

    def __init__(self, images: Sequence[np.ndarray], patch: int = 32, stride: int = 4) -> None:
        if not images:
            raise ValueError("images: expected at least one image, got none.")
        small = [i for i, im in enumerate(images) if min(im.shape[-2:]) < patch]
        if small:
            raise ValueError(f"images: image(s) {small[:5]} are smaller than the patch size {patch}.")
        self.images, self.patch, self.stride = list(images), int(patch), int(stride)
        self._grid = [((im.shape[0] - patch) // stride + 1, (im.shape[1] - patch) // stride + 1) for im in self.images]
        self._cum = np.cumsum([r * c for r, c in self._grid])

    @property
    def grid_size(self) -> int:
        """Number of distinct patches on the stride grid (the size of the paper's training set)."""
        return int(self._cum[-1])

    def _crop(self, idx: int, r: int, c: int) -> np.ndarray:
        return self.images[idx][r : r + self.patch, c : c + self.patch]

    def sample(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` patches drawn uniformly (with replacement) from the stride grid, ``(n, 1, patch, patch)``."""
        flat = rng.integers(0, self.grid_size, size=int(n))
        img = np.searchsorted(self._cum, flat, side="right")
        local = flat - np.concatenate([[0], self._cum])[img]
        out = np.empty((int(n), 1, self.patch, self.patch), dtype=np.float32)
        for k, (i, j) in enumerate(zip(img, local)):
            cols = self._grid[i][1]
            out[k, 0] = self._crop(int(i), int(j // cols) * self.stride, int(j % cols) * self.stride)
        return torch.from_numpy(out)

    def random_patches(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` patches at uniformly random images and positions (any pixel offset), ``(n, 1, patch, patch)``."""
        out = np.empty((int(n), 1, self.patch, self.patch), dtype=np.float32)
        for k in range(int(n)):
            i = int(rng.integers(0, len(self.images)))
            h, w = self.images[i].shape
            out[k, 0] = self._crop(i, int(rng.integers(0, h - self.patch + 1)), int(rng.integers(0, w - self.patch + 1)))
        return torch.from_numpy(out)

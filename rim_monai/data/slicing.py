"""Volumes to 2D slices and back, keeping the scanner geometry.

Reconstruction networks here are 2D: a NIfTI volume ``(C, X, Y, Z)`` loaded by MONAI ``LoadImaged`` +
``EnsureChannelFirstd`` is cut into slices ``(C, H, W)`` along one spatial axis. Each slice is a ``MetaTensor`` whose
``affine`` is the 4x4 voxel-to-world map *of that slice*: its first two columns are the volume's in-plane columns, its
third the through-plane column, and its origin the world position of voxel ``(0, 0)`` of slice ``k``. So a 2D slice
saved on its own as NIfTI lands at the right place in the scanner, and :func:`stack_slices` rebuilds the volume with
the original affine (its meta keeps ``volume_affine``, ``volume_shape``, ``slice_axis`` and ``slice_index``).

A slice resampled to another grid (:class:`FitToGridd`, area averaging) keeps that geometry up to date:
:func:`zoom_affine` is the voxel map of the resampling and :func:`rescale_slice_meta` applies it to the slice's and
the volume's affine and shape, so the reconstruction is written with the right voxel size at the right place.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, MapTransform, Transform, apply_transform
from monai.utils import convert_to_tensor
from torch.utils.data import Dataset

from rim_monai.data.file_utils import DataFileError
from rim_monai.data.keys import Keys

__all__ = [
    "SliceVolume",
    "SliceVolumed",
    "stack_slices",
    "SliceDataset",
    "slice_affine",
    "zoom_affine",
    "rescale_slice_meta",
    "FitToGridd",
]


def slice_affine(affine: torch.Tensor | np.ndarray, axis: int, index: int) -> torch.Tensor:
    """The 4x4 affine of slice ``index`` along spatial ``axis`` of a 3D volume with affine ``affine``.

    Columns are reordered to ``(in-plane axes..., axis)`` and the origin moved to voxel ``index`` along ``axis``.

    Example:
        >>> slice_affine(torch.eye(4), axis=0, index=3)[:3, 3].tolist()
        [3.0, 0.0, 0.0]
    """
    affine = torch.as_tensor(affine, dtype=torch.float64)
    keep = [a for a in range(3) if a != axis]
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = affine[:3, keep + [axis]]
    out[:3, 3] = affine[:3, 3] + affine[:3, axis] * index
    return out


def _check_axis(axis: int) -> int:
    if axis not in (-3, -2, -1, 0, 1, 2):
        raise ValueError(f"axis: expected a spatial axis of a 3D volume (0, 1, 2 or -1...-3), got {axis}.")
    return axis % 3


class SliceVolume(Transform):
    """Cut a channel-first volume ``(C, X, Y, Z)`` into 2D slices ``(C, H, W)`` along a spatial axis.

    Args:
        axis: spatial axis to slice along (0, 1, 2; -1 = last).
        slice_range: ``(start, stop)`` half-open range of slice indices (negative values count from the end;
            ``None`` = all slices).
        skip_empty: drop slices whose maximum magnitude is at most ``threshold``.
        threshold: the emptiness threshold.
        check_finite: reject volumes with NaN/Inf values (``DataFileError`` naming the file).

    Returns:
        A list of ``MetaTensor`` slices; each one's meta has ``affine`` (the slice's own geometry, see
        :func:`slice_affine`), ``volume_affine``, ``volume_shape``, ``slice_axis`` and ``slice_index``.

    Example:
        >>> vol = MetaTensor(torch.zeros(1, 4, 5, 6)); vol[0, :, :, 2] = 1
        >>> [s.meta["slice_index"] for s in SliceVolume(axis=2)(vol)]
        [2]
    """

    def __init__(
        self, axis: int = -1, slice_range: Sequence[int] | None = None, skip_empty: bool = True, threshold: float = 0.0,
        check_finite: bool = True,
    ) -> None:
        self.axis = _check_axis(axis)
        self.check_finite = check_finite
        if slice_range is not None and len(slice_range) != 2:
            raise ValueError(f"slice_range: expected (start, stop), got {slice_range}.")
        self.slice_range = slice_range
        self.skip_empty = skip_empty
        self.threshold = threshold

    def indices(self, depth: int) -> range:
        """The slice indices selected from ``depth`` slices (before emptiness is checked)."""
        if self.slice_range is None:
            return range(depth)
        start, stop, _ = slice(*self.slice_range).indices(depth)
        return range(start, stop)

    def __call__(self, img: torch.Tensor | np.ndarray) -> list[MetaTensor]:
        img = convert_to_tensor(img, track_meta=True)
        if not isinstance(img, MetaTensor):
            img = MetaTensor(img)
        if img.ndim != 4:
            name = img.meta.get("filename_or_obj", "img")
            raise ValueError(f"{name}: expected a channel-first volume (C, X, Y, Z), got shape {tuple(img.shape)}.")
        if self.check_finite and img.is_floating_point() and not bool(torch.isfinite(img).all()):
            bad = int((~torch.isfinite(img)).sum())
            raise DataFileError(img.meta.get("filename_or_obj", "img"), "image", "finite values", f"{bad} NaN/Inf value(s)")
        volume_affine = img.affine.clone()
        volume_shape = tuple(int(s) for s in img.shape[1:])
        dim = self.axis + 1
        slices = []
        for k in self.indices(img.shape[dim]):
            plane = img.select(dim, k)
            if self.skip_empty and float(plane.abs().max()) <= self.threshold:
                continue
            out = MetaTensor(plane.as_tensor().clone(), meta=dict(img.meta))
            affine = slice_affine(volume_affine, self.axis, k)
            out.meta.update(
                {
                    "affine": affine,
                    "original_affine": affine,
                    "spatial_shape": np.asarray(plane.shape[1:]),
                    "volume_affine": volume_affine,
                    "volume_shape": volume_shape,
                    "slice_axis": self.axis,
                    "slice_index": k,
                }
            )
            slices.append(out)
        return slices


class SliceVolumed(MapTransform):
    """Dictionary version of :class:`SliceVolume`: one input dict becomes a list of slice dicts.

    The first key decides which slices are kept (emptiness); all ``keys`` are cut at the same indices. Other entries
    are copied into every slice dict. A MONAI ``DataLoader`` (``list_data_collate``) flattens the lists into slices.

    Args:
        keys: volume keys (default ``"image"``).
        axis, slice_range, skip_empty, threshold: see :class:`SliceVolume`.
    """

    def __init__(
        self,
        keys: KeysCollection = Keys.IMAGE,
        axis: int = -1,
        slice_range: Sequence[int] | None = None,
        skip_empty: bool = True,
        threshold: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.slicer = SliceVolume(axis, slice_range, skip_empty, threshold)
        self.all_slices = SliceVolume(axis, slice_range, skip_empty=False)

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        if not keys:
            return [d]
        first = self.slicer(d[keys[0]])
        kept = [s.meta["slice_index"] for s in first]
        per_key = {keys[0]: first}
        for key in keys[1:]:
            by_index = {s.meta["slice_index"]: s for s in self.all_slices(d[key])}
            per_key[key] = [by_index[k] for k in kept]
        return [{**d, **{key: per_key[key][i] for key in keys}} for i in range(len(kept))]


def stack_slices(slices: Sequence[torch.Tensor], fill_value: float = 0.0) -> MetaTensor:
    """Rebuild a volume from slices made by :class:`SliceVolume` (possibly processed, e.g. reconstructed).

    Slices are placed at their ``slice_index`` along ``slice_axis``; skipped slices are filled with ``fill_value``.
    The result carries the original volume affine, so it can be saved next to the input scan.

    Args:
        slices: ``MetaTensor`` slices ``(C, H, W)`` of one volume, in any order, carrying the meta written by
            :class:`SliceVolume` (a network output keeps it when it is wrapped as ``MetaTensor(out, meta=x.meta)``).
        fill_value: value of the slices that are absent (skipped as empty).

    Returns:
        ``MetaTensor`` ``(C, X, Y, Z)`` with ``affine`` = the volume affine.

    Raises:
        ValueError: no slices, slices without slicing meta, or slices from different volumes.
    """
    if not slices:
        raise ValueError("slices: expected at least one slice, got none.")
    metas = []
    for i, s in enumerate(slices):
        if not isinstance(s, MetaTensor) or "slice_index" not in s.meta:
            raise ValueError(f"slices[{i}]: expected a MetaTensor made by SliceVolume (with 'slice_index' meta).")
        metas.append(s.meta)
    ref = metas[0]
    axis, shape = int(ref["slice_axis"]), tuple(int(v) for v in ref["volume_shape"])
    for i, m in enumerate(metas):
        if int(m["slice_axis"]) != axis or tuple(int(v) for v in m["volume_shape"]) != shape:
            raise ValueError(f"slices[{i}]: comes from a different volume or axis than slices[0].")
    channels = slices[0].shape[0]
    volume = torch.full((channels, *shape), fill_value, dtype=slices[0].dtype)
    for s, m in zip(slices, metas):
        volume.select(axis + 1, int(m["slice_index"])).copy_(s.as_tensor().to(volume.device))
    meta = {k: v for k, v in ref.items() if k not in ("slice_index", "slice_axis", "volume_affine", "volume_shape")}
    affine = torch.as_tensor(ref["volume_affine"], dtype=torch.float64)
    meta.update({"affine": affine, "original_affine": affine, "spatial_shape": np.asarray(shape)})
    return MetaTensor(volume, meta=meta)


class SliceDataset(Dataset):
    """Slice-level dataset over a list of volumes (NIfTI or anything MONAI ``LoadImaged`` reads).

    Each volume is loaded once (by ``volume_transform``, default ``LoadImaged`` + ``EnsureChannelFirstd`` on
    ``keys``), cut by :class:`SliceVolumed`, and kept in memory (``cache=True``) or reloaded on access. Item ``i`` is
    one slice dict, passed through ``transform``.

    Args:
        data: list of dicts ``{"image": path, ...}``.
        keys: volume keys to load and slice.
        axis, slice_range, skip_empty, threshold: see :class:`SliceVolume`.
        transform: applied to each slice dict.
        volume_transform: loads one data dict into channel-first volumes (override for custom readers).
        cache: keep the sliced volumes in memory.

    Example:
        >>> ds = SliceDataset([{"image": "brain.nii.gz"}], axis=2, slice_range=(40, 120))  # doctest: +SKIP
        >>> ds[0]["image"].shape  # (1, X, Y)  # doctest: +SKIP
    """

    def __init__(
        self,
        data: Sequence[Mapping[str, Any]],
        keys: KeysCollection = Keys.IMAGE,
        axis: int = -1,
        slice_range: Sequence[int] | None = None,
        skip_empty: bool = True,
        threshold: float = 0.0,
        transform: Callable | None = None,
        volume_transform: Callable | None = None,
        cache: bool = True,
    ) -> None:
        self.data = list(data)
        self.volume_transform = volume_transform or Compose(
            [LoadImaged(keys, image_only=True), EnsureChannelFirstd(keys)]
        )
        self.slicer = SliceVolumed(keys, axis, slice_range, skip_empty, threshold)
        self.transform = transform
        self.cache = cache
        self._cache: dict[int, list[dict]] = {}
        self.index: list[tuple[int, int]] = []
        for v in range(len(self.data)):
            sliced = self._slices(v)
            self.index.extend((v, j) for j in range(len(sliced)))
            if not cache:
                self._cache.clear()

    def _slices(self, v: int) -> list[dict]:
        if v not in self._cache:
            self._cache = self._cache if self.cache else {}
            try:
                volume = apply_transform(self.volume_transform, self.data[v])
            except Exception as e:  # MONAI wraps reader errors in RuntimeError; name the file and key
                key, path = next(((k, p) for k, p in self.data[v].items() if k in self.slicer.keys), (None, self.data[v]))
                root = e
                while root.__cause__ is not None:
                    root = root.__cause__
                reason = f"{type(root).__name__}: {root}".splitlines()[0][:300]
                raise DataFileError(path, key, "a volume LoadImaged can read", f"an error ({reason})") from e
            self._cache[v] = self.slicer(volume)
        return self._cache[v]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        v, j = self.index[i]
        item = dict(self._slices(v)[j])
        return apply_transform(self.transform, item) if self.transform is not None else item


def zoom_affine(scales: Sequence[float], axes: Sequence[int]) -> torch.Tensor:
    r"""The 4x4 voxel map (new voxel -> old voxel) of a resampling by ``scales`` along spatial ``axes``.

    A new voxel :math:`j` along an axis resampled by :math:`s` (old voxels per new voxel) covers old voxels
    :math:`[s j, s (j + 1))`, so its centre is the old position :math:`s j + (s - 1)/2`: the map has :math:`s` on the
    diagonal and :math:`(s - 1)/2` in the translation. ``affine @ zoom_affine(...)`` is the new grid's affine.

    Example:
        >>> zoom_affine([2.0], [0])[0].tolist()
        [2.0, 0.0, 0.0, 0.5]
    """
    m = torch.eye(4, dtype=torch.float64)
    for s, a in zip(scales, axes):
        m[a, a] = s
        m[a, 3] = (s - 1.0) / 2.0
    return m


def rescale_slice_meta(meta: Mapping[str, Any], scales: Sequence[float]) -> dict[str, Any]:
    """The meta of a :class:`SliceVolume` slice after its plane is resampled by ``scales`` (old pixels per new pixel).

    Updates the slice's ``affine`` / ``original_affine`` and ``spatial_shape``, and the volume's ``volume_affine`` and
    ``volume_shape`` (the in-plane axes shrink, the slicing axis is kept), so :func:`stack_slices` rebuilds the
    resampled volume at the scan's position.

    Args:
        meta: a slice's meta (with ``slice_axis``, ``affine``, ``volume_affine``, ``volume_shape``).
        scales: ``(row scale, column scale)``.

    Raises:
        ValueError: meta without the slicing keys.
    """
    missing = [k for k in ("slice_axis", "affine", "volume_affine", "volume_shape") if k not in meta]
    if missing:
        raise ValueError(f"meta: expected the slice geometry of SliceVolume, missing {missing}.")
    axis = int(meta["slice_axis"])
    plane_axes = [a for a in range(3) if a != axis]
    out = dict(meta)
    vol_affine = torch.as_tensor(meta["volume_affine"], dtype=torch.float64)
    out["volume_affine"] = vol_affine @ zoom_affine(scales, plane_axes)
    shape = list(int(v) for v in meta["volume_shape"])
    for s, a in zip(scales, plane_axes):
        shape[a] = int(round(shape[a] / s))
    out["volume_shape"] = tuple(shape)
    affine = torch.as_tensor(meta["affine"], dtype=torch.float64)
    out["affine"] = out["original_affine"] = affine @ zoom_affine(scales, [0, 1])
    out["spatial_shape"] = np.asarray(shape)[plane_axes]
    return out


class FitToGridd(MapTransform):
    """Fit a slice ``(1, h, w)`` to the reconstruction grid ``shape`` (area resampling), keeping its geometry.

    A slice already of ``shape`` passes unchanged. Otherwise it is resampled with area averaging (block means for
    integer factors), and its :class:`SliceVolume` meta is updated (:func:`rescale_slice_meta`) so the
    reconstruction is written with the right voxel size. When the original slice is exactly ``fine_factor`` times
    ``shape``, it is kept under ``fine_key`` for inverse-crime-free simulation.

    Args:
        keys: the image key.
        shape: ``(H, W)`` of the grid.
        fine_key: where to keep the original when it has the fine size (``None``: never).
        fine_factor: the simulation refinement (``upsample`` of :class:`~rim_monai.data.SimulateSinogramd`).

    Raises:
        ValueError: an image that is not a slice ``(1, H, W)``.

    Example:
        >>> out = FitToGridd(Keys.IMAGE, (2, 2))({Keys.IMAGE: torch.arange(16.0).reshape(1, 4, 4)})
        >>> out[Keys.IMAGE].tolist(), out[Keys.IMAGE_FINE].shape
        ([[[2.5, 4.5], [10.5, 12.5]]], torch.Size([1, 4, 4]))
    """

    def __init__(
        self, keys: KeysCollection, shape: Sequence[int], fine_key: str | None = Keys.IMAGE_FINE, fine_factor: int = 2
    ) -> None:
        super().__init__(keys)
        self.shape = tuple(int(s) for s in shape)
        self.fine_key, self.fine_factor = fine_key, int(fine_factor)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            if image.ndim != 3:
                raise ValueError(f"{key}: expected a slice (1, H, W), got shape {tuple(image.shape)}.")
            h, w = int(image.shape[-2]), int(image.shape[-1])
            if (h, w) == self.shape:
                continue
            if self.fine_key and (h, w) == (self.shape[0] * self.fine_factor, self.shape[1] * self.fine_factor):
                d[self.fine_key] = torch.as_tensor(image).float().clone()
            plain = image.as_tensor() if isinstance(image, MetaTensor) else torch.as_tensor(image)
            resized = F.interpolate(plain.float()[None], size=self.shape, mode="area")[0]
            meta = dict(image.meta) if isinstance(image, MetaTensor) else {}
            if "slice_axis" in meta:
                meta = rescale_slice_meta(meta, (h / self.shape[0], w / self.shape[1]))
            d[key] = MetaTensor(resized, meta=meta) if meta else resized
        return d

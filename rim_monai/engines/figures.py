"""Side-by-side figures of a bundle's reconstructions beside the classical baselines and the reference.

``python -m rim_monai.engines.figures --out docs/figure.png --reference REF --image LPD=a.nii.gz --image FBP=b.nii.gz``
draws one row per ``--reference`` (a NIfTI / DICOM scan in the images' unit, resampled to their grid by area
averaging, or ``ellipses:SEED:K`` for phantom ``K`` of the CT bundle's ellipse stream, in HU) with the reference and
each image, shown in a fixed grey-level window, each panel titled with its PSNR / SSIM against the reference (data
range = max − min of the reference slice, the CT protocol). Several rows: repeat ``--row`` groups
(``--row REF NAME=PATH NAME=PATH ...``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rim_monai.data.file_utils import atomic_write
from rim_monai.data.keys import Keys
from rim_monai.metrics import image_quality

__all__ = ["load_slice", "load_reference", "comparison_figure", "main"]


def load_slice(path: str | os.PathLike, index: int = 0) -> np.ndarray:
    """Slice ``index`` (last axis) of a NIfTI volume, or the image of a DICOM file, as float64 ``(H, W)``.

    Raises:
        ValueError: the file does not exist or the slice index is out of range.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: '{path}' does not exist.")
    if path.name.endswith(".dcm"):
        from rim_monai.data.dicom import read_dicom

        return np.asarray(read_dicom(path)[Keys.IMAGE][0], dtype=np.float64)
    import nibabel as nib

    volume = np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)
    volume = volume.reshape(*volume.shape[:2], -1)
    if not -volume.shape[-1] <= index < volume.shape[-1]:
        raise ValueError(f"index: {path} has {volume.shape[-1]} slices, got index {index}.")
    return volume[..., index]


def load_reference(spec: str, shape: Sequence[int], clip_min: float | None = -1000.0) -> np.ndarray:
    """The reference image of ``spec`` on a grid of ``shape`` (area resampling), values below ``clip_min`` raised.

    ``spec`` is a file (``path`` or ``path:slice``) or ``ellipses:SEED:K`` (phantom ``K`` of
    :class:`~rim_monai.data.EllipsePhantomDataset` with ``seed``, in HU as the CT bundle uses it).
    """
    if spec.startswith("ellipses:"):
        from rim_monai.data.phantoms import EllipsePhantomDataset, phantom_to_hu

        _, seed, k = spec.split(":")
        phantom = EllipsePhantomDataset(tuple(shape), seed=int(seed), supersample=2)[int(k)][Keys.IMAGE]
        image = phantom_to_hu(phantom)[0].double().numpy()
    else:
        path, _, index = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
        image = load_slice(path, int(index) if index else 0)
    if tuple(image.shape) != tuple(shape):
        image = F.interpolate(torch.from_numpy(image)[None, None], size=tuple(shape), mode="area")[0, 0].numpy()
    return np.maximum(image, clip_min) if clip_min is not None else image


def comparison_figure(
    rows: Sequence[tuple[np.ndarray, Mapping[str, np.ndarray]]],
    path: str | os.PathLike,
    window: tuple[float, float] | Sequence[tuple[float, float]] = (-160.0, 240.0),
    row_labels: Sequence[str] | None = None,
    dpi: int = 110,
) -> Path:
    """Write a PNG grid: each row is the reference then each named image, titled with PSNR / SSIM.

    Args:
        rows: ``(reference (H, W), {name: image (H, W)})`` per row (same names in every row).
        path: the PNG file (written atomically).
        window: grey-level window ``(low, high)`` (HU for CT), or one per row.
        row_labels: text left of each row.
        dpi: resolution.

    Returns:
        The path.

    Raises:
        ValueError: no rows, or an image whose shape differs from its reference.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("rows: expected at least one (reference, images) row, got none.")
    ncols = 1 + max(len(images) for _, images in rows)
    windows = [tuple(window)] * len(rows) if np.ndim(window) == 1 else [tuple(w) for w in window]
    if len(windows) != len(rows):
        raise ValueError(f"window: expected one (low, high) or one per row ({len(rows)}), got {len(windows)}.")
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.6 * ncols, 2.8 * len(rows)), squeeze=False)
    for r, (reference, images) in enumerate(rows):
        ref_t = torch.as_tensor(np.asarray(reference, dtype=np.float64))[None, None]
        panels = [("reference", reference, "")]
        for name, image in images.items():
            if tuple(np.shape(image)) != tuple(np.shape(reference)):
                raise ValueError(f"images[{name!r}]: shape {np.shape(image)} differs from the reference {np.shape(reference)}.")
            x = torch.as_tensor(np.asarray(image, dtype=np.float64))[None, None]
            values = image_quality(x, ref_t, metrics=("psnr", "ssim"))
            score = f"{float(values['psnr']):.2f} dB / {float(values['ssim']):.3f}"
            panels.append((name, image, score))
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(panels):
                name, image, score = panels[c]
                ax.imshow(np.asarray(image), cmap="gray", vmin=windows[r][0], vmax=windows[r][1])
                ax.set_title(f"{name}\n{score}" if score else name, fontsize=9)
        if row_labels is not None:
            axes[r][0].text(-0.05, 0.5, row_labels[r], rotation=90, va="center", ha="right",
                            transform=axes[r][0].transAxes, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, overwrite=True) as tmp:
        fig.savefig(str(tmp), dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--row", nargs="+", action="append", required=True, metavar="ITEM",
                        help="REFERENCE NAME=PATH[:SLICE] ... (repeat for more rows)")
    parser.add_argument("--label", action="append", default=None, help="row label (one per --row)")
    parser.add_argument("--window", nargs=2, type=float, action="append", default=None,
                        help="grey-level window LOW HIGH (once, or once per --row; default -160 240)")
    parser.add_argument("--clip_min", type=float, default=-1000.0, help="raise reference values below this")
    args = parser.parse_args(argv)
    rows = []
    for spec in args.row:
        images = {}
        for item in spec[1:]:
            name, _, where = item.partition("=")
            path, _, index = where.partition(":") if not Path(where).is_file() else (where, "", "")
            images[name] = load_slice(path, int(index) if index else 0)
        shape = next(iter(images.values())).shape
        rows.append((load_reference(spec[0], shape, args.clip_min), images))
    windows = args.window or [(-160.0, 240.0)]
    windows = windows * len(rows) if len(windows) == 1 else windows
    print(comparison_figure(rows, args.out, windows, args.label))


if __name__ == "__main__":
    main()

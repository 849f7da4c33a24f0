"""Ignite handlers for reconstruction workflows: slices back into volumes, metrics beside the baselines, timing.

A bundle's evaluator runs the network slice by slice. :class:`ReconstructionSaver` collects every slice's output
(and the reference, and the classical baselines recomputed on the same measurements), rebuilds one volume per
input scan, writes it as NIfTI with the scan's own affine (volumes read from NIfTI, DICOM slices) or slices stacked
along the last axis (fastMRI HDF5, which carries no affine), scores each volume with the fastMRI protocol (data range =
the reference volume's maximum) and writes a CSV with the learned result and the baselines side by side. As in
fastMRI, images larger than the reference (k-space with readout oversampling, e.g. 640x368 against a 320x320
``reconstruction_rss``) are centre-cropped to it, or to the slice's ``recon_size`` when there is no reference.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor, decollate_batch

from rim_monai.data.fastmri import center_crop
from rim_monai.data.file_utils import atomic_write
from rim_monai.data.keys import Keys
from rim_monai.data.slicing import stack_slices
from rim_monai.engines.tables import format_table
from rim_monai.metrics import image_quality, magnitude

__all__ = ["ReconstructionSaver"]

logger = logging.getLogger(__name__)

Baseline = Callable[[torch.Tensor, Any], torch.Tensor]


def _magnitude(x: torch.Tensor) -> torch.Tensor:
    """The magnitude image kept for writing and scoring: float32 on the CPU."""
    return magnitude(x).float().cpu()


def _crop_size(images: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> tuple[int, int] | None:
    """The fastMRI crop of a batch's images: the reference's ``(h, w)``, else the batch's ``recon_size``; ``None`` when
    the images are not larger than it."""
    height, width = images["recon"].shape[-2:]
    if "reference" in images:
        size = tuple(int(v) for v in images["reference"].shape[-2:])
    elif batch.get("recon_size") is not None:
        recon = batch["recon_size"]  # collated: ((h, ...), (w, ...)) tensors, or one (h, w) pair
        size = tuple(int(torch.as_tensor(v).reshape(-1)[0]) for v in recon)
    else:
        return None
    if size == (height, width) or size[0] > height or size[1] > width:
        return None
    return size


class ReconstructionSaver:
    """Collect per-slice reconstructions of an evaluator, write volumes and per-volume metrics.

    Args:
        output_dir: where ``<scan>_recon.nii.gz`` (and ``<scan>_<baseline>.nii.gz``), ``metrics.csv`` and
            ``metrics.md`` are written.
        prepare_batch: the evaluator's :class:`~rim_monai.engines.PrepareMeasurementBatch`; needed to recompute
            the baselines on the same ``(y, A)``.
        baselines: ``{name: f(y, A) -> image}`` classical reconstructions shown beside the network.
        save_images: write NIfTI volumes (the metrics are written in any case when a reference exists).
        save_baselines: also write the baselines' volumes (and the reference's, for figures side by side).
        overwrite: replace existing outputs (otherwise an existing file raises ``FileExistsError``).
        name_key: batch key holding the scan's file name (falls back to the reference's / image's meta).
        slice_key: batch key holding the slice index (falls back to the ``slice_index`` meta of a NIfTI slice).
        protocol: data-range protocol of PSNR/SSIM (:func:`rim_monai.metrics.psnr`): ``"volume"`` (fastMRI: max of the
            reference volume, the MRI default) or ``"per_image"`` (max − min of each reference slice, the CT protocol).

    Attributes:
        rows: the per-volume metric rows of the last run (``file``, ``method``, ``psnr``, ``ssim``, ``nmse``,
            ``seconds_per_slice``).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        prepare_batch: Any = None,
        baselines: Mapping[str, Baseline] | None = None,
        save_images: bool = True,
        save_baselines: bool = False,
        overwrite: bool = True,
        name_key: str = Keys.FILENAME,
        slice_key: str = Keys.SLICE,
        protocol: str = "volume",
        align_scale: bool = False,
    ) -> None:
        if baselines and prepare_batch is None:
            raise ValueError("prepare_batch: needed to recompute the baselines on the evaluator's inputs, got None.")
        self.output_dir = Path(output_dir)
        self.prepare_batch = prepare_batch
        self.baselines = dict(baselines or {})
        self.save_images, self.save_baselines, self.overwrite = save_images, save_baselines, overwrite
        self.name_key, self.slice_key = name_key, slice_key
        if protocol not in ("volume", "per_image"):
            raise ValueError(f"protocol: expected 'volume' or 'per_image', got '{protocol}'.")
        self.protocol = protocol
        self.align_scale = align_scale
        self.rows: list[dict[str, Any]] = []
        self._reset()

    def _reset(self, engine: Any = None) -> None:
        self._slices: dict[str, list[tuple[int, dict[str, torch.Tensor], dict | None]]] = defaultdict(list)
        self._seconds: dict[str, float] = defaultdict(float)
        self._started = 0.0

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_STARTED, self._start_clock)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _start_clock(self, engine: Any) -> None:
        self._started = time.perf_counter()

    # ------------------------------------------------------------------ collecting
    def _collect(self, engine: Any) -> None:
        seconds = time.perf_counter() - self._started  # data moved + operator built + network forward
        batch, output = engine.state.batch, engine.state.output
        images = {"recon": _magnitude(output[Keys.PRED])}
        if output.get(Keys.LABEL) is not None:
            images["reference"] = _magnitude(output[Keys.LABEL])
        if self.baselines:
            y, _, (operator,), _ = self.prepare_batch(batch, engine.state.device)
            with torch.no_grad():
                for name, method in self.baselines.items():
                    images[name] = _magnitude(method(y, operator))
        crop = _crop_size(images, batch)
        if crop is not None:
            images = {k: center_crop(v, crop) for k, v in images.items()}
        items = decollate_batch(batch, detach=True)
        for i, item in enumerate(items):
            name, index, meta = self._identify(item, i)
            self._slices[name].append((index, {k: v[i] for k, v in images.items()}, meta))
            self._seconds[name] += seconds / len(items)

    def _identify(self, item: Mapping[str, Any], i: int) -> tuple[str, int, dict | None]:
        meta = None
        for key in (Keys.TARGET, Keys.IMAGE):
            value = item.get(key)
            if isinstance(value, MetaTensor) and "slice_index" in value.meta:
                meta = dict(value.meta)
                break
        name = item.get(self.name_key)
        if name is None and meta is not None:
            name = meta.get("filename_or_obj")
        if name is None:
            name = f"scan{i}"
        index = item.get(self.slice_key)
        if index is None and meta is not None:
            index = meta["slice_index"]
        return str(name), int(index if index is not None else 0), meta

    # ------------------------------------------------------------------ writing
    def _volume(self, slices: list[tuple[int, dict, dict | None]], key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y, Z)`` array and its affine for image ``key`` of one scan."""
        slices = sorted(slices, key=lambda s: s[0])
        if slices[0][2] is not None:
            volume = stack_slices([MetaTensor(images[key], meta=meta) for _, images, meta in slices])
            return volume[0].numpy(), np.asarray(volume.affine, dtype=np.float64)
        stacked = torch.stack([images[key][0] for _, images, _ in slices], dim=-1)  # (H, W, S)
        return stacked.numpy(), np.eye(4)

    def _save(self, array: np.ndarray, affine: np.ndarray, path: Path) -> None:
        with atomic_write(path, overwrite=self.overwrite) as tmp:
            nib.save(nib.Nifti1Image(array.astype(np.float32), affine), str(tmp))

    def _write(self, engine: Any = None) -> list[dict[str, Any]]:
        self.rows = []
        methods = ["recon"] + list(self.baselines)
        for name, slices in self._slices.items():
            stem = Path(name).name
            for suffix in (".nii.gz", ".nii", ".h5", ".hdf5", ".dcm"):
                if stem.endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            if self.save_images:
                keys = methods + (["reference"] if "reference" in slices[0][1] else []) if self.save_baselines else ["recon"]
                for key in keys:
                    self._save(*self._volume(slices, key), self.output_dir / f"{stem}_{key}.nii.gz")
            seconds = self._seconds[name] / len(slices)
            if "reference" not in slices[0][1]:
                self.rows.append({"file": stem, "method": "recon", "seconds_per_slice": seconds})
                continue
            ordered = sorted(slices, key=lambda s: s[0])
            reference = torch.stack([images["reference"][0] for _, images, _ in ordered])  # (S, H, W)
            if self.protocol == "volume":
                reference = reference[None]  # one sample: the whole volume
            for key in methods:
                estimate = torch.stack([images[key][0] for _, images, _ in ordered])
                if self.align_scale:
                    estimate = estimate * (estimate * reference).sum() / (estimate * estimate).sum().clamp_min(1e-30)
                estimate = estimate[None] if self.protocol == "volume" else estimate
                scores = image_quality(estimate, reference, self.protocol)
                self.rows.append({"file": stem, "method": key, **{k: float(v) for k, v in scores.items()},
                                  "seconds_per_slice": seconds if key == "recon" else float("nan")})
        if self.rows:
            self._write_metrics()
        return self.rows

    def _write_metrics(self) -> None:
        columns = [c for c in ("file", "method", "psnr", "ssim", "nmse", "seconds_per_slice") if c in self.rows[0]]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        with atomic_write(self.output_dir / "metrics.csv", overwrite=True) as tmp:
            tmp.write_text(buffer.getvalue())
        table = format_table(self.rows, columns)
        with atomic_write(self.output_dir / "metrics.md", overwrite=True) as tmp:
            tmp.write_text(table + "\n")
        protocol = {"volume": "data range = max of the reference volume (fastMRI)",
                    "per_image": "data range = max - min of each reference slice, mean over slices"}[self.protocol]
        if self.align_scale:
            protocol += "; each method least-squares scaled onto the reference first"
        print(f"\nReconstructions in {self.output_dir} ({protocol})\n{table}")

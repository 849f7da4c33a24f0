r"""Helsinki Tomography Challenge 2022 (HTC 2022) limited-angle fan-beam sinograms: reader and matching operator.

Each HTC file is a MATLAB struct ``CtDataLimited`` with a log-transformed sinogram ``(views, 560)`` (line integrals of
the attenuation, mm⁻¹ · mm) and ``parameters``: source-to-origin and source-to-detector distances (mm), the view
angles in degrees (0.5° steps), and the binned detector (560 bins of ``pixelSizePost`` = 0.2 mm on the detector). Some
files are MATLAB v7.3 (HDF5; read with ``h5py`` and transposed), the others v5 (``scipy.io.loadmat``).

:func:`htc2022_operator` builds the :class:`~rim_monai.operators.RayTransform` of one file: a flat-detector fan beam
with the file's distances, its angles as a uniform arc (``angle_offset`` = first angle − half a step), an image grid of
``image_shape`` pixels of ``pixel_mm`` mm (lengths in mm, so ``A(mu)`` is in the sinogram's unit) and the detector
optionally binned by ``detector_binning`` (:func:`bin_detectors` averages neighbouring bins to match).

Example:
    >>> record = read_htc2022("htc2022_limited_angle/90/tb_subsample_90.mat")      # doctest: +SKIP
    >>> A = htc2022_operator(record, image_shape=(256, 256), pixel_mm=0.3, detector_binning=2)  # doctest: +SKIP
    >>> y = bin_detectors(record["sinogram"], 2)[None, None]                        # (1, 1, 181, 280)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rim_monai.data.file_utils import DataFileError
from rim_monai.data.keys import Keys

__all__ = ["read_htc2022", "bin_detectors", "htc2022_operator", "HTC_STRUCT"]

#: name of the MATLAB struct in every HTC 2022 file
HTC_STRUCT = "CtDataLimited"
_NUMERIC = ("distanceSourceOrigin", "distanceSourceDetector", "pixelSizePost", "numDetectorsPost",
            "effectivePixelSizePost", "geometricMagnification")


def _read_v73(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import h5py

    with h5py.File(path, "r") as f:
        if HTC_STRUCT not in f:
            raise DataFileError(path, HTC_STRUCT, "the HTC 2022 MATLAB struct", f"the keys {sorted(f.keys())}")
        group = f[HTC_STRUCT]
        sinogram = np.asarray(group["sinogram"], dtype=np.float32).T  # MATLAB column-major
        params: dict[str, Any] = {}
        for name, item in group["parameters"].items():
            if isinstance(item, h5py.Dataset) and np.issubdtype(item.dtype, np.number):
                params[name] = np.asarray(item).squeeze()
    return sinogram, params


def _read_v5(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    from scipy.io import loadmat

    content = loadmat(path, squeeze_me=True, struct_as_record=False)
    if HTC_STRUCT not in content:
        found = sorted(k for k in content if not k.startswith("__"))
        raise DataFileError(path, HTC_STRUCT, "the HTC 2022 MATLAB struct", f"the variables {found}")
    struct = content[HTC_STRUCT]
    params = {name: getattr(struct.parameters, name) for name in struct.parameters._fieldnames}
    return np.asarray(struct.sinogram, dtype=np.float32), params


def read_htc2022(path: str | os.PathLike) -> dict[str, Any]:
    """Read one HTC 2022 ``.mat`` file (v5 or v7.3).

    Returns:
        ``{"sinogram": float32 tensor (views, detectors), "angles_deg": float64 array (views,),
        "src_radius": mm, "det_radius": mm (origin to detector), "detector_spacing": mm, "path": str,
        "parameters": the numeric parameters}``.

    Raises:
        DataFileError: naming the file when it is missing, not a MATLAB file, lacks ``CtDataLimited``, or its angles
            and sinogram disagree.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, None, "an HTC 2022 .mat file", "no such file")
    import h5py

    try:
        sinogram, params = _read_v73(path) if h5py.is_hdf5(path) else _read_v5(path)
    except DataFileError:
        raise
    except Exception as err:  # scipy / h5py parse errors
        raise DataFileError(path, None, "a MATLAB v5 or v7.3 file", f"{type(err).__name__}: {err}") from err
    missing = [k for k in ("angles", "distanceSourceOrigin", "distanceSourceDetector", "pixelSizePost") if k not in params]
    if missing:
        raise DataFileError(path, f"{HTC_STRUCT}.parameters", f"the fields {missing}", "them missing")
    angles = np.atleast_1d(np.asarray(params["angles"], dtype=np.float64)).ravel()
    if sinogram.ndim != 2 or sinogram.shape[0] != angles.size:
        raise DataFileError(path, f"{HTC_STRUCT}.sinogram", f"a sinogram of shape (views={angles.size}, detectors)",
                            f"shape {sinogram.shape}")
    dso, dsd = float(params["distanceSourceOrigin"]), float(params["distanceSourceDetector"])
    return {
        Keys.SINOGRAM: torch.from_numpy(np.ascontiguousarray(sinogram)),
        "angles_deg": angles,
        "src_radius": dso,
        "det_radius": dsd - dso,
        "detector_spacing": float(params["pixelSizePost"]),
        "path": str(path),
        "parameters": {k: float(np.asarray(params[k])) for k in _NUMERIC if k in params},
    }


def bin_detectors(sinogram: torch.Tensor, factor: int) -> torch.Tensor:
    """Average groups of ``factor`` neighbouring detector bins (last axis); a trailing remainder is dropped.

    Raises:
        ValueError: ``factor`` < 1.
    """
    if int(factor) < 1:
        raise ValueError(f"factor: expected a positive integer, got {factor}.")
    factor = int(factor)
    n = sinogram.shape[-1] // factor * factor
    return sinogram[..., :n].reshape(*sinogram.shape[:-1], n // factor, factor).mean(-1)


def htc2022_operator(record: dict[str, Any], image_shape: Sequence[int] = (256, 256), pixel_mm: float = 0.3,
                     detector_binning: int = 2, detector_shift_mm: float = 0.0, backend: str = "auto"):
    r"""The fan-beam :class:`~rim_monai.operators.RayTransform` of one HTC record (lengths in mm).

    The HTC files follow the HelTomo / ASTRA ``fanflat`` convention. An ASTRA view angle :math:`\varphi` is this
    package's (ODL's) fan-beam angle :math:`\varphi + \pi/2` with the same detector direction and image orientation
    (checked against ASTRA's ``line_fanflat`` projector to 5e-6 relative in ``tests/data/test_htc.py``), so the
    operator's views are ``angle_offset + (k + 1/2)·step`` with ``angle_offset`` = first angle + π/2 − step/2 and
    ``step`` = the files' 0.5°.

    Args:
        record: from :func:`read_htc2022`.
        image_shape: reconstruction grid in pixels.
        pixel_mm: pixel side in mm (the HTC discs are 70 mm across; the detector sees about 83 mm at the origin).
        detector_binning: bins averaged by :func:`bin_detectors` (the sinogram must be binned the same way).
        detector_shift_mm: lateral detector offset in mm (centre-of-rotation correction).
        backend: :class:`~rim_monai.operators.RayTransform` backend.

    Raises:
        ValueError: angles that are not uniformly increasing, or a bad ``detector_binning``.
    """
    from rim_monai.operators import RayTransform

    angles = np.deg2rad(np.asarray(record["angles_deg"], dtype=np.float64))
    step = float(angles[1] - angles[0]) if angles.size > 1 else 0.0
    if not step > 0 or not np.allclose(np.diff(angles), step, atol=1e-6):
        raise ValueError(f"record: {record.get('path')}: expected uniformly increasing angles, got {angles.size} views "
                         f"from {record['angles_deg'][0]} to {record['angles_deg'][-1]} degrees.")
    if int(detector_binning) < 1:
        raise ValueError(f"detector_binning: expected a positive integer, got {detector_binning}.")
    return RayTransform(
        tuple(int(s) for s in image_shape), num_angles=angles.size, geometry="fan", arc=step * angles.size,
        num_detectors=record[Keys.SINOGRAM].shape[-1] // int(detector_binning),
        detector_spacing=record["detector_spacing"] * int(detector_binning), pixel_size=float(pixel_mm),
        src_radius=record["src_radius"], det_radius=record["det_radius"],
        angle_offset=float(angles[0]) + math.pi / 2 - step / 2, detector_shift=float(detector_shift_mm), backend=backend)

"""HTC 2022 reader and operator: MATLAB v5 / v7.3 files written to tmp_path, the ASTRA angle convention, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from rim_monai.data.file_utils import DataFileError
from rim_monai.data.htc import bin_detectors, htc2022_operator, read_htc2022

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ct" / "htc2022_limited_angle"
PARAMS = {"distanceSourceOrigin": 410.66, "distanceSourceDetector": 553.74, "pixelSizePost": 0.2,
          "numDetectorsPost": 40.0, "geometricMagnification": 1.348414746992646}


def _sinogram(views: int = 9, detectors: int = 40) -> np.ndarray:
    return np.random.default_rng(0).random((views, detectors)).astype(np.float32)


def write_v5(path: Path, sinogram: np.ndarray, angles: np.ndarray, struct: str = "CtDataLimited") -> None:
    from scipy.io import savemat

    savemat(path, {struct: {"sinogram": sinogram, "type": "limited",
                            "parameters": {**PARAMS, "angles": angles, "projectName": "test"}}})


def write_v73(path: Path, sinogram: np.ndarray, angles: np.ndarray) -> None:
    """The layout MATLAB v7.3 writes: HDF5, column-major arrays stored transposed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        group = f.create_group("CtDataLimited")
        group.create_dataset("sinogram", data=sinogram.T)
        params = group.create_group("parameters")
        for key, value in PARAMS.items():
            params.create_dataset(key, data=np.array([[value]]))
        params.create_dataset("angles", data=angles[None, :])


@pytest.mark.parametrize("writer", [write_v5, write_v73])
def test_reader_round_trips_both_matlab_formats(tmp_path, writer):
    sino, angles = _sinogram(), 42.0 + 0.5 * np.arange(9)
    writer(tmp_path / "scan.mat", sino, angles)
    record = read_htc2022(tmp_path / "scan.mat")
    assert torch.equal(record["sinogram"], torch.from_numpy(sino))
    np.testing.assert_allclose(record["angles_deg"], angles)
    assert record["src_radius"] == pytest.approx(410.66)
    assert record["det_radius"] == pytest.approx(553.74 - 410.66)
    assert record["detector_spacing"] == pytest.approx(0.2)


def test_reader_names_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(DataFileError, match=r"missing\.mat.*no such file"):
        read_htc2022(tmp_path / "missing.mat")
    write_v5(tmp_path / "other.mat", _sinogram(), 42.0 + 0.5 * np.arange(9), struct="CtData")
    with pytest.raises(DataFileError, match=r"other\.mat.*CtDataLimited.*CtData"):
        read_htc2022(tmp_path / "other.mat")
    write_v5(tmp_path / "short.mat", _sinogram(views=9), 42.0 + 0.5 * np.arange(8))
    with pytest.raises(DataFileError, match=r"short\.mat.*views=8"):
        read_htc2022(tmp_path / "short.mat")
    (tmp_path / "text.mat").write_text("not a MATLAB file")
    with pytest.raises(DataFileError, match=r"text\.mat"):
        read_htc2022(tmp_path / "text.mat")


def test_bin_detectors_averages_and_checks_factor():
    sino = torch.arange(10.0).reshape(1, 10)
    assert torch.equal(bin_detectors(sino, 2), torch.tensor([[0.5, 2.5, 4.5, 6.5, 8.5]]))
    assert bin_detectors(sino, 3).shape == (1, 3)  # remainder dropped
    with pytest.raises(ValueError, match="factor"):
        bin_detectors(sino, 0)


def test_operator_matches_astra_fanflat_convention():
    """The HelTomo geometry (ASTRA ``fanflat``, angles as in the file) equals ``htc2022_operator``'s."""
    astra = pytest.importorskip("astra")
    n, det, spacing = 48, 60, 0.2
    angles_deg = 75.0 + 0.5 * np.arange(31)
    record = {"sinogram": torch.zeros(31, det), "angles_deg": angles_deg, "src_radius": 410.66,
              "det_radius": 143.08, "detector_spacing": spacing, "path": "synthetic"}
    pixel = 0.6
    A = htc2022_operator(record, (n, n), pixel_mm=pixel, detector_binning=1, backend="matrix")
    image = np.zeros((n, n), np.float32)
    image[5:15, 10:20], image[30:40, 25:45] = 1.0, 0.5  # no symmetry: a flip or a rotation would show
    vol = astra.create_vol_geom(n, n)
    proj = astra.create_proj_geom("fanflat", spacing / pixel, det, np.deg2rad(angles_deg), 410.66 / pixel,
                                  143.08 / pixel)
    projector = astra.create_projector("line_fanflat", proj, vol)
    try:
        sid, expected = astra.create_sino(image, projector)
        astra.data2d.delete(sid)
    finally:
        astra.projector.delete(projector)
    got = A(torch.from_numpy(image)[None, None])[0, 0] / pixel  # ASTRA measures lengths in pixels
    rel = float((got - torch.from_numpy(expected)).norm() / np.linalg.norm(expected))
    assert rel < 1e-4


def test_operator_rejects_irregular_angles_and_bad_binning():
    record = {"sinogram": torch.zeros(3, 40), "angles_deg": np.array([0.0, 0.5, 1.5]), "src_radius": 410.66,
              "det_radius": 143.08, "detector_spacing": 0.2, "path": "irregular.mat"}
    with pytest.raises(ValueError, match=r"irregular\.mat.*uniformly"):
        htc2022_operator(record, (16, 16))
    record["angles_deg"] = np.array([0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="detector_binning"):
        htc2022_operator(record, (16, 16), detector_binning=0)
    A = htc2022_operator(record, (16, 16), detector_binning=2, backend="matrix")
    assert A.range_shape == (3, 20)
    assert A.arc == pytest.approx(math.radians(1.5))


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not available")
def test_real_files_read_and_fit_their_operator():
    """Every shared HTC file reads; the 90° scan's FBP is brighter inside the 70 mm disc than outside it.

    Limited-angle FBP streaks reach outside the disc (about half the inside level), so the bound is loose: it catches
    a wrong scale of the geometry (pixel size, distances), not a subtle error.
    """
    files = sorted(DATA.glob("*/*.mat"))
    assert len(files) >= 11
    for path in files:
        record = read_htc2022(path)
        assert record["sinogram"].shape == (len(record["angles_deg"]), 560)
    record = read_htc2022(DATA / "90" / "tb_subsample_90.mat")
    A = htc2022_operator(record, (128, 128), pixel_mm=0.6, detector_binning=4, backend="matrix")
    y = bin_detectors(record["sinogram"], 4)[None, None]
    x = A.fbp(y, filter="hann")[0, 0]
    yy, xx = torch.meshgrid(torch.arange(128.0) - 63.5, torch.arange(128.0) - 63.5, indexing="ij")
    outside = (yy**2 + xx**2).sqrt() * 0.6 > 40.0  # beyond the disc's 35 mm radius plus a margin
    assert float(x[outside].abs().mean()) < 0.6 * float(x[~outside].mean())

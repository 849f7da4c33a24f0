"""Both bundles' inference on a folder of good, corrupt and NaN scans: ``--on_error skip`` and the default."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.bundles.helpers import REPO, run_bundle

BUNDLES = {"mri_rim_recon": ["--slice_range", "[0,2]"], "ct_lpd_recon": ["--slice_range", "[0,1]"]}


def _folder(root: Path) -> Path:
    """good_a / good_z (NIfTI), truncated, garbage and one-NaN-voxel scans."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(-1, 1, 48), np.linspace(-1, 1, 48), indexing="ij")
    head = ((x / 0.8) ** 2 + (y / 0.9) ** 2 < 1).astype(np.float32)
    volume = np.stack([head * (0.5 + 0.5 * rng.random((48, 48))) for _ in range(3)], axis=-1).astype(np.float32) * 100
    root.mkdir()
    for name in ("good_a.nii.gz", "good_z.nii.gz"):
        nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 2.0, 1.0])), str(root / name))
    data = (root / "good_a.nii.gz").read_bytes()
    (root / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    (root / "garbage.nii.gz").write_bytes(os.urandom(2000))
    nan = volume.copy()
    nan[10, 20, 1] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), str(root / "nan.nii.gz"))
    return root


@pytest.mark.parametrize("bundle", sorted(BUNDLES))
def test_skip_reconstructs_the_good_scans_and_lists_the_bad_ones(tmp_path, bundle):
    folder, out = _folder(tmp_path / "scans"), tmp_path / "out"
    configs = [REPO / "bundles" / bundle / "configs" / "inference.json"]
    run_bundle(configs, "--dataset_dir", str(folder), "--output_dir", str(out), "--on_error", "skip", *BUNDLES[bundle])
    assert sorted(p.name for p in out.glob("*_recon.nii.gz")) == ["good_a_recon.nii.gz", "good_z_recon.nii.gz"]
    rows = list(csv.DictReader((out / "errors.csv").open()))
    assert sorted(Path(r["file"]).name for r in rows) == ["garbage.nii.gz", "nan.nii.gz", "truncated.nii.gz"]
    assert next(r for r in rows if "nan" in r["file"])["message"].endswith("found 1 NaN/Inf value(s).")
    assert not [p for p in out.iterdir() if p.name.startswith(("nan", "truncated", "garbage"))]


def test_raise_fails_with_a_line_naming_the_bad_file_before_the_traceback(tmp_path):
    folder, out = _folder(tmp_path / "scans"), tmp_path / "out"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
           str(REPO / "bundles" / "mri_rim_recon" / "configs" / "inference.json"),
           "--dataset_dir", str(folder), "--output_dir", str(out), "--slice_range", "[0,2]"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("ERROR "))
    assert "garbage.nii.gz: read failed:" in lines[error]  # the first bad file in sorted order
    assert error < next(i for i, line in enumerate(lines) if line.startswith("Traceback"))
    assert not out.exists() or not list(out.glob("*_recon.nii.gz"))

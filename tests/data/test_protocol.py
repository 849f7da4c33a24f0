"""The shared protocol base: what a modality must define, and what it gets (pipeline, call, scans, datasets)."""

from __future__ import annotations

import pytest
import torch
from monai.transforms import Compose, CopyItemsd, DeleteItemsd, RandGaussianNoised

from rim_monai.data import AcquisitionProtocol, Keys, ScanFormat
from rim_monai.operators import Identity


class Toy(AcquisitionProtocol):
    """The smallest protocol: y = x + noise, with a helper entry the items must not carry."""

    helper_keys = ("scratch",)

    def simulation(self):
        return Compose([CopyItemsd(Keys.IMAGE, times=3, names=[Keys.TARGET, Keys.MEASUREMENT, "scratch"]),
                        RandGaussianNoised(Keys.MEASUREMENT, prob=1.0, std=0.1, sample_std=False)])

    def operator_for(self, batch, device=None):
        return Identity(tuple(batch[Keys.MEASUREMENT].shape[-2:]))


def test_a_protocol_must_define_simulation_and_operator():
    with pytest.raises(TypeError):
        AcquisitionProtocol()  # abstract


def test_pipeline_appends_delete_items_and_call_is_seeded():
    protocol = Toy(seed=1)
    pipeline = protocol.pipeline()
    assert isinstance(pipeline, Compose) and isinstance(pipeline.transforms[-1], DeleteItemsd)
    item = pipeline({Keys.IMAGE: torch.zeros(1, 4, 4)})
    assert "scratch" not in item and Keys.MEASUREMENT in item
    y1, A = protocol(torch.zeros(4, 4))
    y2, _ = Toy(seed=1)(torch.zeros(4, 4))
    torch.testing.assert_close(y1, y2)
    assert y1.shape == (1, 1, 4, 4) and A.domain_shape == (4, 4)
    with pytest.raises(ValueError, match="image: expected a 2D"):
        protocol(torch.zeros(1, 4, 4))


def test_unknown_formats_have_no_reader(tmp_path):
    class WithFormat(Toy):
        formats = {"raw": ScanFormat((".raw",), "raw files")}

    (tmp_path / "a.raw").write_bytes(b"")
    with pytest.raises(ValueError, match="fmt: .*'raw'"):
        WithFormat().reconstruction_dataset(tmp_path)
    with pytest.raises(ValueError, match="no raw files"):
        WithFormat().reconstruction_dataset(tmp_path / "a.raw", files=[])


def _bad_scan_folder(root):
    """A folder of two good NIfTI volumes, one truncated, one not gzip at all and one with a single NaN voxel."""
    import nibabel as nib
    import numpy as np

    root.mkdir(exist_ok=True)
    volume = np.random.default_rng(0).random((16, 16, 2)).astype(np.float32)  # incompressible: truncation hits voxels
    for name in ("a_good.nii.gz", "e_good.nii.gz"):
        nib.save(nib.Nifti1Image(volume, np.eye(4)), str(root / name))
    data = (root / "a_good.nii.gz").read_bytes()
    (root / "b_truncated.nii.gz").write_bytes(data[: len(data) // 2])
    (root / "c_garbage.nii.gz").write_bytes(b"not a NIfTI volume" * 10)
    nan = volume.copy()
    nan[3, 4, 1] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), str(root / "d_nan.nii.gz"))
    return root


def test_on_error_skip_keeps_the_good_scans_and_lists_the_bad_ones(tmp_path, capsys):
    folder = _bad_scan_folder(tmp_path / "scans")
    out = tmp_path / "out"
    out.mkdir()
    dataset = Toy().reconstruction_dataset(folder, on_error="skip", output_dir=out)
    assert len(dataset) == 4  # two good volumes of two slices each
    import csv

    rows = list(csv.DictReader((out / "errors.csv").open()))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["b_truncated.nii.gz", "c_garbage.nii.gz", "d_nan.nii.gz"]
    assert {r["stage"] for r in rows} == {"read"}
    assert "EOFError" in rows[0]["message"] and "gzip" in rows[1]["message"]
    assert "found 1 NaN/Inf value(s)" in rows[2]["message"]  # counted on the voxels as stored
    assert "skipped 3 bad scan(s) of 5" in capsys.readouterr().err
    # a clean second run removes the stale list
    Toy().reconstruction_dataset(files=[folder / "a_good.nii.gz"], on_error="skip", output_dir=out)
    assert not (out / "errors.csv").exists()


def test_on_error_raise_names_the_first_bad_file_in_one_line(tmp_path, capsys):
    from rim_monai.data import DataFileError

    folder = _bad_scan_folder(tmp_path / "scans")
    with pytest.raises(DataFileError, match="b_truncated.nii.gz"):
        Toy().reconstruction_dataset(folder)
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("ERROR ") and "b_truncated.nii.gz: read failed:" in first and "EOFError" in first


def test_on_error_skip_fails_when_every_scan_is_bad_and_needs_an_output_dir(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "x.nii.gz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="every scan failed"):
        Toy().reconstruction_dataset(folder, on_error="skip", output_dir=tmp_path)
    with pytest.raises(ValueError, match="output_dir"):
        Toy().reconstruction_dataset(folder, on_error="skip")
    with pytest.raises(ValueError, match="on_error"):
        Toy().reconstruction_dataset(folder, on_error="ignore")

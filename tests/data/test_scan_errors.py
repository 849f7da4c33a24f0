"""on_error policy: one clear line then raise, or skip and list the bad scans in errors.csv."""

from __future__ import annotations

import csv
import io

import pytest

from rim_monai.data import DataFileError
from rim_monai.data.scan_errors import ScanErrors, scan_errors


def _bad():
    raise DataFileError("/data/b.nii.gz", "image", "finite values", "1 NaN/Inf value(s)")


def test_raise_prints_one_line_naming_the_file_first():
    stream = io.StringIO()
    errors = ScanErrors("raise", stream=stream)
    with pytest.raises(DataFileError):
        errors.guard("/data/b.nii.gz", "read", _bad)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ERROR /data/b.nii.gz: read failed:") and "key 'image'" in lines[0]


def test_skip_records_and_writes_csv(tmp_path):
    stream = io.StringIO()
    errors = ScanErrors("skip", tmp_path, stream=stream)
    assert errors.guard("/data/a.nii.gz", "read", lambda: "ok") == "ok"
    assert errors.guard("/data/b.nii.gz", "read", _bad) is None
    assert errors.guard("/data/c.h5", "read", lambda: open("/nonexistent/file")) is None
    errors.check_any_succeeded(1)
    rows = list(csv.DictReader((tmp_path / "errors.csv").open()))
    assert [r["file"] for r in rows] == ["/data/b.nii.gz", "/data/c.h5"]
    assert rows[0]["stage"] == "read" and "NaN" in rows[0]["message"]
    assert rows[1]["message"].startswith("FileNotFoundError")
    assert "skipped 2 bad scan(s) of 3" in stream.getvalue()


def test_skip_everything_failed_still_fails(tmp_path):
    errors = ScanErrors("skip", tmp_path, stream=io.StringIO())
    errors.guard("/data/b.nii.gz", "read", _bad)
    with pytest.raises(ValueError, match="every scan failed"):
        errors.check_any_succeeded(0)
    assert (tmp_path / "errors.csv").is_file()


def test_clean_run_removes_a_stale_errors_csv(tmp_path):
    (tmp_path / "errors.csv").write_text("file,stage,message\nold,read,x\n")
    errors = ScanErrors("skip", tmp_path)
    errors.guard("/data/a.nii.gz", "read", lambda: 1)
    assert errors.write() is None and not (tmp_path / "errors.csv").exists()


def test_bad_mode_and_factory():
    with pytest.raises(ValueError, match="on_error"):
        ScanErrors("ignore")
    existing = ScanErrors("skip")
    assert scan_errors(existing) is existing
    assert scan_errors(None).on_error == "raise" and scan_errors("skip").skip
    with pytest.raises(ValueError, match="output_dir"):
        ScanErrors("skip").write()

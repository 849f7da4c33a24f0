"""Atomic writes and the DataFileError message."""

from __future__ import annotations

import pytest

import torch

from rim_monai.data.file_utils import DataFileError, atomic_write, check_finite, item_kspace


def test_error_names_file_key_and_expectation():
    e = DataFileError("scan.h5", "kspace", "a complex array", "float32")
    assert isinstance(e, ValueError)
    assert "scan.h5" in str(e) and "'kspace'" in str(e) and "a complex array" in str(e) and "float32" in str(e)


def test_atomic_write_replaces_only_on_success(tmp_path):
    out = tmp_path / "sub" / "out.nii.gz"
    with atomic_write(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.endswith(".nii.gz") and tmp != out
        tmp.write_text("first")
    assert out.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_write(out, overwrite=True) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash")
    assert out.read_text() == "first"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.nii.gz"]  # no temporary left behind


def test_atomic_write_refuses_to_overwrite(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("keep")
    with pytest.raises(FileExistsError, match="out.txt"):
        with atomic_write(out) as tmp:
            tmp.write_text("new")
    assert out.read_text() == "keep"
    with atomic_write(out, overwrite=True) as tmp:
        tmp.write_text("new")
    assert out.read_text() == "new"


def test_check_finite_counts_bad_values():
    import numpy as np

    with pytest.raises(DataFileError, match=r"f\.h5: key 'data'.*2 NaN/Inf"):
        check_finite(np.array([1.0, np.nan, np.inf]), "f.h5", "data")
    check_finite(np.array([1, 2]), "f.h5", "data")  # integers are always finite


def test_item_kspace_checks_key_shape_and_dtype():
    k = torch.zeros(2, 4, 4, dtype=torch.complex64)
    assert item_kspace({"kspace": k}, "kspace") is k
    with pytest.raises(ValueError, match="expected k-space under key 'kspace'"):
        item_kspace({"image": k}, "kspace")
    with pytest.raises(ValueError, match="kspace: expected complex"):
        item_kspace({"kspace": torch.zeros(2, 4, 4)}, "kspace")


def test_atomic_write_text_replaces_the_file_in_one_step(tmp_path):
    from rim_monai.data import atomic_write_text

    path = tmp_path / "table.md"
    path.write_text("old")
    assert atomic_write_text(path, "ü\n") == path
    assert path.read_text(encoding="utf-8") == "ü\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]  # no temporary file left behind

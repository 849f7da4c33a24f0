"""BART .cfl/.hdr reading and writing."""

from __future__ import annotations

import numpy as np
import pytest

from rim_monai.data import DataFileError, bart_to_channel_first, read_bart, write_bart


def test_round_trip_is_column_major(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((1, 5, 7, 3)) + 1j * rng.standard_normal((1, 5, 7, 3))).astype(np.complex64)
    write_bart(tmp_path / "ksp", data)
    header = (tmp_path / "ksp.hdr").read_text().splitlines()
    assert header[0] == "# Dimensions" and header[1].split()[:4] == ["1", "5", "7", "3"]
    raw = np.fromfile(tmp_path / "ksp.cfl", dtype=np.complex64)
    np.testing.assert_array_equal(raw, data.ravel(order="F"))  # first dimension fastest
    out = read_bart(tmp_path / "ksp.cfl")
    assert out["data"].dtype == np.complex64 and out["dims"][:4] == (1, 5, 7, 3) and len(out["dims"]) == 16
    np.testing.assert_array_equal(out["data"], data)
    np.testing.assert_array_equal(bart_to_channel_first(out["data"]), np.moveaxis(data[0], -1, 0))


def test_write_refuses_overwrite(tmp_path):
    write_bart(tmp_path / "a", np.zeros((2, 2)))
    with pytest.raises(FileExistsError, match="a.cfl"):
        write_bart(tmp_path / "a", np.ones((2, 2)))
    write_bart(tmp_path / "a", np.ones((2, 2)), overwrite=True)
    assert read_bart(tmp_path / "a")["data"].sum() == 4


@pytest.mark.parametrize(
    "case, match",
    [
        ("truncated", r"a\.cfl: key 'data': expected 48 bytes"),
        ("no_header", r"a\.hdr: expected a BART header"),
        ("bad_header", r"a\.hdr: key '# Dimensions'"),
        ("nan", r"a\.cfl: key 'data': expected finite values"),
    ],
)
def test_bad_files(tmp_path, case, match):
    data = np.ones((2, 3), np.complex64)
    if case == "nan":
        data[0, 0] = np.nan
    write_bart(tmp_path / "a", data)
    if case == "truncated":
        raw = (tmp_path / "a.cfl").read_bytes()
        (tmp_path / "a.cfl").write_bytes(raw[:-8])
    elif case == "no_header":
        (tmp_path / "a.hdr").unlink()
    elif case == "bad_header":
        (tmp_path / "a.hdr").write_text("# Dimensions\nfoo bar\n")
    with pytest.raises(DataFileError, match=match):
        read_bart(tmp_path / "a")


def test_channel_first_rejects_non_2d():
    with pytest.raises(ValueError, match="data"):
        bart_to_channel_first(np.zeros((4, 5, 6, 2), np.complex64))

"""format_table: the one markdown table of result rows."""

import pytest

from rim_monai.engines import format_table


def test_default_and_per_column_formats():
    rows = [{"method": "fbp", "psnr": 27.123456, "n": 3}, {"method": "lpd", "psnr": 31.5}]
    assert format_table(rows, ["method", "psnr", "n"]).splitlines() == [
        "| method | psnr | n |", "|---|---|---|", "| fbp | 27.1235 | 3 |", "| lpd | 31.5000 |  |"]
    table = format_table(rows, ["method", "psnr"], formats={"psnr": "{:.2f}", "method": str.upper},
                         headers=["method", "PSNR (dB)"])
    assert table.splitlines()[0] == "| method | PSNR (dB) |" and table.splitlines()[2] == "| FBP | 27.12 |"


def test_headers_must_match_the_columns():
    with pytest.raises(ValueError, match="headers"):
        format_table([], ["a", "b"], headers=["a"])

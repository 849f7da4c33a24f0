"""Smoke test of the peer benchmark (``python -m rim_monai.benchmarks.peers --quick``).

Skips cleanly where the peers extra (deepinv, sigpy, fastMRI) is not installed — the project's own test run never
needs it — or where ``../shared/data`` lacks the two real scans.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rim_monai.benchmarks.peers_data import BART_DIR, CT_FILE

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


def _require_peers() -> None:
    for name in ("deepinv", "sigpy", "fastmri"):
        try:
            __import__(name)
        except Exception as e:  # ImportError, or torchvision's RuntimeError beside a mismatched torch
            pytest.skip(f"the peers extra is not usable here ({name}: {type(e).__name__}); "
                        f'pip install -e ".[peers]" to run this test')


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    _require_peers()
    if not (DATA / CT_FILE).exists() or not (DATA / BART_DIR / "ksp.cfl").exists():
        pytest.skip("../shared/data lacks the WG-04 CT slice or the BART brain")
    from rim_monai.benchmarks.peers import main

    out = tmp_path_factory.mktemp("peers")
    result = main(["--quick", "--out", str(out), "--threads", "1", "--data-dir", str(DATA)])
    return out, result


def test_quick_run_writes_every_table(quick_run):
    out, result = quick_run
    saved = json.loads((out / "peers.json").read_text())
    assert saved["command"].endswith("--quick --out " + str(out) + " --threads 1 --data-dir " + str(DATA))
    for part in ("ct_operator", "mri_operator", "tv_ct", "tv_mri", "learned"):
        assert part in saved, part
    assert set(saved["versions"]) >= {"torch", "deepinv", "sigpy", "fastmri", "odl", "astra"}
    text = (out / "peers.md").read_text()
    assert "## 1. CT operator" in text and "## 4. Learned vs classical" in text and "Quick run" in text


def test_quick_run_numbers_are_sane(quick_run):
    _, result = quick_run
    for part in ("ct_operator", "mri_operator"):
        assert all(err < 1e-5 for err in result[part]["adjoint_error"].values()), result[part]["adjoint_error"]
        assert all(s > 0 for row in result[part]["rows"] for s in row["seconds"].values())
    assert all(max(a.values()) < 1e-5 for a in result["mri_operator"]["agreement"].values())
    for case in ("tv_ct", "tv_mri"):
        for row in result[case]["rows"]:
            assert 1 <= row["iterations_to_target"] <= row["iterations"]
            assert row["psnr"] > 10 and 0 < row["ssim"] <= 1
    names = [row["name"] for row in result["learned"]["rows"]]
    assert "zero-filled" in names and any(n.startswith("RIM") for n in names)


def test_missing_data_is_named(tmp_path):
    _require_peers()
    from rim_monai.benchmarks.peers import main

    with pytest.raises(FileNotFoundError, match="CT1_UNC.dcm: missing"):
        main(["--quick", "--out", str(tmp_path), "--data-dir", str(tmp_path), "--skip", "ct", "--skip", "mri",
              "--skip", "learned", "--skip", "tv-mri"])

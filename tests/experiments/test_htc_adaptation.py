"""``rim_monai.experiments.htc_adaptation`` end to end on tiny synthetic HTC-like files (the real run is too slow)."""

import json

import numpy as np
import pytest
import torch

from rim_monai.experiments.htc_adaptation import htc_files, relative_residual, run
from tests.data.test_htc import write_v5


def test_htc_files_sorted_by_arc_and_error_names_folder(tmp_path):
    for arc, name in ((90, "b.mat"), (30, "z.mat"), (30, "a.mat")):
        (tmp_path / str(arc)).mkdir(exist_ok=True)
        (tmp_path / str(arc) / name).write_bytes(b"")
    assert [f"{p.parent.name}/{p.name}" for p in htc_files(tmp_path)] == ["30/a.mat", "30/z.mat", "90/b.mat"]
    with pytest.raises(ValueError, match="empty"):
        htc_files(tmp_path / "empty")


def test_relative_residual_zero_for_consistent_data():
    from rim_monai.operators import Identity

    x = torch.rand(1, 1, 4, 4)
    assert relative_residual(x, x.clone(), Identity((4, 4))) == 0.0
    assert relative_residual(2 * x, x, Identity((4, 4))) == pytest.approx(1.0)


def test_run_adapts_on_the_common_shape_and_writes_everything(tmp_path):
    rng = np.random.default_rng(0)
    for arc, views, name in ((30, 9, "ta.mat"), (30, 9, "tb.mat"), (40, 11, "tb_40.mat")):
        (tmp_path / str(arc)).mkdir(exist_ok=True)
        write_v5(tmp_path / str(arc) / name, rng.random((views, 40)).astype(np.float32),
                 10.0 * arc + 0.5 * np.arange(views))
    out = tmp_path / "out"
    record = run(out, files=htc_files(tmp_path), steps=1, patience=None, pixel_mm=0.2, image_size=32,
                 tv_iterations=5)
    assert record["adapted_on"] == ["ta (4°)", "tb (4°)"]
    assert set(record["relative_residual"]) == {"FBP", "TV", "LPD θ₀ (swapped)", "LPD R&R"}
    assert all(len(v) == 3 for v in record["relative_residual"].values())
    assert record["rr"]["data_term_after"] <= record["rr"]["data_term_before"]
    assert json.loads((out / "htc.json").read_text()) == record
    assert {p.name for p in out.iterdir()} == {"htc.json", "htc_rr_report.json", "htc_rr_data_term.png",
                                              "htc_reconstructions.png"}

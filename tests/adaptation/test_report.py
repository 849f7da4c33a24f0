import json
import math

import pytest

from rim_monai.adaptation import AdaptationReport


def _report() -> AdaptationReport:
    return AdaptationReport(
        method="R&R+",
        mu=math.inf,
        num_samples=3,
        eval_steps=[0, 0, 5],
        data_term=[2.0, 1.0, 0.5],
        penalty=[0.0, 0.0, 0.0],
        parameters={"detector_shift": [0.0, 1.2, 1.25]},
        batch_loss=[1.5, 1.2, 1.0, 0.8, 0.6],
        data_term_before=2.0,
        data_term_after=0.5,
        parameters_final={"detector_shift": 1.25},
        psnr=[20.0, 24.0, 25.5],
        ssim=[0.5, 0.6, None],
        psnr_before=20.0,
        psnr_after=25.5,
        steps_run=5,
        best_step=5,
        config={"lr": 1e-3},
        operator=object(),
    )


def test_json_round_trip(tmp_path):
    rep = _report()
    path = rep.to_json(tmp_path / "sub" / "report.json")
    data = json.loads(path.read_text())
    assert data["mu"] == "inf" and "operator" not in data
    back = AdaptationReport.from_json(path)
    assert back.to_dict() == rep.to_dict()  # NaN fields compare as strings there
    assert back.parameters == rep.parameters and back.data_term == rep.data_term
    assert back.operator is None and math.isinf(back.mu) and math.isnan(back.relative_residual_before)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["report.json"]  # no temporary file left


def test_from_json_errors(tmp_path):
    with pytest.raises(ValueError, match="path"):
        AdaptationReport.from_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="path"):
        AdaptationReport.from_json(tmp_path / "bad.json")
    (tmp_path / "extra.json").write_text(json.dumps(_report().to_dict() | {"unknown": 1}))
    with pytest.raises(ValueError, match="unknown"):
        AdaptationReport.from_json(tmp_path / "extra.json")


def test_plot_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib")
    path = _report().plot(tmp_path / "data_term.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_term.png"]

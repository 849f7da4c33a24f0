"""The CT bundle, model-zoo style: tiny generated data, ConfigWorkflow train / infer / evaluate, torchrun, metadata."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, verify_metadata

from tests.bundles.helpers import assert_scale_equivariant, error_messages, run_bundle, shipped_network
from rim_monai.data.samples import make_ct_sample

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "ct_lpd_recon"
CONFIGS = BUNDLE / "configs"
SCHEMA = REPO.parent / "shared" / "monai" / "meta_schema_20240725.json"

# 32x32 grid, 8 views, a 2-iteration LPD with 8 features: every config runs in about a second
# float32: exact scale equivariance is a float32 property (bfloat16, the default on CPUs with AMX, rounds the scaled
# input differently at a few pixels, ~1e-3 relative)
TINY = {"image_shape": [32, 32], "num_angles": 8, "iterations": 2, "features": [8, 8], "mixed_precision": None}
# train.json (v2) on ellipses only: 32x32 items, 8 views, two items a batch, one validation phantom
TINY_TRAIN = {"iterations": 2, "features": [8, 8], "train_subjects": [], "val_subjects": [], "natural_dir": None,
              "val_ellipses": 1, "patch_sizes": [32], "pixels_per_batch": 2048, "view_counts": [8], "val_size": 32,
              "epoch_length": 2, "epochs": 1, "warmup_iterations": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train one tiny epoch with train.json; returns (workdir, checkpoint)."""
    root = tmp_path_factory.mktemp("ct_bundle")
    overrides = {**TINY_TRAIN, "dataset_dir": str(root), "ckpt_dir": str(root / "models"), "run_dir": str(root / "runs")}
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **overrides)
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    checkpoint = root / "models" / "model.pt"
    assert checkpoint.is_file() and (root / "runs" / "checkpoint_final.pt").is_file()
    return root, checkpoint


@pytest.mark.parametrize("configs, key, example", [(["train.json"], "train_files", "../shared/data"),
                                                   (["inference.json", "evaluate.json"], "files", "../shared/data/ct/dicom")])
def test_data_paths_are_required_overrides(configs, key, example, tmp_path):
    """train.json and evaluate.json read the data only from an override: without one the error names the key and
    shows the flag; with one the paths are under it (inference.json keeps its shipped sample)."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    with pytest.raises(RuntimeError) as info:
        parser.get_parsed_content(key)
    chain = error_messages(info.value)
    assert any("dataset_dir: this config needs" in m and f"`--dataset_dir {example}`" in m for m in chain)
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser["dataset_dir"] = str(tmp_path)
    assert all(f.startswith(str(tmp_path) + "/") for f in parser.get_parsed_content(key))


def test_metadata_is_valid_offline():
    if not SCHEMA.is_file():
        pytest.skip("the MONAI metadata schema (../shared/monai) is absent")
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA), create_dir=False)


def test_train_resumes_from_its_checkpoint(trained):
    root, _ = trained
    overrides = {**TINY_TRAIN, "epochs": 2, "dataset_dir": str(root), "ckpt_dir": str(root / "models"),
                 "run_dir": str(root / "runs"), "resume": True}
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **overrides)
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    workflow.run()
    assert trainer.state.epoch == 2  # resumed at epoch 1, ran one more


def _lodopab_style(folder: Path, parser_overrides: dict) -> None:
    """An observation/ground-truth pair made with the bundle's own protocol (`simulate`)."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update(parser_overrides)
    simulate = parser.get_parsed_content("simulate")
    image = torch.full((32, 32), -1000.0)
    image[6:26, 8:24] = 40.0
    y, _ = simulate(image)
    with h5py.File(folder / "observation_test_000.hdf5", "w") as f:
        f["data"] = y[0].numpy()
    with h5py.File(folder / "ground_truth_test_000.hdf5", "w") as f:
        f["data"] = (0.02 * (1 + image / 1000.0))[None].numpy()


@pytest.mark.parametrize("hounsfield", [True, False])
def test_inference_keeps_geometry_units_and_scores_each_scan(trained, tmp_path, hounsfield):
    _, checkpoint = trained
    data = tmp_path / "scans"
    data.mkdir()
    sample = make_ct_sample(data / "head.nii.gz", shape=(32, 32), slices=2)
    _lodopab_style(data, TINY)
    out = tmp_path / "out"
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "inference.json"), workflow_type="infer", dataset_dir=str(data),
                              output_dir=str(out), ckpt_path=str(checkpoint), hounsfield=hounsfield, **TINY)
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    recon = nib.load(str(out / "head_recon.nii.gz"))
    np.testing.assert_allclose(recon.affine, nib.load(str(sample)).affine, atol=1e-5)
    assert recon.shape == (32, 32, 2)
    air = float(np.median(recon.get_fdata()[:2, :2]))  # the corner is air: -1000 HU or 0 attenuation
    assert (abs(air + 1000) < 400) if hounsfield else (abs(air) < 0.01)
    assert nib.load(str(out / "observation_test_000_recon.nii.gz")).shape == (32, 32, 1)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {r["file"] for r in rows} == {"head", "observation_test_000"}
    assert {r["method"] for r in rows} == {"recon", "fbp"}


def test_inference_writes_a_dicom_scan_at_its_position(trained, tmp_path):
    """A 64x64 DICOM slice fitted to the 32x32 grid: the reconstruction lands where the scan's pixels are."""
    from rim_monai.data import read_dicom
    from tests.data.conftest import write_dicom

    _, checkpoint = trained
    data, out = tmp_path / "scans", tmp_path / "out"
    data.mkdir()
    yy, xx = np.mgrid[:64, :64]
    write_dicom(data / "ct.dcm", (((yy - 32) ** 2 + (xx - 30) ** 2 < 500) * 500 + 12).astype(np.int16))
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "inference.json"), workflow_type="infer", dataset_dir=str(data),
                              output_dir=str(out), ckpt_path=str(checkpoint), **TINY)
    workflow.initialize()
    workflow.run()
    recon = nib.load(str(out / "ct_recon.nii.gz"))
    assert recon.shape == (32, 32, 1)
    scan = read_dicom(data / "ct.dcm")["affine"]
    for i, j in [(0, 0), (31, 0), (5, 17)]:  # grid voxel (i, j) is the centre of scan pixels 2i..2i+1, 2j..2j+1
        np.testing.assert_allclose(recon.affine @ [i, j, 0, 1], scan @ [2 * i + 0.5, 2 * j + 0.5, 0, 1], atol=1e-6)


def test_evaluate_prints_baselines_beside_the_network(trained, tmp_path):
    _, checkpoint = trained
    data = tmp_path / "scans"
    data.mkdir()
    make_ct_sample(data / "head.nii.gz", shape=(32, 32), slices=1)
    out = tmp_path / "eval"
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "evaluate.json")], workflow_type="infer",
        dataset_dir=str(data), test_files=["head.nii.gz"], phantoms=2, output_dir=str(out), ckpt_path=str(checkpoint),
        tv_iterations=20, **TINY,
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["method"] for r in rows[:4]] == ["recon", "fbp", "tv", "tv_auto"]  # tuned weight, data-driven rule
    assert {r["file"] for r in rows} == {"head", "ellipses_seed2_000", "ellipses_seed2_001"}
    assert all(np.isfinite(float(r["psnr"])) for r in rows)
    assert (out / "head_tv.nii.gz").is_file() and (out / "ellipses_seed2_001_fbp.nii.gz").is_file()



def _adapt(checkpoint: Path, tmp_path: Path, **overrides) -> tuple[dict, Path]:
    """Run inference.json + adapt.json on a tiny 2-slice scan; returns (report, adapted weights)."""
    data = tmp_path / "scans"
    data.mkdir()
    make_ct_sample(data / "head.nii.gz", shape=(32, 32), slices=2)
    out, adapted = tmp_path / "adapt", tmp_path / "model_adapted.pt"
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "adapt.json")], workflow_type="infer",
        dataset_dir=str(data), output_dir=str(out), ckpt_path=str(checkpoint), adapted_ckpt_path=str(adapted),
        **{**TINY, "num_angles": 6, "adapt#steps": 2, **overrides},
    )
    workflow.initialize()
    workflow.run()
    assert (out / "adapt_data_term.png").is_file()
    return json.loads((out / "adapt_report.json").read_text()), adapted


def test_adapt_writes_new_weights_and_leaves_the_trained_ones(trained, tmp_path):
    _, checkpoint = trained
    before = checkpoint.read_bytes()
    report, adapted = _adapt(checkpoint, tmp_path)
    assert report["method"] == "R&R" and report["num_samples"] == 2 and "'per_image'" in report["metric_protocol"]
    assert np.isfinite(report["psnr_before"]) and np.isfinite(report["psnr_after"])
    assert adapted.is_file() and checkpoint.read_bytes() == before
    state = torch.load(adapted, map_location="cpu")
    assert state.keys() == torch.load(checkpoint, map_location="cpu").keys()


def test_adapt_noise_photons_gives_the_discrepancy_level(trained, tmp_path):
    """adapt#noise_photons: the report carries the measurement-only noise energy of the simulated sinograms."""
    _, checkpoint = trained
    report, _ = _adapt(checkpoint, tmp_path, **{"adapt#noise_photons": "@photons"})
    assert report["noise_energy"] > 0 and report["config"]["noise_energy"] == report["noise_energy"]


def test_adapt_estimates_a_simulated_detector_shift(trained, tmp_path):
    """R&R+ (estimate_shift): the search moves the operator's detector shift towards the one the data were made with."""
    _, checkpoint = trained
    report, adapted = _adapt(checkpoint, tmp_path, simulated_detector_shift=1.5,
                             **{"adapt#estimate_shift": True, "adapt#search_rounds": 1, "adapt#shift_tol": 0.1})
    assert report["method"] == "R&R+" and adapted.is_file()
    assert report["parameters_before"]["detector_shift"] == 0.0
    assert abs(report["parameters_final"]["detector_shift"] - 1.5) < 0.5
    assert report["data_term_after"] < report["data_term_before"]

@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_network_contract_with_the_shipped_protocol(geometry):
    """verify_net_in_out for a two-input network: simulate with `simulate`, reconstruct with `network_def`."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    if geometry == "fan":
        parser.update(ConfigParser.load_config_file(str(CONFIGS / "inference_fan.json")))
    parser.update(TINY)
    net = parser.get_parsed_content("network_def").eval()
    simulate = parser.get_parsed_content("simulate")
    operator = parser.get_parsed_content("operator")
    assert operator.geometry == geometry
    image = torch.full((32, 32), -1000.0)
    image[8:24, 6:26] = 0.0
    y, A = simulate(image)
    assert A is simulate.operator and y.shape == (1, 1, *A.range_shape)
    x = assert_scale_equivariant(net, y, A)
    assert x.shape == (1, 1, 32, 32) and x.dtype == torch.float32


def test_shipped_model_loads_into_network_def():
    shipped_network(BUNDLE)


@pytest.mark.slow
def test_readme_inference_command_runs_on_the_shipped_input(tmp_path):
    shipped_network(BUNDLE)
    out = tmp_path / "outputs"
    run_bundle([CONFIGS / "inference.json"], "--output_dir", str(out))
    recon = nib.load(str(out / "phantom_ct_recon.nii.gz"))
    assert recon.shape == (256, 256, 2)
    np.testing.assert_allclose(recon.affine, nib.load(str(BUNDLE / "sample" / "phantom_ct.nii.gz")).affine)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    by_method = {r["method"]: float(r["psnr"]) for r in rows}
    assert by_method["recon"] > by_method["fbp"]  # the trained network beats FBP on its own shipped input


@pytest.mark.slow
def test_torchrun_two_process_gloo_training(tmp_path):
    overrides = [
        *[arg for key, value in {**TINY_TRAIN, "epoch_length": 4, "pixels_per_batch": 1024}.items()
          for arg in (f"--{key}", "$None" if value is None else json.dumps(value))],
        "--dataset_dir", str(tmp_path), "--ckpt_dir", str(tmp_path / "models"), "--run_dir", str(tmp_path / "runs"),
    ]
    run_bundle([CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json"], *overrides, processes=2)
    assert (tmp_path / "models" / "model.pt").is_file()
    assert (tmp_path / "runs" / "checkpoint_final.pt").is_file()


def _paths(entries) -> list[str]:
    return [p for entry in entries for p in ([entry] if isinstance(entry, str) else entry)]


def test_training_split_is_by_patient():
    """train.json's train / validation / test patients are disjoint (files and COVID patient ids), the test set
    holds WG-04's head and a chest, an abdomen and a head of the new data; the paths exist where the data is."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    splits = {name: _paths(parser[f"{name}_subjects"]) for name in ("train", "val", "test")}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not set(splits[a]) & set(splits[b]), (a, b)
            patients = [{Path(p).name.split("_axial")[0] for p in splits[n] if "covid" in p} for n in (a, b)]
            assert not patients[0] & patients[1], (a, b)
    assert "ct/dicom/WG04/CT2_UNC.dcm" in splits["test"] and len(parser["test_subjects"]) >= 4
    data = REPO.parent / "shared" / "data"
    if data.is_dir():
        missing = [p for paths in splits.values() for p in paths if not (data / p).exists()]
        assert not missing, missing


def test_train_config_pairs_every_batch_with_its_operator(tmp_path):
    """The v2 recipe: warm-up + cosine schedule, clipping, a curve in run_dir, mixed precision, checkpoints of the
    best validation PSNR in ckpt_dir (by default under run_dir: the shipped models/model.pt is never replaced)."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({**TINY_TRAIN, "dataset_dir": str(tmp_path)})
    handlers = [h["_target_"] for h in parser["train"]["handlers"]]
    assert handlers[:4] == ["ValidationHandler", "LrScheduleHandler", "rim_monai.training.GradientClipping",
                            "rim_monai.engines.TrainingCurveWriter"]
    assert parser.get_parsed_content("lr_scheduler").__class__.__name__ == "WarmupCosineSchedule"
    assert parser.get_parsed_content("ckpt_dir").startswith(parser.get_parsed_content("run_dir"))
    assert parser.get_parsed_content("run_dir").endswith("ct_lpd_recon/runs/v2")
    net = parser.get_parsed_content("network_def").net
    assert net.autocast_dtype == torch.bfloat16 and net.channels_last

"""The MRI bundle, model-zoo style: tiny generated data, ConfigWorkflow train / infer / evaluate, torchrun, metadata."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, verify_metadata

from tests.bundles.helpers import assert_scale_equivariant, error_messages, run_bundle, shipped_network
from rim_monai.data.samples import make_mri_sample
from rim_monai.engines import network_weights

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "mri_rim_recon"
CONFIGS = BUNDLE / "configs"
SCHEMA = REPO.parent / "shared" / "monai" / "meta_schema_20240725.json"

TINY_NETWORK = {"steps": 2, "network_def#net#features": [8, 8]}


def _volume(path: Path, shape=(40, 48, 12), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    head = ((x / 0.8) ** 2 + (y / 0.9) ** 2 < 1).astype(np.float32)
    data = np.stack([head * (0.5 + 0.5 * rng.random()) for _ in range(shape[2])], axis=-1) * 100
    affine = np.diag([1.5, 1.2, 3.0, 1.0])
    affine[:3, 3] = [-30.0, 10.0, 5.0]
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _tiny_training(root: Path, **changes) -> dict:
    """train.json overrides for one tiny epoch: subject ``root/train.nii.gz``, validation subject ``root/val.nii.gz``
    (no natural images), writing under ``root``."""
    return {
        **TINY_NETWORK,
        "dataset_dir": str(root),
        "train_subjects": ["train.nii.gz"],
        "val_subjects": ["val.nii.gz"],
        "natural_dir": None,
        "slices_per_axis": 4,
        "patch_sizes": [32],
        "pixels_per_batch": 2 * 32 * 32,
        "coils": [1, 4],
        "val_slices_per_subject": 2,
        "epochs": 1,
        "epoch_length": 2,
        "warmup_iterations": 1,
        "ckpt_dir": str(root / "models"),
        "run_dir": str(root / "runs"),
        **changes,
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train one tiny epoch with train.json; returns (workdir, checkpoint)."""
    root = tmp_path_factory.mktemp("mri_bundle")
    _volume(root / "train.nii.gz")
    _volume(root / "val.nii.gz", seed=1)
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **_tiny_training(root))
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    checkpoint = root / "models" / "model.pt"
    assert checkpoint.is_file() and (root / "runs" / "checkpoint_final.pt").is_file()
    return root, checkpoint


@pytest.mark.parametrize("configs, key, example", [(["train.json"], "train_files", "../shared/data"),
                                                   (["inference.json", "evaluate.json"], "files",
                                                    "../shared/data/mri_image/nifti")])
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


def test_metadata_is_valid_offline(tmp_path):
    if not SCHEMA.is_file():
        pytest.skip("the MONAI metadata schema (../shared/monai) is absent")
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA), create_dir=False)


def test_train_resumes_from_its_checkpoint(trained):
    root, _ = trained
    overrides = _tiny_training(root, epochs=2, epoch_length=1, resume=True)
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **overrides)
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    workflow.run()
    assert trainer.state.epoch == 2  # resumed at epoch 1, ran one more


@pytest.mark.parametrize("source", ["models/model.pt", "runs/checkpoint_final.pt"])
def test_train_warm_starts_from_initial_weights_with_the_cg_start(trained, tmp_path, source):
    """``--initial_weights`` loads a state dict or a training checkpoint's network before training (fine-tuning);
    ``--init cg`` trains from CG-SENSE."""
    root, _ = trained
    checkpoint = root / source
    overrides = _tiny_training(root, epoch_length=1, initial_weights=str(checkpoint), init="cg",
                               ckpt_dir=str(tmp_path / "models"), run_dir=str(tmp_path / "runs"), learning_rate=0.0)
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **overrides)
    workflow.initialize()
    network = workflow.parser.get_parsed_content("network")
    assert network.net.init == "cg"
    loaded = network_weights(checkpoint)
    for name, value in network.state_dict().items():
        torch.testing.assert_close(value, loaded[name], msg=f"{name} was not loaded from initial_weights")
    workflow.run()  # learning rate 0: the weights stay those of the checkpoint
    for name, value in torch.load(tmp_path / "runs" / "checkpoint_final.pt")["model"].items():
        torch.testing.assert_close(value, loaded[name])


def test_train_with_the_log_mse_loss(trained, tmp_path):
    """``--loss_base log_mse`` trains on minus the items' mean PSNR: the curve's training loss is then negative (an
    MSE never is)."""
    root, _ = trained
    overrides = _tiny_training(root, epoch_length=1, loss_base="log_mse", ckpt_dir=str(tmp_path / "models"),
                               run_dir=str(tmp_path / "runs"))
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **overrides)
    workflow.initialize()
    assert type(workflow.parser.get_parsed_content("loss").base).__name__ == "LogMSELoss"
    workflow.run()
    with open(tmp_path / "runs" / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["train_loss"]) < 0


def test_train_with_the_noise_input_warm_starts_from_weights_without_it(trained, tmp_path):
    """``--noise_input true --initial_weights`` loads weights trained without the noise channel (its weights start at
    zero, every other tensor is the checkpoint's) and trains the channel."""
    root, _ = trained
    checkpoint = root / "models" / "model.pt"
    overrides = _tiny_training(root, noise_input=True, initial_weights=str(checkpoint),
                               ckpt_dir=str(tmp_path / "models"), run_dir=str(tmp_path / "runs"))
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train", **overrides)
    workflow.initialize()
    network = workflow.parser.get_parsed_content("network")
    assert network.net.noise_input
    loaded = network_weights(checkpoint)
    first = "net.cell.convs.0.weight"
    for name, value in network.state_dict().items():
        expected = loaded[name] if name != first else torch.cat([loaded[name], torch.zeros_like(loaded[name][:, :1])], 1)
        torch.testing.assert_close(value, expected, msg=f"{name} was not loaded from initial_weights")
    workflow.run()
    trained_first = torch.load(tmp_path / "runs" / "checkpoint_final.pt")["model"][first]
    assert trained_first.shape[1] == loaded[first].shape[1] + 1 and trained_first[:, -1].abs().sum() > 0


def _fastmri_like(path: Path, reference: bool) -> Path:
    """A fastMRI-layout file whose images are larger than its recon matrix (64x48 k-space, 32x32 recon), as real
    fastMRI files are (640x368 k-space, 320x320 reconstruction_rss): with the cropped reference, or undersampled
    without one."""
    import h5py

    make_mri_sample(path, shape=(64, 48), coils=4, slices=2)
    with h5py.File(path, "r+") as f:
        header = f["ismrmrd_header"][()].decode()
        recon = header.index("<reconSpace>")
        header = header[:recon] + header[recon:].replace("<x>64</x><y>48</y>", "<x>32</x><y>32</y>", 1)
        del f["ismrmrd_header"]
        f["ismrmrd_header"] = header.encode()
        rss = f["reconstruction_rss"][()]
        del f["reconstruction_rss"]
        if reference:
            f["reconstruction_rss"] = rss[:, 16:48, 8:40]
        else:
            mask = np.zeros(48, np.float32)
            mask[::3] = 1
            mask[20:28] = 1
            f["kspace"][...] = f["kspace"][()] * mask
            f["mask"] = mask
    return path


def test_inference_crops_fastmri_volumes_to_the_recon_matrix(trained, tmp_path):
    """As in fastMRI: recon and baselines are centre-cropped to the reference (or to recon_size without one)."""
    _, checkpoint = trained
    data, out = tmp_path / "scans", tmp_path / "out"
    data.mkdir()
    _fastmri_like(data / "scored.h5", reference=True)
    _fastmri_like(data / "unscored.h5", reference=False)
    workflow = ConfigWorkflow(config_file=str(CONFIGS / "inference.json"), workflow_type="infer", dataset_dir=str(data),
                              output_dir=str(out), ckpt_path=str(checkpoint), save_baselines=True, **TINY_NETWORK)
    workflow.initialize()
    workflow.run()
    for name in ("scored_recon", "scored_zero_filled", "scored_reference", "unscored_recon"):
        assert nib.load(str(out / f"{name}.nii.gz")).shape == (32, 32, 2), name
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {(r["file"], r["method"]) for r in rows if r.get("psnr")} == {("scored", "recon"), ("scored", "zero_filled")}


def test_inference_keeps_geometry_and_scores_each_volume(trained, tmp_path):
    _, checkpoint = trained
    data = tmp_path / "scans"
    data.mkdir()
    volume = _volume(data / "head.nii.gz", shape=(32, 36, 6), seed=1)
    make_mri_sample(data / "phantom.h5", shape=(32, 32), coils=4, slices=2)
    from tests.data.conftest import write_dicom  # the test extra installs pydicom

    yy, xx = np.mgrid[:32, :32]
    write_dicom(data / "slice.dcm", (((yy - 16) ** 2 + (xx - 15) ** 2 < 120) * 300 + 1030).astype(np.int16))
    out = tmp_path / "out"
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"),
        workflow_type="infer",
        dataset_dir=str(data),
        output_dir=str(out),
        ckpt_path=str(checkpoint),
        **TINY_NETWORK,
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()
    recon = nib.load(str(out / "head_recon.nii.gz"))
    np.testing.assert_allclose(recon.affine, nib.load(str(volume)).affine, atol=1e-5)
    assert recon.shape == (32, 36, 6)
    assert nib.load(str(out / "phantom_recon.nii.gz")).shape == (32, 32, 2)
    from rim_monai.data import read_dicom

    dicom_recon = nib.load(str(out / "slice_recon.nii.gz"))  # a DICOM slice is written at the scan's position
    assert dicom_recon.shape == (32, 32, 1)
    np.testing.assert_allclose(dicom_recon.affine, read_dicom(data / "slice.dcm")["affine"], atol=1e-6)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {r["file"] for r in rows} == {"head", "phantom", "slice"}
    assert {r["method"] for r in rows} == {"recon", "zero_filled"}


def test_inference_with_the_holdout_data_consistency_step(trained, tmp_path):
    """``--dc_lambda holdout`` passes through the config to the RIM: on simulated k-space whose coil maps are exact,
    the step chosen on held-out lines lifts the (barely trained) network's PSNR."""
    _, checkpoint = trained
    data = tmp_path / "scans"
    data.mkdir()
    make_mri_sample(data / "phantom.h5", shape=(48, 48), coils=4, slices=2)
    psnr = {}
    for dc_lambda in (None, "holdout"):
        out = tmp_path / f"out_{dc_lambda}"
        workflow = ConfigWorkflow(config_file=str(CONFIGS / "inference.json"), workflow_type="infer",
                                  dataset_dir=str(data), output_dir=str(out), ckpt_path=str(checkpoint),
                                  dc_lambda=dc_lambda, **TINY_NETWORK)
        workflow.initialize()
        workflow.run()
        assert nib.load(str(out / "phantom_recon.nii.gz")).shape == (48, 48, 2)
        rows = list(csv.DictReader(open(out / "metrics.csv")))
        psnr[dc_lambda] = next(float(r["psnr"]) for r in rows if r["method"] == "recon")
    assert psnr["holdout"] > psnr[None] + 0.5, psnr


def test_evaluate_prints_baselines_beside_the_network(trained, tmp_path):
    root, checkpoint = trained
    out = tmp_path / "eval"
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "evaluate.json")],
        workflow_type="infer",
        dataset_dir=str(root),
        test_files=["train.nii.gz"],
        slice_range=[10, 12],
        output_dir=str(out),
        ckpt_path=str(checkpoint),
        tv_iterations=20,
        cg_iterations=5,
        **TINY_NETWORK,
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    # TV twice: the validation-tuned weight (scaled_tv, tv_weight) and the data-driven rule (tv_pdhg's default)
    assert [r["method"] for r in rows] == ["recon", "zero_filled", "cg_sense", "tv", "tv_auto"]
    assert all(np.isfinite(float(r["psnr"])) for r in rows)
    assert (out / "train_tv.nii.gz").is_file() and (out / "train_tv_auto.nii.gz").is_file()


def test_network_contract_with_the_shipped_protocol():
    """verify_net_in_out for a two-input network: simulate with `simulate`, reconstruct with `network_def`."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    # untrained: random updates; float32, since bfloat16 rounding (the default where the CPU has it) is not
    # equivariant to a factor of 1e3 at this tolerance
    parser.update({**TINY_NETWORK, "network_def#net#zero_init_update": False, "mixed_precision": None})
    net = parser.get_parsed_content("network_def").eval()
    simulate = parser.get_parsed_content("simulate")
    image = torch.zeros(48, 40)
    image[10:38, 8:32] = 1.0
    y, operator = simulate(image)
    x = assert_scale_equivariant(net, y, operator)
    assert x.shape == (1, 1, 48, 40) and x.dtype == torch.complex64


def test_shipped_model_loads_into_network_def():
    shipped_network(BUNDLE)


@pytest.mark.slow
def test_readme_inference_command_runs_on_the_shipped_input(tmp_path):
    shipped_network(BUNDLE)
    out = tmp_path / "outputs"
    run_bundle([CONFIGS / "inference.json"], "--output_dir", str(out))
    assert (out / "brain_8coil_recon.nii.gz").is_file()
    assert "brain_8coil" in (out / "metrics.csv").read_text()


@pytest.mark.slow
def test_torchrun_two_process_gloo_training(tmp_path):
    _volume(tmp_path / "train.nii.gz")
    _volume(tmp_path / "val.nii.gz", seed=1)
    overrides = [
        "--train_subjects", "['train.nii.gz']", "--val_subjects", "['val.nii.gz']", "--natural_dir", "$None",
        "--slices_per_axis", "4", "--patch_sizes", "[32]", "--pixels_per_batch", "2048", "--coils", "[1, 4]",
        "--val_slices_per_subject", "2", "--epochs", "1", "--epoch_length", "2", "--warmup_iterations", "1",
        "--steps", "2", "--network_def#net#features", "[8, 8]",
        "--dataset_dir", str(tmp_path), "--ckpt_dir", str(tmp_path / "models"), "--run_dir", str(tmp_path / "runs"),
    ]
    run_bundle([CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json"], *overrides, processes=2)
    assert (tmp_path / "models" / "model.pt").is_file()
    assert (tmp_path / "runs" / "checkpoint_final.pt").is_file()


def test_adapt_writes_new_weights_and_leaves_the_trained_ones(trained, tmp_path):
    _, checkpoint = trained
    before = checkpoint.read_bytes()
    data = tmp_path / "scans"
    data.mkdir()
    make_mri_sample(data / "phantom.h5", shape=(32, 32), coils=4, slices=2)
    out = tmp_path / "adapt"
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "adapt.json")],
        workflow_type="infer",
        dataset_dir=str(data),
        output_dir=str(out),
        ckpt_path=str(checkpoint),
        adapted_ckpt_path=str(tmp_path / "model_adapted.pt"),
        mask_func="random",  # a 32-pixel scan at 8x equispaced keeps too few calibration lines for coil maps
        acceleration=4,
        **{"adapt#steps": 2, **TINY_NETWORK},
    )
    workflow.initialize()
    workflow.run()
    report = json.loads((out / "adapt_report.json").read_text())
    assert report["num_samples"] == 2 and report["method"] == "R&R"
    assert (tmp_path / "model_adapted.pt").is_file() and (out / "adapt_data_term.png").is_file()
    assert checkpoint.read_bytes() == before
    # a fastMRI-like file (references smaller than the k-space grid) is scored on the fastMRI crop
    data_fastmri = tmp_path / "fastmri"
    data_fastmri.mkdir()
    _fastmri_like(data_fastmri / "scored.h5", reference=True)
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "adapt.json")], workflow_type="infer",
        dataset_dir=str(data_fastmri), output_dir=str(tmp_path / "adapt_fastmri"), ckpt_path=str(checkpoint),
        adapted_ckpt_path=str(tmp_path / "model_adapted_fastmri.pt"), mask_func="random", acceleration=4,
        **{"adapt#steps": 1, **TINY_NETWORK},
    )
    workflow.initialize()
    workflow.run()
    cropped = json.loads((tmp_path / "adapt_fastmri" / "adapt_report.json").read_text())
    assert np.isfinite(cropped["psnr_before"]) and "centre-cropped" in cropped["metric_protocol"]
    with pytest.raises(ValueError, match="output_checkpoint"):
        from rim_monai.engines.adaptation import adapt_bundle

        adapt_bundle(None, [1], None, checkpoint, checkpoint, out)

"""A third modality is a protocol object and config entries (docs/bundles.md): the MRI bundle's configs, with the
entries of docs/bundles.md replaced, train and run a denoising RIM end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.bundle import ConfigWorkflow

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "mri_rim_recon" / "configs"

# the entries docs/bundles.md lists for a denoising bundle (tiny network)
DENOISING = {
    "sigma": 0.1,
    "protocol": {"_target_": "rim_monai.data.DenoisingProtocol", "sigma": "@sigma", "seed": "@seed"},
    "operator": "$@protocol.operator_for",
    "network_def": {"_target_": "rim_monai.networks.ScaleEquivariant",
                    "net": {"_target_": "rim_monai.networks.RIM", "in_channels": 1, "complex_": False,
                            "architecture": "compact", "features": [8, 8], "dilations": [1, 2], "iterations": 2}},
}
# ... and the protocol's own training data (the MRI bundle's train.json trains on its corpus of real subjects)
DENOISING_TRAINING = {
    "train_files": "$[@dataset_dir + '/' + name for name in @train_names]",
    "train#dataset": {"_target_": "rim_monai.data.training_dataset", "protocol": "@protocol",
                      "files": "@train_files", "slice_ranges": "@train_slices", "patch_size": "@patch_size",
                      "seed": "@seed"},
    "train#dataloader": {"_target_": "DataLoader", "dataset": "@train#dataset", "batch_size": "@batch_size",
                         "shuffle": True, "num_workers": 0, "drop_last": True},
    "validate#dataset": {"_target_": "rim_monai.data.validation_dataset", "protocol": "@protocol",
                         "files": "@train_files", "slice_ranges": "@val_slices", "seed": "$@seed + 1"},
}


def _volume(folder: Path) -> Path:
    yy, xx = np.mgrid[:32, :32]
    disc = (((yy - 16) ** 2 + (xx - 15) ** 2) < 120).astype(np.float32)
    data = np.stack([disc * (50 + 10 * k) for k in range(6)], axis=-1)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), str(folder / "vol.nii.gz"))
    return folder / "vol.nii.gz"


def test_denoising_trains_and_reconstructs_with_the_shared_protocol_base(tmp_path):
    _volume(tmp_path)
    train = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"), workflow_type="train",
        **DENOISING, **DENOISING_TRAINING,
        dataset_dir=str(tmp_path), train_names=["vol.nii.gz"], train_slices=[[0, 4]], val_slices=[[4, 6]],
        patch_size=[16, 16], batch_size=2, epochs=1, epoch_length=2, ckpt_dir=str(tmp_path / "models"),
        run_dir=str(tmp_path / "runs"),
        **{"train#prepare_batch#measurement_key": "measurement", "validate#prepare_batch#measurement_key": "measurement"},
    )
    train.initialize()
    assert not train.check_properties()
    train.run()
    train.finalize()
    assert (tmp_path / "models" / "model.pt").is_file()

    out = tmp_path / "out"
    infer = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"), workflow_type="infer",
        **DENOISING, dataset_dir=str(tmp_path), output_dir=str(out), ckpt_path=str(tmp_path / "models" / "model.pt"),
        baselines={}, **{"prepare_batch#measurement_key": "measurement"},
    )
    infer.initialize()
    assert not infer.check_properties()
    infer.run()
    infer.finalize()
    recon = nib.load(str(out / "vol_recon.nii.gz"))
    np.testing.assert_allclose(recon.affine, nib.load(str(tmp_path / "vol.nii.gz")).affine)  # at the scan's place
    assert recon.shape == (32, 32, 6)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [(r["file"], r["method"]) for r in rows] == [("vol", "recon")] and np.isfinite(float(rows[0]["psnr"]))

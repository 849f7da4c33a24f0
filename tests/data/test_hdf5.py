"""Generic HDF5 and LoDoPaB-style sinogram/image pairs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from rim_monai.data import (
    DataFileError,
    HDF5SliceDataset,
    LoDoPaBDataset,
    check_sinograms,
    lodopab_files,
    read_hdf5,
    sinogram_files,
    sinogram_records,
)


def _lodopab(root, part="train", counts=(3, 2), angles=6, det=5, size=4, nan=False):
    rng = np.random.default_rng(0)
    sinos, images = [], []
    for i, n in enumerate(counts):
        s = rng.random((n, angles, det)).astype(np.float32)
        g = rng.random((n, size, size)).astype(np.float32)
        if nan and i == 1:
            s[1, 0, 0] = np.inf
        with h5py.File(root / f"observation_{part}_{i:03d}.hdf5", "w") as f:
            f.create_dataset("data", data=s)
        with h5py.File(root / f"ground_truth_{part}_{i:03d}.hdf5", "w") as f:
            f.create_dataset("data", data=g)
        sinos.append(s)
        images.append(g)
    return np.concatenate(sinos), np.concatenate(images)


def test_lodopab_pairs_in_order(tmp_path):
    sinos, images = _lodopab(tmp_path)
    _lodopab(tmp_path, part="test", counts=(1,))
    ds = LoDoPaBDataset(tmp_path, "train")
    assert len(ds) == 5
    for i in range(5):
        item = ds[i]
        assert item["sinogram"].shape == (1, 6, 5) and item["image"].shape == (1, 4, 4)
        assert item["sinogram"].dtype == torch.float32
        np.testing.assert_array_equal(item["sinogram"][0].numpy(), sinos[i])
        np.testing.assert_array_equal(item["image"][0].numpy(), images[i])
    assert ds[4]["slice"] == 1 and ds[4]["filename"].endswith("observation_train_001.hdf5")


def test_generic_keys_axis_and_transform(tmp_path):
    rng = np.random.default_rng(1)
    vol = rng.random((4, 5, 3)).astype(np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("volume", data=vol)
        f.attrs["site"] = "x"
    ds = HDF5SliceDataset(
        [{"image": tmp_path / "a.h5"}], keys={"image": "volume"}, axis=-1, transform=lambda d: {**d, "seen": True}
    )
    assert len(ds) == 3 and ds[2]["seen"]
    np.testing.assert_array_equal(ds[2]["image"][0].numpy(), vol[..., 2])
    out = read_hdf5(tmp_path / "a.h5")
    np.testing.assert_array_equal(out["volume"], vol)
    assert out["attrs"]["site"] == "x"


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_key", r"a\.h5: key 'sino': expected an HDF5 dataset of that name, found keys \['data'\]"),
        ("count_mismatch", r"key 'data': expected the same number of samples"),
        ("nan", r"observation_train_001\.hdf5: key 'data': expected finite values"),
        ("no_pair", r"ground_truth_train_000\.hdf5: expected the ground truth paired"),
        ("truncated", r"a\.h5: expected a readable HDF5 file"),
    ],
)
def test_bad_input(tmp_path, case, match):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("data", data=np.zeros((3, 2, 2), np.float32))
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f.create_dataset("data", data=np.zeros((2, 2, 2), np.float32))
    with pytest.raises(DataFileError, match=match):
        if case == "missing_key":
            HDF5SliceDataset([{"sinogram": tmp_path / "a.h5"}], keys={"sinogram": "sino"})
        elif case == "count_mismatch":
            HDF5SliceDataset([{"sinogram": tmp_path / "a.h5", "image": tmp_path / "b.h5"}])
        elif case == "nan":
            _lodopab(tmp_path, nan=True)
            LoDoPaBDataset(tmp_path)[4]
        elif case == "no_pair":
            _lodopab(tmp_path)
            (tmp_path / "ground_truth_train_000.hdf5").unlink()
            lodopab_files(tmp_path)
        elif case == "truncated":
            raw = (tmp_path / "a.h5").read_bytes()
            (tmp_path / "a.h5").write_bytes(raw[:100])
            read_hdf5(tmp_path / "a.h5")
    if case == "missing_key":
        with pytest.raises(DataFileError, match=match.replace("sino'", "sino'")):
            read_hdf5(tmp_path / "a.h5", keys=["sino"])


def test_lodopab_requires_files(tmp_path):
    with pytest.raises(ValueError, match="observation_validation_NNN"):
        lodopab_files(tmp_path, "validation")


def test_sinogram_records_pair_observations_with_their_ground_truth(tmp_path):
    for name, shape in [("observation_a.hdf5", (2, 3, 5)), ("ground_truth_a.h5", (2, 4, 4)), ("observation_b.h5", (1, 3, 5))]:
        with h5py.File(tmp_path / name, "w") as f:
            f["data"] = np.zeros(shape, np.float32)
    records = sinogram_files(tmp_path)
    assert records == [{"sinogram": str(tmp_path / "observation_a.hdf5"), "target": str(tmp_path / "ground_truth_a.h5")},
                       {"sinogram": str(tmp_path / "observation_b.h5")}]
    assert sinogram_records([tmp_path / "ground_truth_a.h5"]) == []
    check_sinograms(records, (3, 5))
    with pytest.raises(DataFileError, match="angles x detectors"):
        check_sinograms(records, (4, 5))

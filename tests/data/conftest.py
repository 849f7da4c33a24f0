"""Small files written to tmp_path for the data-layer tests (no test needs ../shared)."""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

HEADER = (
    '<?xml version="1.0" encoding="utf-8"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>'
    "<encodedSpace><matrixSize><x>{ex}</x><y>{ey}</y><z>1</z></matrixSize>"
    "<fieldOfView_mm><x>200</x><y>100</y><z>5</z></fieldOfView_mm></encodedSpace>"
    "<reconSpace><matrixSize><x>{rx}</x><y>{ry}</y><z>1</z></matrixSize>"
    "<fieldOfView_mm><x>100</x><y>100</y><z>5</z></fieldOfView_mm></reconSpace>"
    "<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>{maxi}</maximum><center>{centre}</center>"
    "</kspace_encoding_step_1></encodingLimits></encoding></ismrmrdHeader>"
)


def write_fastmri(
    path: Path, slices: int = 3, coils: int | None = 4, shape=(16, 12), recon=(8, 8), mask="1d", seed: int = 0,
    nan: bool = False,
) -> dict:
    """A tiny fastMRI-layout file; returns the arrays written."""
    rng = np.random.default_rng(seed)
    kshape = (slices, coils, *shape) if coils else (slices, *shape)
    kspace = (rng.standard_normal(kshape) + 1j * rng.standard_normal(kshape)).astype(np.complex64)
    if nan:
        kspace[0, ..., 0, 0] = np.nan
    out = {"kspace": kspace, "reconstruction_rss": rng.random((slices, *recon)).astype(np.float32)}
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        f.create_dataset("reconstruction_rss", data=out["reconstruction_rss"])
        if isinstance(mask, str) and mask == "1d":
            out["mask"] = (rng.random(shape[1]) < 0.5)
            f.create_dataset("mask", data=out["mask"])
        elif mask is not None:
            out["mask"] = np.asarray(mask)
            f.create_dataset("mask", data=out["mask"])
        header = HEADER.format(ex=shape[0], ey=shape[1], rx=recon[0], ry=recon[1], maxi=shape[1] - 3, centre=shape[1] // 2 - 1)
        f.create_dataset("ismrmrd_header", data=header.encode())
        f.attrs["max"] = 2.5
        f.attrs["norm"] = 10.0
        f.attrs["acquisition"] = "CORPD_FBK"
        f.attrs["patient_id"] = "p1"
    return out


def write_nifti(path: Path, shape=(6, 7, 5), seed: int = 0, empty_slices=(0,)) -> tuple[np.ndarray, np.ndarray]:
    """A small NIfTI volume with an oblique affine and empty slices along the last axis."""
    data = np.random.default_rng(seed).random(shape).astype(np.float32) + 0.5
    for k in empty_slices:
        data[..., k] = 0
    affine = np.array([[0.0, -1.5, 0.1, 10.0], [2.0, 0.0, 0.0, -20.0], [0.0, 0.2, 3.0, 5.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return data, affine


def write_dicom(path: Path, pixels: np.ndarray | None = None, syntax: str | None = None, encapsulated: bool = False) -> None:
    """A tiny CT slice (pydicom can write one); ``syntax`` overrides the transfer syntax UID."""
    pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    pixels = np.arange(12, dtype=np.int16).reshape(3, 4) if pixels is None else pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = "2", "-1024"
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.7], "3"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [10, 20, 30], [1, 0, 0, 0, 1, 0]
    ds.PixelData = encapsulate([b"\x00" * 24]) if encapsulated else pixels.tobytes()
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)

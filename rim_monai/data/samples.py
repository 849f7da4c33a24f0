"""Small synthetic scans the bundles ship as their default input, made by the project's own simulator.

``python -m rim_monai.data.samples mri bundles/mri_rim_recon/sample/brain_8coil.h5`` rebuilds the MRI bundle's
input: a fully sampled multi-coil k-space volume in the fastMRI layout (``kspace`` ``(slices, coils, H, W)``,
``reconstruction_rss``, ``ismrmrd_header``, attributes ``max``, ``norm``, ``acquisition``) simulated from two
procedural T1-weighted brain slices (:mod:`rim_monai.data.brain_phantom`; no real scan's licence allows shipping it),
birdcage coil maps, a smooth phase and complex noise.

``python -m rim_monai.data.samples ct bundles/ct_lpd_recon/sample/phantom_ct.nii.gz`` rebuilds the CT bundle's
input: a two-slice 256x256 int16 NIfTI volume in HU (a head-like Shepp–Logan slice and a random-ellipse slice).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import h5py
import numpy as np
import torch

from rim_monai.data.brain_phantom import brain_phantom
from rim_monai.data.file_utils import atomic_write
from rim_monai.data.phantoms import ellipse_phantom, random_ellipses, shepp_logan, shepp_logan_ellipses
from rim_monai.data.simulate_mri import smooth_phase
from rim_monai.operators import birdcage_maps, fft2c, ifft2c, rss

__all__ = ["ismrmrd_header_xml", "write_fastmri_kspace", "make_mri_sample", "make_ct_sample"]


def ismrmrd_header_xml(shape: tuple[int, int], fov_mm: tuple[float, float] = (220.0, 220.0)) -> str:
    """A minimal ISMRMRD header with encoded and recon matrix sizes ``(H, W)`` and field of view (no oversampling)."""
    h, w = shape
    space = (
        f"<matrixSize><x>{h}</x><y>{w}</y><z>1</z></matrixSize>"
        f"<fieldOfView_mm><x>{fov_mm[0]}</x><y>{fov_mm[1]}</y><z>5.0</z></fieldOfView_mm>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>'
        f"<encodedSpace>{space}</encodedSpace><reconSpace>{space}</reconSpace>"
        "<encodingLimits><kspace_encoding_step_1>"
        f"<minimum>0</minimum><maximum>{w - 1}</maximum><center>{w // 2}</center>"
        "</kspace_encoding_step_1></encodingLimits>"
        "</encoding></ismrmrdHeader>"
    )


def write_fastmri_kspace(
    path: str | os.PathLike,
    kspace: np.ndarray,
    reconstruction_rss: np.ndarray | None = None,
    acquisition: str = "SIMULATED",
    overwrite: bool = False,
) -> Path:
    """Write multi-coil k-space in the fastMRI *input* layout, atomically.

    Args:
        path: the ``.h5`` file.
        kspace: ``(slices, coils, H, W)`` complex.
        reconstruction_rss: ``(slices, H, W)`` reference images (``None``: omitted).
        acquisition: the ``acquisition`` attribute.
        overwrite: replace an existing file.

    Raises:
        ValueError: ``kspace`` not complex 4D, or a reference whose shape does not match.
    """
    kspace = np.asarray(kspace)
    if kspace.ndim != 4 or not np.iscomplexobj(kspace):
        raise ValueError(f"kspace: expected complex (slices, coils, H, W), got {kspace.shape} {kspace.dtype}.")
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("kspace", data=kspace.astype(np.complex64))
            f.create_dataset("ismrmrd_header", data=ismrmrd_header_xml(kspace.shape[-2:]).encode())
            if reconstruction_rss is not None:
                ref = np.asarray(reconstruction_rss, dtype=np.float32)
                if ref.shape != (kspace.shape[0], *kspace.shape[-2:]):
                    raise ValueError(f"reconstruction_rss: expected shape {(kspace.shape[0], *kspace.shape[-2:])}, got {ref.shape}.")
                f.create_dataset("reconstruction_rss", data=ref)
                f.attrs["max"] = float(ref.max())
                f.attrs["norm"] = float(np.linalg.norm(ref))
            f.attrs["acquisition"] = acquisition
            f.attrs["patient_id"] = path.stem
    return path


def make_mri_sample(
    path: str | os.PathLike, shape: tuple[int, int] = (192, 192), coils: int = 8, slices: int = 2,
    snr_db: float = 40.0, seed: int = 0, phantom: str = "brain", overwrite: bool = False,
) -> Path:
    """Simulate a fully sampled multi-coil volume and write it in the fastMRI layout.

    With ``phantom="brain"`` (the default, the MRI bundle's shipped input) slice ``s`` is the procedural T1-weighted
    brain :func:`~rim_monai.data.brain_phantom.brain_phantom` of seed ``seed + s``; with ``"ellipses"`` slice 0 is
    the modified Shepp–Logan phantom and the others random-ellipse phantoms (Adler & Öktem's distribution). Each
    slice gets a smooth random phase, the same ``coils`` birdcage maps, and complex Gaussian noise at ``snr_db`` of
    the k-space RMS. The reference ``reconstruction_rss`` is the root-sum-of-squares of the noisy coil images.

    Raises:
        ValueError: for a ``phantom`` other than ``"brain"`` or ``"ellipses"``.
    """
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    if phantom == "brain":
        images = [brain_phantom(shape, seed=seed + s) for s in range(slices)]
    elif phantom == "ellipses":
        images = [shepp_logan(shape)] + [ellipse_phantom(random_ellipses(rng), shape) for _ in range(slices - 1)]
    else:
        raise ValueError(f"make_mri_sample: phantom must be 'brain' or 'ellipses', got {phantom!r}.")
    sens = birdcage_maps(coils, shape)
    kspace = []
    for image in images:
        x = torch.as_tensor(np.asarray(image, dtype=np.float32)) * torch.exp(1j * smooth_phase(shape, 1.0, 2, generator))
        k = fft2c(sens * x[None])
        power = k.abs().pow(2).mean().sqrt()
        noise = torch.complex(torch.randn(k.shape, generator=generator), torch.randn(k.shape, generator=generator))
        kspace.append(k + noise * power * 10 ** (-snr_db / 20) / np.sqrt(2))
    kspace_np = torch.stack(kspace).numpy()
    reference = rss(ifft2c(torch.from_numpy(kspace_np)), dim=1).numpy()
    return write_fastmri_kspace(path, kspace_np, reference, overwrite=overwrite)


# HU added by each modified Shepp-Logan ellipse on an air (-1000 HU) background: skull 1000 HU, brain 40 HU,
# ventricles 0 HU, small lesions 70-80 HU.
_CT_HEAD_HU = (2000.0, -960.0, -40.0, -40.0, 30.0, 30.0, 40.0, 40.0, 40.0, 40.0)


def make_ct_sample(
    path: str | os.PathLike, shape: tuple[int, int] = (256, 256), slices: int = 2, pixel_mm: float = 1.0,
    thickness_mm: float = 5.0, seed: int = 0, overwrite: bool = False,
) -> Path:
    """Write a small synthetic CT volume in HU (int16 NIfTI, ``(H, W, slices)``) with a 1 mm in-plane affine.

    Slice 0 is a head-like Shepp–Logan phantom in HU (air -1000, skull 1000, brain 40, ventricles 0, lesions 70–80);
    the others are random-ellipse phantoms (Adler & Öktem's distribution) read as attenuation relative to water,
    ``HU = 1000 (max(v, 0) - 1)``. The affine has ``pixel_mm`` pixels, ``thickness_mm`` slices and its origin at
    the centre of the first slice.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    table = shepp_logan_ellipses(modified=True)
    table[:, 0] = _CT_HEAD_HU
    images = [ellipse_phantom(table, shape) - 1000.0]
    for _ in range(slices - 1):
        images.append(1000.0 * (np.clip(ellipse_phantom(random_ellipses(rng), shape), 0.0, None) - 1.0))
    volume = np.stack(images, axis=-1).round().astype(np.int16)
    affine = np.diag([pixel_mm, pixel_mm, thickness_mm, 1.0])
    affine[:2, 3] = [-(shape[0] - 1) * pixel_mm / 2.0, -(shape[1] - 1) * pixel_mm / 2.0]
    image = nib.Nifti1Image(volume, affine)
    image.header.set_xyzt_units("mm")
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as tmp:
        nib.save(image, str(tmp))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["mri", "ct"], help="which bundle's sample to build")
    parser.add_argument("path", help="output .h5 file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phantom", choices=["brain", "ellipses"], default="brain", help="MRI only: what to simulate")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.kind == "ct":
        print(make_ct_sample(args.path, seed=args.seed, overwrite=args.overwrite))
    else:
        print(make_mri_sample(args.path, seed=args.seed, phantom=args.phantom, overwrite=args.overwrite))


if __name__ == "__main__":
    main()

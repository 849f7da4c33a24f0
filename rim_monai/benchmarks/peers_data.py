"""Data and scoring helpers of the peer benchmark (:mod:`rim_monai.benchmarks.peers`).

Two real problems, built the same way for every contender:

- **CT**: the NEMA WG-04 chest slice ``ct/dicom/WG04/CT1_UNC.dcm`` in HU, to attenuation
  :math:`\\mu = 0.02\\,(1 + \\mathrm{HU}/1000)` mm⁻¹ clamped at 0, area-averaged to ``size``², measured by a
  ray transform with Poisson counts :math:`N \\sim \\mathrm{Poisson}(I_0 e^{-s A\\mu})` (``s`` the pixel size in
  mm, zero counts clamped to 0.1) and post-logged, :math:`y = -\\log(N / I_0) / s`;
- **MRI**: the real 8-coil BART brain ``mri_kspace/bart_brain_8ch`` (Poisson-disc undersampled as acquired), with the
  root-sum-of-squares of the 2-map ESPIRiT image ``img.cfl`` as the reference.

Scores follow the GUIDE: CT PSNR/SSIM with data range max − min of the reference; MRI magnitude images, each
least-squares scaled onto the reference first (the reconstructions' intensity scale is arbitrary), data range max of
the reference (fastMRI's volume protocol).

Only :func:`load_ct_slice` / :func:`load_bart_brain` need ``../shared/data``; everything else is pure torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CT_FILE",
    "BART_DIR",
    "MU_WATER",
    "require_file",
    "hu_to_attenuation",
    "area_downsample",
    "poisson_sinogram",
    "align_scale",
    "ct_score",
    "mri_score",
    "MRIData",
    "load_ct_slice",
    "load_bart_brain",
]

#: The CT slice, relative to the data folder.
CT_FILE = "ct/dicom/WG04/CT1_UNC.dcm"
#: The BART brain folder (``ksp`` and ``img`` .cfl/.hdr pairs), relative to the data folder.
BART_DIR = "mri_kspace/bart_brain_8ch"
#: Linear attenuation of water in mm⁻¹ (about 60 keV).
MU_WATER = 0.02


def require_file(data_dir: str | os.PathLike, relative: str) -> Path:
    """``data_dir / relative``, or a ``FileNotFoundError`` that names the missing file and the ``--data-dir`` option.

    Raises:
        FileNotFoundError: when the file does not exist.
    """
    path = Path(data_dir) / relative
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: missing; the peer benchmark reads real scans from the shared data folder "
            f"(see ../shared/data/README.md); pass --data-dir to point at it."
        )
    return path


def hu_to_attenuation(hu: torch.Tensor, mu_water: float = MU_WATER) -> torch.Tensor:
    r""":math:`\mu = \mu_\text{water}(1 + \mathrm{HU}/1000)` in mm⁻¹, clamped at 0."""
    return (mu_water * (1.0 + hu / 1000.0)).clamp_min(0.0)


def area_downsample(image: torch.Tensor, size: int) -> torch.Tensor:
    """Area-average the last two axes of ``(B, C, H, W)`` to ``(size, size)`` (exact block means when divisible)."""
    return F.interpolate(image, size=(size, size), mode="area")


def poisson_sinogram(line_integrals: torch.Tensor, photons: float, pixel_mm: float, seed: int = 0,
                     min_counts: float = 0.1) -> torch.Tensor:
    r"""Post-log Poisson transmission data :math:`y = -\log(\max(N, c)/I_0)/s`, :math:`N \sim
    \mathrm{Poisson}(I_0 e^{-s\,p})`.

    Args:
        line_integrals: noise-free :math:`p = A\mu` in pixel units.
        photons: :math:`I_0`, photons per detector bin.
        pixel_mm: :math:`s`, the pixel size in mm (:math:`\mu` is per mm).
        seed: seed of the Poisson draw.
        min_counts: :math:`c`, the clamp of zero counts.

    Returns:
        ``y`` shaped like ``line_integrals``, an estimate of :math:`p`.
    """
    generator = torch.Generator().manual_seed(seed)
    counts = torch.poisson(photons * torch.exp(-pixel_mm * line_integrals.double()), generator=generator)
    return (-torch.log(counts.clamp_min(min_counts) / photons) / pixel_mm).to(line_integrals.dtype)


def align_scale(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    r"""The least-squares multiple :math:`a\,\hat x` of ``estimate`` closest to ``reference``, per sample (dim 0)."""
    dims = tuple(range(1, estimate.ndim))
    num = (estimate * reference).sum(dim=dims, keepdim=True)
    den = (estimate * estimate).sum(dim=dims, keepdim=True).clamp_min(1e-30)
    return estimate * (num / den)


def ct_score(estimate: torch.Tensor, reference: torch.Tensor, with_ssim: bool = False) -> dict[str, torch.Tensor]:
    """CT PSNR (and SSIM) per sample, data range max − min of the reference, no rescaling.

    Args:
        estimate: ``(B, 1, H, W)`` real attenuation images.
        reference: ``(1, 1, H, W)`` or ``(B, 1, H, W)``.
        with_ssim: also compute SSIM (slower).
    """
    from rim_monai.metrics import psnr, ssim

    x = estimate.detach().double()
    ref = reference.double().expand_as(x)
    out = {"psnr": psnr(x, ref, protocol="per_image", reduction="none")}
    if with_ssim:
        out["ssim"] = ssim(x, ref, protocol="per_image", reduction="none")
    return out


def mri_score(estimate: torch.Tensor, reference: torch.Tensor, with_ssim: bool = False) -> dict[str, torch.Tensor]:
    """MRI PSNR (and SSIM) per sample of the magnitude, least-squares scaled onto the reference, data range max of it.

    Args:
        estimate: ``(B, 1, H, W)`` complex or real images.
        reference: ``(1, 1, H, W)`` or ``(B, 1, H, W)`` magnitude.
        with_ssim: also compute SSIM (slower).
    """
    from rim_monai.metrics import psnr, ssim

    x = estimate.detach()
    x = (x.abs() if x.is_complex() else x).double()
    ref = reference.double().expand_as(x)
    x = align_scale(x, ref)
    out = {"psnr": psnr(x, ref, protocol="volume", reduction="none")}
    if with_ssim:
        out["ssim"] = ssim(x, ref, protocol="volume", reduction="none")
    return out


def load_ct_slice(data_dir: str | os.PathLike, size: int) -> tuple[torch.Tensor, float]:
    """The WG-04 chest slice as attenuation ``(1, 1, size, size)`` in mm⁻¹ and its pixel size in mm.

    Raises:
        FileNotFoundError: naming the missing DICOM file.
    """
    from rim_monai.data import read_dicom

    record = read_dicom(require_file(data_dir, CT_FILE))
    hu = torch.from_numpy(np.ascontiguousarray(record["image"], dtype=np.float32))[None]  # (1, 1, 512, 512)
    mu = area_downsample(hu_to_attenuation(hu), size)
    pixel_mm = float(record["spacing"][0]) * hu.shape[-1] / size
    return mu, pixel_mm


@dataclass
class MRIData:
    """The BART brain: k-space ``(1, coils, H, W)`` complex64, its sampling mask ``(H, W)`` and the reference."""

    kspace: torch.Tensor
    mask: torch.Tensor
    reference: torch.Tensor  # (1, 1, H, W) magnitude


def _centre_crop_kspace(kspace: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    h, w = kspace.shape[-2:]
    top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
    return kspace[..., top : top + shape[0], left : left + shape[1]]


def load_bart_brain(data_dir: str | os.PathLike, crop: tuple[int, int] | None = None) -> MRIData:
    """Read the BART brain; ``crop`` keeps only the k-space centre (a low-resolution version, for ``--quick``).

    Raises:
        FileNotFoundError: naming the missing ``.cfl``/``.hdr`` file.
    """
    from rim_monai.data import read_bart
    from rim_monai.operators import fft2c, ifft2c

    folder = Path(data_dir) / BART_DIR
    for name in ("ksp.cfl", "ksp.hdr", "img.cfl", "img.hdr"):
        require_file(data_dir, f"{BART_DIR}/{name}")
    ksp = read_bart(folder / "ksp")["data"]  # (1, H, W, coils)
    img = read_bart(folder / "img")["data"]  # (1, H, W, 1, maps)
    kspace = torch.from_numpy(np.ascontiguousarray(np.moveaxis(ksp[0], -1, 0)))[None]  # (1, coils, H, W)
    maps = torch.from_numpy(np.ascontiguousarray(np.moveaxis(img.reshape(img.shape[1], img.shape[2], -1), -1, 0)))
    if crop is not None:
        kspace = _centre_crop_kspace(kspace, crop)
        maps = ifft2c(_centre_crop_kspace(fft2c(maps), crop))
    reference = torch.sqrt((maps.abs() ** 2).sum(0))[None, None].float()
    mask = (kspace.abs() > 0).any(dim=1)[0].float()
    return MRIData(kspace=kspace.to(torch.complex64), mask=mask, reference=reference)

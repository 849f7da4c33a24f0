r"""Real slices and their simulated measurements for the classical-weights study (:mod:`rim_monai.experiments.classical_weights`).

Built from the operators (and :func:`~rim_monai.data.smooth_phase`), with the bundles' protocols:

- **CT** (the CT bundle's): a 512² slice in HU covers a 256 mm field of view; :math:`\mu = 0.02(1 + \mathrm{HU}/1000)`
  mm⁻¹ clamped at 0; counts :math:`N \sim \mathrm{Poisson}(I_0 e^{-A_{512}\mu})` projected on the 512² grid (0.5 mm
  pixels, no inverse crime) with the detector of the 256² operator (parallel beam, 60 views, 1 mm bins), zero counts
  clamped to 0.1, :math:`y = -\log(N/I_0)`; the reference is :math:`\mu` averaged to 256² (1 mm pixels).
- **MRI** (the MRI bundle's): a magnitude slice padded to a square, resized to 256² and scaled to its 99.5 %
  quantile, a smooth random phase (:math:`\le \pi/2`, spatial frequencies :math:`\le 2`), 8 birdcage coils, a fastMRI
  random 1D mask (centre fraction 0.08 at 4x, 0.04 at 8x), complex Gaussian noise :math:`E|n|^2 = \sigma^2` with
  :math:`\sigma = \mathrm{rms}(F(Sx))/10^{\mathrm{SNR}/20}` on the fully sampled coil k-space (``SimulateKSpaced``).

Files are read from ``../shared/data`` (``root``); readers: ``pydicom``, ``nibabel``, ``numpy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rim_monai.data.simulate_mri import smooth_phase
from rim_monai.operators import MaskedFourier, RayTransform, birdcage_maps, fft2c, random_mask

__all__ = ["CT_FILES", "MRI_FILES", "Case", "read_ct", "read_mri", "simulate_ct", "simulate_mri", "MU_WATER",
           "add_mri_case_arguments", "mri_case"]

MU_WATER = 0.02  # per mm

#: name -> (path under the data root, role); "tune" subjects chose tau, "check" subjects only verify it
CT_FILES: dict[str, tuple[str, str]] = {
    "chest (WG-04 CT1)": ("ct/dicom/WG04/CT1_UNC.dcm", "tune"),
    "abdomen (dcmqi 01)": ("ct/dicom/dcmqi_ct-3slice/01.dcm", "tune"),
    "head (WG-04 CT2)": ("ct/dicom/WG04/CT2_UNC.dcm", "check"),
    "chest (COVID A002304)": ("ct/slices/covid19nysbu_chestCT_10pts/A002304_axial_19001231-076.dcm", "check"),
    "spine (GE GH1308)": ("ct/slices/fodicom_GH1308_GE_spine_disc.dcm", "tune"),  # a check that moved tau to 1
    "neck (dicompyler)": ("ct/slices/dwv_dicompyler-ct.0.dcm", "check"),
    "head (Picker)": ("ct/slices/dicomsamples_CT-MONO2-16-brain_Picker.dcm", "check"),
}
#: name -> (path, how to take the slice, role)
MRI_FILES: dict[str, tuple[str, str, str]] = {
    "brain (MNI T1)": ("mri_image/nifti/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", "z100", "tune"),
    "head (vispy T1)": ("mri_image/volumes/vispy_mri_T1_256cube.npz", "npz128", "tune"),
    "brain (WG-04 MR1)": ("mri_image/dicom/WG04/MR1_UNC.dcm", "dicom", "check"),
    "knee (MOVEKNEE f10)": ("mri_image/slices/fodicom_MOVEKNEE_sag_19frames.dcm", "frame10", "check"),
    "abdomen (Philips survey)": ("mri_image/slices/fodicom_abd1_Philips_survey", "dir5", "check"),
}


@dataclass
class Case:
    """One simulated acquisition: measurements ``y``, operator ``A``, reference ``x`` (the image ``A`` maps), and
    the true noise level (``sigma`` per measured entry, or ``photons``)."""

    y: torch.Tensor
    A: object
    x: torch.Tensor
    sigma: float | None = None
    photons: float | None = None


def _dicom_pixels(path: Path, frame: int | None = None) -> np.ndarray:
    import pydicom

    ds = pydicom.dcmread(str(path), force=True)
    if not hasattr(ds.file_meta, "TransferSyntaxUID"):
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    pixels = ds.pixel_array.astype(np.float64)
    if frame is not None and pixels.ndim == 3:
        pixels = pixels[frame]
    slope, intercept = float(getattr(ds, "RescaleSlope", 1.0)), float(getattr(ds, "RescaleIntercept", 0.0))
    return pixels * slope + intercept


def read_ct(path: str | Path) -> torch.Tensor:
    """A CT slice in HU, resampled to ``(512, 512)`` when it has another size (float32)."""
    hu = torch.from_numpy(_dicom_pixels(Path(path))).float()
    if tuple(hu.shape) != (512, 512):
        hu = F.interpolate(hu[None, None], size=(512, 512), mode="bilinear", align_corners=False)[0, 0]
    return hu


def _square(image: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    h, w = t.shape
    n = max(h, w)
    t = F.pad(t, ((n - w) // 2, n - w - (n - w) // 2, (n - h) // 2, n - h - (n - h) // 2))
    t = F.interpolate(t[None, None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0, 0]
    t = t.clamp_min(0)
    return t / torch.quantile(t.flatten(), 0.995)


def read_mri(path: str | Path, how: str, size: int = 256) -> torch.Tensor:
    """A magnitude MR slice ``(size, size)``, float32, scaled to its 99.5 % quantile (see :data:`MRI_FILES`)."""
    path = Path(path)
    if how.startswith("z"):
        import nibabel as nib

        image = np.asarray(nib.load(str(path)).dataobj)[:, :, int(how[1:])]
    elif how.startswith("npz"):
        image = np.load(path)["data"][:, :, int(how[3:])]
    elif how.startswith("frame"):
        image = _dicom_pixels(path, int(how[5:]))
    elif how.startswith("dir"):
        image = _dicom_pixels(sorted(p for p in path.iterdir() if p.is_file())[int(how[3:])])
    else:
        image = _dicom_pixels(path)
    return _square(np.asarray(image, dtype=np.float32), size)


def simulate_ct(hu: torch.Tensor, photons: float, seed: int = 0, size: int = 256, views: int = 60,
                geometry: str = "parallel") -> Case:
    """Poisson transmission data of a 512² HU slice on the CT bundle's geometry (module docstring)."""
    mu = (MU_WATER * (1 + hu / 1000.0)).clamp_min(0)[None, None]
    A = RayTransform((size, size), num_angles=views, geometry=geometry, pixel_size=1.0, backend="matrix")
    fine = RayTransform((512, 512), num_angles=views, geometry=geometry, pixel_size=size / 512,
                        num_detectors=A.num_detectors, detector_spacing=A.detector_spacing,
                        src_radius=A.src_radius, det_radius=A.det_radius, backend="matrix")
    g = torch.Generator().manual_seed(seed)
    counts = torch.poisson(photons * torch.exp(-fine(mu).double()), generator=g).clamp_min(0.1)
    y = (-torch.log(counts / photons)).float()
    x = F.avg_pool2d(mu, 512 // size)
    return Case(y, A, x, photons=photons)


def simulate_mri(image: torch.Tensor, acceleration: float, snr_db: float, coils: int = 8, seed: int = 0,
                 mask: torch.Tensor | None = None) -> Case:
    """Multi-coil undersampled k-space of a magnitude image with the MRI bundle's protocol (module docstring)."""
    shape = tuple(int(s) for s in image.shape)
    g = torch.Generator().manual_seed(seed)
    x = torch.polar(image.float(), smooth_phase(shape, max_phase=math.pi / 2, generator=g))[None, None]
    sens = birdcage_maps(coils, shape)  # shared by the batch: the operator norm is computed once and cached
    if mask is None:
        mask = random_mask(shape, acceleration, center_fraction=0.32 / acceleration, seed=seed)
    full = fft2c(sens * x)
    sigma = float(full.abs().pow(2).mean().sqrt()) / 10 ** (snr_db / 20)
    noise = torch.complex(torch.randn(full.shape, generator=g), torch.randn(full.shape, generator=g))
    y = ((full + noise * (sigma / math.sqrt(2))) * mask).to(torch.complex64)
    return Case(y, MaskedFourier(mask, sens), x, sigma=sigma)


def add_mri_case_arguments(parser, size: int = 192) -> None:
    """Command-line options of one simulated MRI case: ``--data``, ``--image`` (a substring of an :data:`MRI_FILES`
    name), ``--acceleration``, ``--snr`` (dB), ``--size``."""
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
    parser.add_argument("--image", default="MNI", help="a substring of an MRI_FILES name")
    parser.add_argument("--acceleration", type=int, default=4)
    parser.add_argument("--snr", type=float, default=40.0)
    parser.add_argument("--size", type=int, default=size)


def mri_case(args) -> tuple[str, Case]:
    """``(name, case)`` for the options of :func:`add_mri_case_arguments` (8 coils, :func:`simulate_mri`)."""
    name = next(n for n in MRI_FILES if args.image in n)
    path, how, _ = MRI_FILES[name]
    return name, simulate_mri(read_mri(Path(args.data) / path, how, size=args.size), args.acceleration, args.snr)

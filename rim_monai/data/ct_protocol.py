r"""The CT bundle's acquisition protocol: scans in HU (or measured sinograms) in, ``(sinogram, target)`` out.

The default acquisition (:class:`CTProtocol`):

- a 256x256 reconstruction grid of ``pixel_mm`` = 1 mm pixels (a 256 mm field of view), the ray transform
  ``RayTransform((256, 256), num_angles=60, geometry="parallel")`` (60 views over 180°, 363 detector bins of one
  pixel, ASTRA's discretisation; :func:`ct_operator`) — or ``geometry="fan"`` for the fan-beam configuration;
- Hounsfield units to linear attenuation, :math:`\mu = \mu_\text{water}(1 + \text{HU}/1000)` with
  :math:`\mu_\text{water}` = 0.02 mm⁻¹ (:data:`~rim_monai.data.MU_WATER`, about water at 60 keV), clamped at 0 (air
  and the scanner's padding below -1000 HU carry no attenuation; :class:`~rim_monai.data.HUToAttenuationd`);
- low-dose Poisson noise: :math:`N \sim \mathrm{Poisson}(I_0 e^{-s\,A\mu})` with :math:`I_0 = 10^4` photons per
  detector bin, :math:`s` = ``pixel_mm`` (the operator measures lengths in pixels, :math:`\mu` is per mm), zero counts
  clamped to 0.1, and the post-log sinogram :math:`y = -\log(N/I_0)/s`, an estimate of :math:`A\mu`;
- no inverse crime: the sinogram is simulated on a grid ``upsample`` = 2 times finer (the original 512² slice when the
  scan has exactly that size, else a bilinear upsampling) with the same views and detector bins.

Items carry ``"sinogram"`` ``(1, angles, detectors)`` and ``"target"`` ``(1, 256, 256)`` (attenuation in mm⁻¹, a
``MetaTensor`` keeping the slice's geometry), plus ``"filename"`` / ``"slice"`` for the bundle's saver. The network
reconstructs attenuation; the bundle converts it back to HU with :class:`~rim_monai.data.AttenuationToHUd`.

Random-ellipse phantoms (:class:`~rim_monai.data.PhantomSliceDataset`, Adler & Öktem's distribution) enter the same
pipeline in HU (:func:`~rim_monai.data.phantom_to_hu`): they are the validation and test sets, and most of the
training stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from monai.transforms import Compose, EnsureTyped, RandFlipd, RandRotate90d
from torch.utils.data import Dataset

from rim_monai.data.datasets import RepeatDataset, concat_datasets
from rim_monai.data.file_utils import PathLike
from rim_monai.data.hdf5 import HDF5SliceDataset, check_sinograms, read_hdf5, sinogram_records
from rim_monai.data.intensity import MU_WATER, HUToAttenuationd
from rim_monai.data.keys import Keys
from rim_monai.data.phantoms import PhantomSliceDataset
from rim_monai.data.protocol import DICOM_SCANS, NIFTI_SCANS, AcquisitionProtocol
from rim_monai.data.scans import HDF5, ScanFormat
from rim_monai.data.simulate_ct import SimulateSinogramd, finer_ray_transform
from rim_monai.data.slicing import FitToGridd
from rim_monai.operators import RayTransform

__all__ = ["CT_IMAGE_SHAPE", "CT_NUM_ANGLES", "CT_PHOTONS", "CT_PIXEL_MM", "ct_operator", "CTProtocol"]

CT_IMAGE_SHAPE = (256, 256)
CT_NUM_ANGLES = 60
CT_PHOTONS = 1e4
CT_PIXEL_MM = 1.0


def ct_operator(
    geometry: str = "parallel",
    image_shape: Sequence[int] = CT_IMAGE_SHAPE,
    num_angles: int = CT_NUM_ANGLES,
    backend: str = "matrix",
    **kwargs: Any,
) -> RayTransform:
    """The protocol's ray transform: ``RayTransform(image_shape, num_angles, geometry, backend=backend, **kwargs)``.

    Example:
        >>> ct_operator(image_shape=(32, 32), num_angles=8).range_shape
        (8, 46)
    """
    return RayTransform(tuple(int(s) for s in image_shape), num_angles=int(num_angles), geometry=geometry,
                        backend=backend, **kwargs)


class CTProtocol(AcquisitionProtocol):
    r"""The CT acquisition (module docstring): an image ``(H, W)`` in HU -> ``(y, operator)``, and its datasets.

    ``protocol(image)`` makes the measurements the shipped network expects, to reconstruct with
    ``network(y, operator)`` (attenuation in mm⁻¹; :class:`~rim_monai.data.AttenuationToHU` for HU). The datasets:

    - :meth:`reconstruction_dataset`: NIfTI volumes (sliced along ``axis``) and single-slice DICOM files in HU,
      fitted to the grid (:class:`~rim_monai.data.FitToGridd`) and simulated with one seeded noise stream in item
      order; LoDoPaB-style HDF5 (``observation_<stem>.hdf5`` with ``data`` ``(N, angles, detectors)`` of post-log
      sinograms in the operator's units, optionally ``ground_truth_<stem>.hdf5``) used as stored; and
      ``phantoms`` fixed ellipse phantoms (:meth:`extra_datasets`);
    - :meth:`validation_dataset`: fixed ellipse phantoms;
    - :meth:`training_dataset`: fresh ellipse phantoms mixed with augmented real DICOM slices.

    Args:
        operator: the ray transform (default :func:`ct_operator`, parallel beam).
        photons: :math:`I_0`, incident photons per detector bin.
        mu_water: attenuation of water per mm.
        pixel_mm: pixel size in mm (the optical depth per unit of :math:`A\mu`).
        upsample: simulate on a grid this many times finer.
        seed: seed of the noise (``protocol(image)`` and the reconstruction datasets).

    Raises:
        ValueError: non-positive ``photons``, ``mu_water`` or ``pixel_mm``.

    Example:
        >>> protocol = CTProtocol(ct_operator(image_shape=(32, 32), num_angles=8))
        >>> y, A = protocol(torch.zeros(32, 32))  # water
        >>> y.shape
        torch.Size([1, 1, 8, 46])
    """

    measurement_key: ClassVar[str] = Keys.SINOGRAM
    helper_keys: ClassVar[tuple[str, ...]] = (Keys.IMAGE_FINE,)
    formats: ClassVar[Mapping[str, ScanFormat]] = {
        "nifti": NIFTI_SCANS,
        "dicom": DICOM_SCANS,
        "sinograms": ScanFormat(HDF5, "observation_*.hdf5", r"observation_.+\.(?:hdf5|h5)", read_hdf5),
    }
    skip_empty_slices: ClassVar[bool] = False

    def __init__(
        self,
        operator: RayTransform | None = None,
        photons: float = CT_PHOTONS,
        mu_water: float = MU_WATER,
        pixel_mm: float = CT_PIXEL_MM,
        upsample: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if photons <= 0 or mu_water <= 0 or pixel_mm <= 0:
            raise ValueError(
                f"photons, mu_water, pixel_mm: expected positive numbers, got {photons}, {mu_water}, {pixel_mm}."
            )
        self.operator = operator if operator is not None else ct_operator()
        self.photons, self.mu_water, self.pixel_mm = float(photons), float(mu_water), float(pixel_mm)
        self.upsample = int(upsample)
        # the finer simulation grid is built once and shared by every pipeline of this protocol
        self.simulation_operator = finer_ray_transform(self.operator, self.upsample)

    # ------------------------------------------------------------------ the acquisition
    def simulation(self) -> Compose:
        """HU slice ``{"image": (1, h, w)}`` -> ``{"sinogram", "target", ...}``: :class:`~rim_monai.data.FitToGridd`
        (area resampling to the grid, keeping a 2x original as the fine image),
        :class:`~rim_monai.data.HUToAttenuationd` and :class:`~rim_monai.data.SimulateSinogramd` (Poisson,
        simulated ``upsample`` times finer)."""
        return Compose([
            FitToGridd(Keys.IMAGE, tuple(self.operator.domain_shape), Keys.IMAGE_FINE, self.upsample),
            HUToAttenuationd([Keys.IMAGE, Keys.IMAGE_FINE], mu_water=self.mu_water, allow_missing_keys=True),
            SimulateSinogramd(
                Keys.IMAGE, operator=self.operator, noise="poisson", photons=self.photons,
                attenuation_scale=self.pixel_mm, simulation_operator=self.simulation_operator,
                fine_image_key=Keys.IMAGE_FINE,
            ),
        ])

    def operator_for(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> RayTransform:
        """The protocol's ray transform (the same for every item), on ``device`` when given."""
        if device is not None and self.operator.device != torch.device(device):
            self.operator = self.operator.to(device)
        return self.operator

    def check_image(self, image: torch.Tensor) -> torch.Tensor:
        """A 2D image in HU on the operator's grid, as float32.

        Raises:
            ValueError: another shape.
        """
        image = image.float()
        shape = tuple(self.operator.domain_shape)
        if image.ndim != 2 or tuple(image.shape) != shape:
            raise ValueError(
                f"image: expected a 2D reference image of shape {shape} in HU, got shape {tuple(image.shape)}."
            )
        return image

    # ------------------------------------------------------------------ sources
    def read_scans(self, fmt: str, paths: Sequence[Path], slice_range: Sequence[int] | None, axis: int) -> Dataset:
        """NIfTI and DICOM slices (simulated), or LoDoPaB-style sinograms used as stored (their shape must be the
        operator's range; they carry no slice geometry, so the saver stacks them along the last axis)."""
        if fmt != "sinograms":
            return super().read_scans(fmt, paths, slice_range, axis)
        records = sinogram_records(paths)
        check_sinograms(records, self.operator.range_shape)
        plain = EnsureTyped([Keys.SINOGRAM, Keys.TARGET], track_meta=False, allow_missing_keys=True)
        return HDF5SliceDataset(records, transform=plain)

    def phantoms(self, length: int, seed: int, fresh: bool = False, name: str | None = None) -> PhantomSliceDataset:
        """``length`` ellipse phantoms of stream ``seed`` simulated under the protocol (see
        :class:`~rim_monai.data.PhantomSliceDataset`; named ``ellipses_seed<seed>_<i>`` unless ``name`` is given)."""
        return PhantomSliceDataset(length, self.operator.domain_shape, seed, self.upsample, self.pipeline(), fresh,
                                   name=name or f"ellipses_seed{seed}")

    def extra_datasets(self, phantoms: int = 0, phantom_seed: int = 2) -> list[Dataset]:  # type: ignore[override]
        """``phantoms`` fixed random-ellipse phantoms of stream ``phantom_seed`` after the scans of
        :meth:`reconstruction_dataset` (2 is the bundle's test split; training uses 0, validation 1), each its own
        "scan"; with phantoms the folder (or ``files``) may be empty or absent.

        Example:
            >>> protocol = CTProtocol(ct_operator(image_shape=(32, 32), num_angles=8))
            >>> ds = protocol.reconstruction_dataset(phantoms=2)
            >>> ds[0]["sinogram"].shape, ds[0]["target"].shape
            (torch.Size([1, 8, 46]), torch.Size([1, 32, 32]))
        """
        return [self.phantoms(phantoms, phantom_seed)] if phantoms > 0 else []

    # ------------------------------------------------------------------ datasets
    def validation_dataset(self, length: int = 4, seed: int = 1) -> Dataset:  # type: ignore[override]
        """``length`` fixed random-ellipse phantoms of stream ``seed``, simulated under the protocol."""
        return self.phantoms(length, seed)

    def training_dataset(  # type: ignore[override]
        self,
        length: int = 1000,
        dicom_files: Sequence[PathLike] | None = None,
        real_fraction: float = 0.25,
        augment: bool = True,
        seed: int = 0,
    ) -> Dataset:
        """Training slices: fresh random-ellipse phantoms mixed with (augmented) real CT slices, simulated on the fly.

        An epoch has ``length`` items: ``round(real_fraction * length)`` of them are real slices from ``dicom_files``
        (cycled; random flips and 90° rotations when ``augment``, one random stream seeded with ``seed + 1``; the 512²
        originals are the fine simulation grid), the rest are new ellipse phantoms on every access (stream ``seed``,
        so epochs differ). Each item gets its own noise draw.

        Args:
            length: items per epoch.
            dicom_files: real CT slices in HU (``None`` or empty: phantoms only). Keep the test slices out.
            real_fraction: share of real slices per epoch.
            augment: flips / rotations of the real slices.
            seed: seed of phantoms, augmentation and noise.

        Raises:
            ValueError: ``length`` < 1 or ``real_fraction`` outside [0, 1].
        """
        if int(length) < 1:
            raise ValueError(f"length: expected a positive number of items per epoch, got {length}.")
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction: expected a value in [0, 1], got {real_fraction}.")
        files = [str(f) for f in (dicom_files or [])]
        n_real = int(round(real_fraction * length)) if files else 0
        parts: list[Dataset] = []
        if length - n_real > 0:
            parts.append(self.phantoms(length - n_real, seed, fresh=True, name="ellipses"))
        if n_real > 0:
            grid = tuple(self.operator.domain_shape)
            steps: list[Callable] = [FitToGridd(Keys.IMAGE, grid, Keys.IMAGE_FINE, self.upsample)]
            if augment:
                keys = [Keys.IMAGE, Keys.IMAGE_FINE]
                steps += [RandFlipd(keys, prob=0.5, spatial_axis=0, allow_missing_keys=True),
                          RandFlipd(keys, prob=0.5, spatial_axis=1, allow_missing_keys=True),
                          RandRotate90d(keys, prob=0.75, max_k=3, allow_missing_keys=True)]
            parts.append(RepeatDataset(self.dicom_slices(files, self.pipeline(*steps), seed=seed + 1), n_real))
        return concat_datasets(parts)

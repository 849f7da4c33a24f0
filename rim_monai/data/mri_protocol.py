r"""The MRI bundle's acquisition protocol: a folder of scans in, ``(kspace, mask, sens, target)`` out.

The default acquisition (:class:`MRIProtocol`), in the fastMRI conventions:

- magnitude images (NIfTI volumes, DICOM slices) scaled by their volume's 99.5th percentile
  (:class:`~rim_monai.data.PercentileScaled`), given a smooth synthetic phase, ``coils`` = 8 birdcage coil maps and
  optional complex noise at ``snr_db``, then undersampled (:class:`~rim_monai.data.SimulateKSpaced`):
  :math:`y_c = M \odot (F(S_c x) + n_c)`;
- the mask :math:`M`: 1D random Cartesian at ``acceleration`` = 4 (centre fraction 0.08 at 4x, 0.04 at 8x) by
  default, ``"equispaced"`` or 2D ``"poisson_disc"`` (:data:`~rim_monai.operators.MASK_FUNCTIONS`);
- measured k-space (fastMRI-layout ``.h5``) is used as stored: fully sampled k-space is undersampled with the same
  mask family (one mask per volume, :class:`~rim_monai.data.UndersampleKSpaced`) and coil maps are estimated from
  its calibration region (:class:`~rim_monai.data.EstimateSensitivitiesd`).

Items carry ``"kspace"`` ``(coils, H, W)`` complex64, ``"mask"`` ``(1, H, W)``, ``"sens"`` ``(coils, H, W)`` and
``"target"`` ``(1, H, W)``; the operator of a batch is ``MaskedFourier(batch["mask"], batch["sens"])``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from monai.transforms import Compose, OneOf
from torch.utils.data import Dataset

from rim_monai.data.fastmri import FastMRISliceDataset, read_fastmri
from rim_monai.data.file_utils import as_tensor
from rim_monai.data.intensity import PercentileScaled
from rim_monai.data.keys import Keys
from rim_monai.data.protocol import DICOM_SCANS, NIFTI_SCANS, AcquisitionProtocol
from rim_monai.data.scans import HDF5, ScanFormat
from rim_monai.data.sensitivity import EstimateSensitivitiesd
from rim_monai.data.simulate_mri import SimulateKSpaced, check_map_estimator
from rim_monai.data.undersample import UndersampleKSpaced
from rim_monai.operators import MaskedFourier, mask_function

__all__ = ["MRIProtocol"]

TRAINING_ACCELERATIONS = (4.0, 8.0)
TRAINING_MASKS = ("random", "equispaced", "poisson_disc")


class MRIProtocol(AcquisitionProtocol):
    """The MRI acquisition (module docstring): a reference image ``(H, W)`` -> ``(y, operator)``, and its datasets.

    ``protocol(image)`` makes the measurements the shipped network expects, to reconstruct with
    ``network(y, operator)``. The datasets:

    - :meth:`reconstruction_dataset`: fastMRI ``.h5`` k-space (as stored), NIfTI volumes and DICOM slices (simulated);
    - :meth:`training_dataset` / :meth:`validation_dataset`: slabs of volumes drawing one mask family and
      acceleration per item from ``training_masks`` and ``training_accelerations``, so one network learns every
      sampling pattern; validation item ``i`` is drawn with :func:`~rim_monai.data.seeding.item_seed`
      ``(seed, i, stride=1)`` (``seed + i``: the draws the shipped model was selected with).

    Args:
        acceleration: undersampling factor.
        mask_func: ``"random"``, ``"equispaced"`` or ``"poisson_disc"``.
        center_fraction: fully sampled centre fraction (``None``: 0.32 / acceleration).
        coils: simulated coil count.
        snr_db: k-space SNR of the simulation (``None``: no noise).
        seed: seed of the masks, phase and noise (``protocol(image)`` and the reconstruction datasets).
        map_estimator: the coil maps of the operator. ``None``: for simulated data the true (birdcage) maps, for
            measured k-space the low-resolution estimate; ``"lowres"`` or ``"espirit"``: maps estimated from the
            calibration region with that method, for simulated and measured k-space alike (as a scanner would).
        training_accelerations, training_masks: the mix the training and validation items draw from
            (:meth:`training_simulation`).

    Raises:
        ValueError: an unknown ``mask_func``.

    Example:
        >>> y, A = MRIProtocol()(torch.rand(64, 64))
        >>> y.shape, A.range_shape
        (torch.Size([1, 8, 64, 64]), (8, 64, 64))
    """

    measurement_key: ClassVar[str] = Keys.KSPACE
    validation_stride: ClassVar[int] = 1
    formats: ClassVar[Mapping[str, ScanFormat]] = {
        "kspace": ScanFormat(HDF5, ".h5 (fastMRI layout)", reader=read_fastmri),
        "nifti": NIFTI_SCANS,
        "dicom": DICOM_SCANS,
    }

    def __init__(
        self,
        acceleration: float = 4.0,
        mask_func: str = "random",
        center_fraction: float | None = None,
        coils: int = 8,
        snr_db: float | None = None,
        seed: int = 0,
        training_accelerations: Sequence[float] = TRAINING_ACCELERATIONS,
        training_masks: Sequence[str] = TRAINING_MASKS,
        map_estimator: str | None = None,
    ) -> None:
        super().__init__(seed)
        self.map_estimator = check_map_estimator(map_estimator)
        for name in (mask_func, *training_masks):
            mask_function(name)  # an unknown name fails here, naming the registered ones
        if not training_masks or not training_accelerations:
            raise ValueError(f"training_masks, training_accelerations: expected at least one each, got "
                             f"{list(training_masks)}, {list(training_accelerations)}.")
        self.acceleration, self.mask_func, self.center_fraction = acceleration, mask_func, center_fraction
        self.coils, self.snr_db = coils, snr_db
        self.training_accelerations, self.training_masks = tuple(training_accelerations), tuple(training_masks)

    def simulation(self) -> SimulateKSpaced:
        """Magnitude slice ``{"image": (1, H, W)}`` -> ``{"kspace", "mask", "sens", "target"}``
        (:class:`~rim_monai.data.SimulateKSpaced` with the protocol's coils, mask and noise)."""
        return SimulateKSpaced(
            keys=Keys.IMAGE,
            coils=self.coils,
            acceleration=self.acceleration,
            center_fraction=self.center_fraction,
            mask_func=self.mask_func,
            snr_db=self.snr_db,
            map_estimator=self.map_estimator,
        )

    def operator_for(self, batch: Mapping[str, Any], device: str | torch.device | None = None) -> MaskedFourier:
        """``MaskedFourier(batch["mask"], batch["sens"])`` (per-item masks and coil maps), on ``device``."""
        mask = as_tensor(batch[Keys.MASK])
        sens = as_tensor(batch[Keys.SENS]) if batch.get(Keys.SENS) is not None else None
        if device is not None:
            mask, sens = mask.to(device), (sens.to(device) if sens is not None else None)
        return MaskedFourier(mask, sens=sens)

    def intensity(self) -> list[Callable]:
        """Scale a loaded volume (or DICOM slice) by its 99.5th percentile — once per volume, so every slice keeps
        its intensity relative to the others (a per-slice percentile blows up the near-empty edge slices)."""
        return [PercentileScaled(Keys.IMAGE)]

    def read_scans(self, fmt: str, paths: Sequence[Path], slice_range: Sequence[int] | None, axis: int) -> Dataset:
        """fastMRI ``.h5`` k-space as stored: fully sampled k-space is undersampled with the protocol's mask (one
        seeded mask per volume), already undersampled k-space keeps its mask; coil maps are estimated from the
        calibration region; the reference is ``reconstruction_rss`` when the file has it, else the RSS of the fully
        sampled k-space. NIfTI and DICOM magnitude images are simulated."""
        if fmt != "kspace":
            return super().read_scans(fmt, paths, slice_range, axis)
        undersample = UndersampleKSpaced(acceleration=self.acceleration, mask_func=self.mask_func,
                                         center_fraction=self.center_fraction, seed=self.seed)
        maps = EstimateSensitivitiesd(method=self.map_estimator or "lowres")
        return FastMRISliceDataset(paths, transform=Compose([undersample, maps]),
                                   slice_range=slice_range)

    def training_simulation(self) -> Callable:
        """The training and validation mix: one of ``training_masks`` and one of ``training_accelerations`` per item
        (each acceleration with its default centre fraction), with the protocol's coils and noise."""
        simulators = [
            SimulateKSpaced(keys=Keys.IMAGE, coils=self.coils, acceleration=list(self.training_accelerations),
                            mask_func=m, snr_db=self.snr_db)
            for m in self.training_masks
        ]
        return OneOf(simulators) if len(simulators) > 1 else simulators[0]

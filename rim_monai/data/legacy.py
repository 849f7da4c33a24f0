"""Deprecated functional forms of the protocols' datasets, kept for code written before the protocol objects.

Each builds the protocol from the keyword arguments that describe it and calls its method:

========================================  =====================================================================
deprecated                                use
========================================  =====================================================================
``ct_reconstruction_dataset(d, **kw)``    ``CTProtocol(operator, photons, mu_water, pixel_mm, upsample, seed)``
                                          ``.reconstruction_dataset(d, files, slice_range, axis, phantoms, ...)``
``ct_phantom_dataset(n, seed=1, **kw)``   ``CTProtocol(...).validation_dataset(n, seed)``
``ct_training_dataset(n, **kw)``          ``CTProtocol(...).training_dataset(n, dicom_files, real_fraction, ...)``
``mri_reconstruction_dataset(d, **kw)``   ``MRIProtocol(acceleration, mask_func, center_fraction, coils, snr_db,``
                                          ``seed).reconstruction_dataset(d, files, slice_range, axis)``
``mri_training_dataset(files, **kw)``     ``MRIProtocol(coils, snr_db, training_...).training_dataset(files, ...)``, or
                                          ``.validation_dataset(files, ...)`` for ``augment=False``
========================================  =====================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from rim_monai.data.ct_protocol import CTProtocol
from rim_monai.data.file_utils import PathLike
from rim_monai.data.mri_protocol import MRIProtocol

__all__ = [
    "ct_reconstruction_dataset",
    "ct_phantom_dataset",
    "ct_training_dataset",
    "mri_reconstruction_dataset",
    "mri_training_dataset",
]

CT_ARGUMENTS = ("operator", "photons", "mu_water", "pixel_mm", "upsample")
MRI_ARGUMENTS = ("acceleration", "mask_func", "center_fraction", "coils", "snr_db")


def split_arguments(kwargs: dict[str, Any], names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` split into the arguments in ``names`` (the protocol's) and the others (the method's)."""
    return {k: v for k, v in kwargs.items() if k in names}, {k: v for k, v in kwargs.items() if k not in names}


def warn(old: str, new: str) -> None:
    """A ``DeprecationWarning`` pointing from ``old`` to ``new``."""
    warnings.warn(f"rim_monai.data.{old} is deprecated: use {new}.", DeprecationWarning, stacklevel=3)


def ct_reconstruction_dataset(dataset_dir: PathLike | None = None, seed: int = 0, **kwargs: Any) -> Dataset:
    """Deprecated: ``CTProtocol(..., seed=seed).reconstruction_dataset(dataset_dir, ...)``."""
    warn("ct_reconstruction_dataset", "CTProtocol(...).reconstruction_dataset(...)")
    protocol, rest = split_arguments(kwargs, CT_ARGUMENTS)
    return CTProtocol(**protocol, seed=seed).reconstruction_dataset(dataset_dir, **rest)


def ct_phantom_dataset(length: int, seed: int = 1, **kwargs: Any) -> Dataset:
    """Deprecated: ``CTProtocol(...).validation_dataset(length, seed)``."""
    warn("ct_phantom_dataset", "CTProtocol(...).validation_dataset(...)")
    return CTProtocol(**kwargs).validation_dataset(length, seed)


def ct_training_dataset(length: int = 1000, **kwargs: Any) -> Dataset:
    """Deprecated: ``CTProtocol(...).training_dataset(length, dicom_files, real_fraction, augment, seed)``."""
    warn("ct_training_dataset", "CTProtocol(...).training_dataset(...)")
    protocol, rest = split_arguments(kwargs, CT_ARGUMENTS)
    return CTProtocol(**protocol).training_dataset(length, **rest)


def mri_reconstruction_dataset(dataset_dir: PathLike | None = None, seed: int = 0, **kwargs: Any) -> Dataset:
    """Deprecated: ``MRIProtocol(..., seed=seed).reconstruction_dataset(dataset_dir, files, slice_range, axis)``."""
    warn("mri_reconstruction_dataset", "MRIProtocol(...).reconstruction_dataset(...)")
    protocol, rest = split_arguments(kwargs, MRI_ARGUMENTS)
    return MRIProtocol(**protocol, seed=seed).reconstruction_dataset(dataset_dir, **rest)


def mri_training_dataset(files: Sequence[PathLike], augment: bool = True, **kwargs: Any) -> Dataset:
    """Deprecated: ``MRIProtocol(coils, snr_db, training_accelerations=accelerations, training_masks=mask_funcs)
    .training_dataset(files, ...)`` (``augment``), else ``.validation_dataset(files, ...)`` (with this function's old
    defaults ``snr_db=40``, ``patch_size=(128, 128)``, ``seed=0``)."""
    warn("mri_training_dataset", "MRIProtocol(...).training_dataset(...) or .validation_dataset(...)")
    names = {"coils": "coils", "snr_db": "snr_db", "accelerations": "training_accelerations",
             "mask_funcs": "training_masks"}
    arguments, kwargs = split_arguments({"snr_db": 40.0, **kwargs}, tuple(names))
    protocol = MRIProtocol(**{names[k]: v for k, v in arguments.items()})
    if augment:
        return protocol.training_dataset(files, **kwargs)
    return protocol.validation_dataset(files, **{"patch_size": (128, 128), "seed": 0, **kwargs})

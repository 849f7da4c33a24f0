"""NIfTI writers that keep the scan geometry, write atomically and never replace an output silently.

:class:`SaveNifti` / :class:`SaveNiftid` are MONAI ``SaveImage`` / ``SaveImaged`` with :class:`AtomicNibabelWriter`:
the affine (and so the spacing) comes from the ``MetaTensor`` being saved — a reconstruction that kept its input's
meta (``MetaTensor(recon, meta=x.meta)``, or a volume rebuilt by :func:`rim_monai.data.stack_slices`) lands exactly
where the scan was. The file is written under a temporary name in the output folder and renamed. An existing output
raises ``FileExistsError`` naming it, unless ``overwrite=True``. A 2D slice cut by
:class:`rim_monai.data.SliceVolume` is named ``<scan>_<postfix>_slice<k>`` so slices of one scan do not collide.

The fastMRI submission writer lives in :mod:`rim_monai.data.fastmri` (:func:`write_fastmri_reconstruction`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from monai.data import MetaTensor, NibabelWriter
from monai.data.folder_layout import default_name_formatter
from monai.transforms import SaveImage, SaveImaged, Transform
from monai.utils import convert_data_type

from rim_monai.data.file_utils import atomic_write, check_overwrite
from rim_monai.data.keys import Keys

__all__ = ["AtomicNibabelWriter", "SaveNifti", "SaveNiftid"]


class AtomicNibabelWriter(NibabelWriter):
    """MONAI's ``NibabelWriter`` writing to a temporary file that is renamed onto the destination.

    Args:
        overwrite: replace an existing destination; otherwise ``FileExistsError`` names it.
        kwargs: passed to ``NibabelWriter`` (``output_dtype``, ``scale``...).
    """

    def __init__(self, overwrite: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.overwrite = overwrite

    def set_metadata(self, meta_dict: Mapping | None, resample: bool = True, **options: Any) -> None:
        """Take the affine from ``meta_dict``; without ``resample`` the 4x4 affine of a 2D slice is kept as is.

        (MONAI's writer reduces a 2D image's affine to 3x3, which loses the position of a slice cut from a volume
        along its first or second axis; NIfTI stores a 2D image with a full 4x4 affine, so nothing needs dropping.)
        """
        if resample:
            super().set_metadata(meta_dict, resample=resample, **options)
            return
        _, affine, _ = self.get_meta_info(meta_dict)
        if self.output_dtype is None and hasattr(self.data_obj, "dtype"):
            self.output_dtype = self.data_obj.dtype
        self.data_obj = convert_data_type(self.data_obj, np.ndarray)[0]
        self.affine = None if affine is None else convert_data_type(affine, np.ndarray)[0]

    def write(self, filename: str | os.PathLike, verbose: bool = False, **obj_kwargs: Any) -> None:
        with atomic_write(filename, self.overwrite) as tmp:
            super().write(tmp, verbose=verbose, **obj_kwargs)


def slice_name_formatter(metadict: dict | None, saver: Transform) -> dict:
    """MONAI's default name formatter, plus ``_slice<k>`` for slices cut by ``SliceVolume``."""
    out = default_name_formatter(metadict, saver)
    if metadict and "slice_index" in metadict and out.get("idx") is None:
        out["idx"] = f"slice{int(metadict['slice_index']):03d}"
    return out


class SaveNifti(SaveImage):
    """``SaveImage`` to NIfTI with atomic writes and overwrite protection (see the module docstring).

    Args:
        output_dir: output folder.
        output_postfix: appended to the input's name (``brain.nii.gz`` -> ``brain_recon.nii.gz``).
        overwrite: replace existing outputs.
        output_dtype: data type written (float32 by default).
        separate_folder: one sub-folder per input, as in MONAI (off by default here).
        output_name_formatter: custom naming (default :func:`slice_name_formatter`).
        kwargs: other ``SaveImage`` arguments (``resample``, ``print_log``...).

    Raises:
        FileExistsError: when called on an output that exists and ``overwrite`` is false.

    Example:
        >>> SaveNifti("out", output_postfix="recon")(recon_volume)  # doctest: +SKIP
    """

    def __init__(
        self,
        output_dir: str | os.PathLike = "./",
        output_postfix: str = "recon",
        overwrite: bool = False,
        output_ext: str = ".nii.gz",
        output_dtype: Any = np.float32,
        separate_folder: bool = False,
        output_name_formatter: Callable[[dict, Transform], dict] | None = None,
        print_log: bool = False,
        **kwargs: Any,
    ) -> None:
        if output_ext not in (".nii", ".nii.gz"):
            raise ValueError(f"output_ext: expected '.nii' or '.nii.gz', got {output_ext!r}.")
        super().__init__(
            output_dir=output_dir,
            output_postfix=output_postfix,
            output_ext=output_ext,
            output_dtype=output_dtype,
            separate_folder=separate_folder,
            writer=AtomicNibabelWriter,
            output_name_formatter=output_name_formatter or slice_name_formatter,
            print_log=print_log,
            **kwargs,
        )
        self.overwrite = overwrite
        self.set_options(init_kwargs={"overwrite": overwrite})

    def output_path(self, img: Any, meta_data: dict | None = None, filename: str | None = None) -> str:
        """The path :meth:`__call__` writes ``img`` to."""
        meta_data = img.meta if isinstance(img, MetaTensor) else meta_data
        if filename is not None:
            return f"{filename}{self.output_ext}"
        return str(self.folder_layout.filename(**self.fname_formatter(meta_data, self)))

    def __call__(self, img: Any, meta_data: dict | None = None, filename: str | None = None) -> Any:
        check_overwrite(self.output_path(img, meta_data, filename), self.overwrite)
        return super().__call__(img, meta_data, filename)


class SaveNiftid(SaveImaged):
    """Dictionary version of :class:`SaveNifti` (``keys`` default ``"pred"``).

    Args:
        keys: entries to save.
        output_dir: the output folder.
        allow_missing_keys: skip absent keys.
        kwargs: the other :class:`SaveNifti` arguments (``output_postfix``, ``overwrite``, ``output_ext``...).

    Example:
        >>> saver = SaveNiftid("pred", output_dir="out", overwrite=False)  # doctest: +SKIP
        >>> saver({"pred": MetaTensor(recon, meta=image.meta)})  # doctest: +SKIP
    """

    def __init__(
        self,
        keys: Any = Keys.PRED,
        output_dir: str | os.PathLike = "./",
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, output_dir=output_dir, allow_missing_keys=allow_missing_keys)
        self.saver = SaveNifti(output_dir=output_dir, **kwargs)

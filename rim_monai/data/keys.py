"""The dictionary keys of rim_monai's data items, in one place.

Every reader, simulator, dataset, batch preparation, handler and bundle config that passes an item around names its
entries with these constants (as MONAI names its own with :class:`monai.utils.CommonKeys`), so a key is spelled once.

A reconstruction item carries the measurements and what is needed to build the operator for them, the reference, and
where it came from:

- MRI: ``{KSPACE: (coils, H, W) complex, MASK: (1, H, W), SENS: (coils, H, W) complex, TARGET: (1, H, W), ...}``;
- CT: ``{SINOGRAM: (1, angles, detectors), TARGET: (1, H, W), ...}``;
- denoising: ``{MEASUREMENT: (1, H, W), TARGET: (1, H, W), ...}``;
- every item: ``FILENAME`` and ``SLICE`` (where the reconstruction is written back to).

Example:
    >>> from rim_monai.data.keys import Keys
    >>> Keys.KSPACE, Keys.SINOGRAM
    ('kspace', 'sinogram')
"""

from __future__ import annotations

__all__ = ["Keys"]


class Keys:
    """String constants for the entries of a data item (plain ``str``, so they work as JSON config values too)."""

    IMAGE = "image"
    """A scan's image (HU for CT, magnitude or complex for MRI) before simulation, ``(1, H, W)``."""
    IMAGE_FINE = "image_fine"
    """The same image on a finer simulation grid (no inverse crime), ``(1, s*H, s*W)``."""
    KSPACE = "kspace"
    """Multi-coil k-space measurements, ``(coils, H, W)`` complex64, zeros off the mask."""
    MASK = "mask"
    """The k-space sampling mask, ``(1, H, W)`` float."""
    SENS = "sens"
    """Coil sensitivity maps, ``(coils, H, W)`` complex64."""
    SINOGRAM = "sinogram"
    """Post-log CT measurements, ``(1, angles, detectors)``."""
    MEASUREMENT = "measurement"
    """The measurements of a modality without a key of its own (denoising: the noisy image), ``(1, H, W)``."""
    TARGET = "target"
    """The reference image the reconstruction is scored against, ``(1, H, W)``."""
    FILENAME = "filename"
    """The source file of the item (the saver names the output after it)."""
    SLICE = "slice"
    """The slice index within the source volume."""
    PRED = "pred"
    """The network output in an engine's output dictionary (MONAI's ``CommonKeys.PRED``)."""
    LABEL = "label"
    """The reference in an engine's output dictionary (MONAI's ``CommonKeys.LABEL``)."""

"""Locating a bundle's folder so its configs run from the repository root, the bundle folder or anywhere with
``--bundle_root``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["find_bundle_root"]


def find_bundle_root(name: str, start: str | os.PathLike | None = None) -> str:
    """Return the folder of bundle ``name``.

    Looked for, in order: ``$RIM_MONAI_BUNDLES/<name>``, the working directory itself when it is the bundle (it holds
    ``configs/metadata.json`` and is called ``name``), ``./bundles/<name>``, and the ``bundles/<name>`` folder of the
    source checkout this package was installed from (editable installs).

    Args:
        name: the bundle's folder name, e.g. ``"mri_rim_recon"``.
        start: the working directory to search from (default: the current one).

    Raises:
        FileNotFoundError: naming every place that was looked at.
    """
    cwd = Path(start) if start is not None else Path.cwd()
    candidates = []
    if os.environ.get("RIM_MONAI_BUNDLES"):
        candidates.append(Path(os.environ["RIM_MONAI_BUNDLES"]) / name)
    candidates += [cwd, cwd / "bundles" / name, Path(__file__).resolve().parents[2] / "bundles" / name]
    for path in candidates:
        if path.name == name and (path / "configs" / "metadata.json").is_file():
            return str(path)
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"bundle '{name}': no folder with configs/metadata.json found (looked at {looked}); "
                            "pass --bundle_root <folder>.")

"""Finding a bundle and what it ships: its folder (so its configs run from the repository root, the bundle folder or
anywhere with ``--bundle_root``), its parsed configs, and its trained network."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from rim_monai.engines.checkpoint import network_weights

__all__ = ["find_bundle_root", "bundle_config", "load_bundle_network"]


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


def bundle_config(
    bundle: str | os.PathLike, overrides: Mapping[str, Any] | None = None, config: str = "inference.json"
) -> ConfigParser:
    """A bundle's ``configs/<config>`` read by MONAI's :class:`~monai.bundle.ConfigParser`, with ``overrides``.

    Args:
        bundle: the bundle's folder, or its name (found by :func:`find_bundle_root`).
        overrides: config ids and values, as ``--id value`` on the command line (``{"num_angles": 30}``).
        config: the config file in ``configs/``.

    Returns:
        The parser (nothing instantiated yet): ``parser.get_parsed_content("operator")`` builds one component.

    Raises:
        ValueError: naming ``config`` when the bundle has no such file.
        FileNotFoundError: naming the places looked at when ``bundle`` is a name that is not found.

    Example:
        >>> parser = bundle_config("ct_lpd_recon", {"num_angles": 30})      # doctest: +SKIP
        >>> parser.get_parsed_content("operator").range_shape                # doctest: +SKIP
    """
    path = Path(bundle)
    root = path if (path / "configs").is_dir() else Path(find_bundle_root(str(bundle)))
    file = root / "configs" / config
    if not file.is_file():
        raise ValueError(f"config: the bundle {root} has no configs/{config}.")
    parser = ConfigParser()
    parser.read_config(str(file))
    parser.update(dict(overrides or {}))
    return parser


def load_bundle_network(
    bundle: str | os.PathLike | ConfigParser,
    device: str | torch.device = "cpu",
    overrides: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> torch.nn.Module:
    """A bundle's trained network: its ``network_def`` with the weights of ``ckpt_path``, on ``device``, in eval mode.

    Args:
        bundle: the bundle's folder or name, or a parser of its configs (:func:`bundle_config`).
        device: where the network goes.
        overrides: config overrides (when ``bundle`` is a folder or a name).
        checkpoint: weights to load instead of the config's ``ckpt_path`` (e.g. ``models/model_adapted.pt``).

    Returns:
        The network, called as ``net(y, A)``.

    Example:
        >>> net = load_bundle_network("ct_lpd_recon")                        # doctest: +SKIP
        >>> x = net(sinogram, bundle_config("ct_lpd_recon").get_parsed_content("operator"))  # doctest: +SKIP
    """
    parser = bundle if isinstance(bundle, ConfigParser) else bundle_config(bundle, overrides)
    net = parser.get_parsed_content("network_def").to(device)
    weights = checkpoint if checkpoint is not None else parser.get_parsed_content("ckpt_path")
    net.load_state_dict(network_weights(weights, map_location=device))
    return net.eval()

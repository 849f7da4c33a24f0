"""Crash-safe checkpoints: every checkpoint file is complete at every moment, and a killed run resumes from its last one.

MONAI's :class:`~monai.handlers.CheckpointSaver` writes with ``atomic=False`` and, for a fixed file name such as the
bundle's ``models/model.pt``, ignite first *removes* the previous best file and then writes the new one, so a run
killed at the wrong moment leaves no ``model.pt`` or a truncated one. :class:`AtomicCheckpointSaver` is the same
handler (same arguments) whose files are written to a temporary file in the same folder and renamed over the old one
(:func:`os.replace` is atomic on POSIX), and whose fixed-name files are never removed first.

:func:`latest_checkpoint` finds what a killed run left behind (``checkpoint_final.pt`` is only written when a run
ends), so ``--resume true`` continues from the last epoch saved. :func:`network_weights` reads the network's weights
from either kind of file: a plain state dict (``models/model.pt``) or a training checkpoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointSaver

__all__ = ["AtomicDiskSaver", "AtomicCheckpointSaver", "latest_checkpoint", "network_weights"]

#: the key of the network in the bundles' training checkpoints (``train.json``'s ``checkpoint_saver#save_dict``)
NETWORK_KEY = "model"

_NUMBERED = re.compile(r"(?:checkpoint_)?(?:epoch|iteration)=(\d+)\.pt$")


class AtomicDiskSaver(DiskSaver):
    """An ignite :class:`~ignite.handlers.DiskSaver` that always writes atomically and can use one fixed file name.

    ignite removes the checkpoint a new one supersedes *before* writing the new one; this saver defers the removal
    until the new file is in place, so some complete checkpoint exists at every moment.

    Args:
        dirname: the folder (created when missing).
        filename: a fixed file name for every save (``None``: ignite's numbered names). A fixed-name file is replaced
            in one step by the next save and never removed in between.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        super().__init__(dirname=str(dirname), require_empty=False, atomic=True, create_dir=True)
        self.filename = filename
        self._superseded: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        name = self.filename or filename
        super().__call__(checkpoint=checkpoint, filename=name, metadata=metadata)
        for old in self._superseded:
            if old != name and (self.dirname / old).exists():
                super().remove(old)
        self._superseded.clear()

    def remove(self, filename: str) -> None:
        """Remove ``filename`` after the next save (a fixed-name file is never removed: the next save replaces it)."""
        if self.filename is None:
            self._superseded.append(filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's :class:`~monai.handlers.CheckpointSaver` (same arguments) with :class:`AtomicDiskSaver` for every file.

    Use it in a bundle's ``train.json`` wherever ``CheckpointSaver`` was: the final, key-metric (``models/model.pt``)
    and interval checkpoints are then complete files whenever the process is killed.

    A resumed run must not replace the best model of the runs before it with a worse one: pass their best key metric
    as ``key_metric_best`` (e.g. :func:`~rim_monai.engines.best_metric` of the run's curve) and the key-metric file
    is only written again when a validation beats it. ignite keeps the best score only in memory, so without it the
    first validation after a resume always overwrites ``model.pt``.

    Args:
        save_dir, save_dict, kwargs: as :class:`~monai.handlers.CheckpointSaver`.
        key_metric_best: the key metric of the model already in ``save_dir`` (``None``: no earlier best).

    Example:
        >>> import torch, tempfile
        >>> saver = AtomicCheckpointSaver(tempfile.mkdtemp(), {"model": torch.nn.Linear(1, 1)}, save_interval=1)
        >>> isinstance(saver._interval_checkpoint.save_handler, AtomicDiskSaver)  # doctest: +SKIP
        True
    """

    def __init__(self, save_dir: str, save_dict: dict, key_metric_best: float | None = None, **kwargs: Any) -> None:
        super().__init__(save_dir, save_dict, **kwargs)
        fixed = {
            "_final_checkpoint": self._final_filename,
            "_key_metric_checkpoint": kwargs.get("key_metric_filename"),
            "_interval_checkpoint": None,
        }
        for attribute, filename in fixed.items():
            checkpoint = getattr(self, attribute)
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(self.save_dir, filename)
        if key_metric_best is not None and self._key_metric_checkpoint is not None:
            sign = -1.0 if kwargs.get("key_metric_negative_sign") else 1.0
            earlier = kwargs.get("key_metric_filename") or "earlier_best.pt"  # a fixed name is never removed
            self._key_metric_checkpoint._saved.append(Checkpoint.Item(sign * float(key_metric_best), earlier))


def latest_checkpoint(run_dir: str | os.PathLike, final_filename: str = "checkpoint_final.pt") -> str:
    """The checkpoint a resumed run should start from: the newest one a previous run in ``run_dir`` left.

    ``final_filename`` when present (the run ended), otherwise the ``*epoch=N.pt`` / ``*iteration=N.pt`` file with the
    largest ``N`` (the run was killed after saving it).

    Args:
        run_dir: the training run's folder (``train.json``'s ``run_dir``).
        final_filename: the name the final checkpoint is saved under.

    Returns:
        The path, as a string.

    Raises:
        FileNotFoundError: naming ``run_dir`` when it holds no checkpoint to resume from.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for n in (2, 10): (d / f"checkpoint_epoch={n}.pt").write_bytes(b"")
        >>> Path(latest_checkpoint(d)).name
        'checkpoint_epoch=10.pt'
    """
    folder = Path(run_dir)
    final = folder / final_filename
    if final.is_file():
        return str(final)
    numbered = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _NUMBERED.search(path.name)
            if match and path.is_file():
                numbered.append((int(match.group(1)), path))
    if not numbered:
        raise FileNotFoundError(
            f"run_dir: no checkpoint to resume from in '{folder}' (expected {final_filename} or checkpoint_epoch=N.pt); "
            "train without --resume first, or pass --resume_path /path/to/checkpoint.pt."
        )
    return str(max(numbered)[1])


def network_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The network's state dict in ``path``: a plain state dict (``models/model.pt``) or a training checkpoint
    (``checkpoint_epoch=N.pt``, ``checkpoint_final.pt``: the network under ``"model"``, beside the optimiser's state).

    Args:
        path: the file.
        map_location: where the tensors are loaded (``torch.load``'s ``map_location``).

    Returns:
        The state dict, for ``network.load_state_dict``.

    Raises:
        ValueError: naming ``path`` when it holds neither.
    """
    loaded = torch.load(path, map_location=map_location)
    if isinstance(loaded, Mapping) and isinstance(loaded.get(NETWORK_KEY), Mapping):
        loaded = loaded[NETWORK_KEY]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        found = sorted(loaded)[:6] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise ValueError(f"{path}: expected a network state dict or a training checkpoint with the network under "
                         f"{NETWORK_KEY!r}, found {found}.")
    return dict(loaded)

"""What happens to a bad scan in a folder: stop at the first one (``"raise"``) or reconstruct the rest (``"skip"``).

Hospitals run folders of hundreds of scans; one truncated file or one NaN voxel must not cost the others. Dataset
builders read every scan through :meth:`ScanErrors.guard`:

- ``on_error="raise"`` (the default): the first failure prints **one line** naming the file, the stage and the
  problem (for a :class:`~rim_monai.data.DataFileError`, also the key) to standard error, then raises as before, so
  the useful message is the first thing a user sees, not the end of a 40-line chained traceback.
- ``on_error="skip"``: the failure is recorded and the scan is left out; :meth:`ScanErrors.write` writes
  ``<output_dir>/errors.csv`` (columns ``file, stage, message``) atomically, and :meth:`ScanErrors.summary` says how
  many scans were skipped. A run where every scan failed still fails.

Example:
    >>> errors = ScanErrors("skip")
    >>> errors.guard("a.nii.gz", "read", lambda: 1 / 0) is None
    True
    >>> errors.summary()
    'skipped 1 bad scan(s) of 1: a.nii.gz (read: ZeroDivisionError: division by zero)'
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from rim_monai.data.file_utils import atomic_write

__all__ = ["ON_ERROR_MODES", "ScanError", "ScanErrors", "scan_errors"]

ON_ERROR_MODES = ("raise", "skip")
"""The accepted values of ``on_error``."""

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ScanError(NamedTuple):
    """One scan that could not be used: the file, the stage that failed (``"read"``, ...), the message."""

    file: str
    stage: str
    message: str


def _message(error: BaseException) -> str:
    """One line: the exception's own message (type-prefixed unless it is a ``ValueError`` that names the file)."""
    text = " ".join(str(error).split())
    return text if isinstance(error, ValueError) and text else f"{type(error).__name__}: {text}"


class ScanErrors:
    """The bad scans of one run, and the policy for them.

    Args:
        on_error: ``"raise"`` (stop at the first bad scan) or ``"skip"`` (leave bad scans out and list them).
        output_dir: where :meth:`write` puts ``errors.csv`` (``None``: :meth:`write` needs a folder).
        stream: where the one-line message of ``"raise"`` goes (default ``sys.stderr``).

    Raises:
        ValueError: naming ``on_error`` when it is not one of :data:`ON_ERROR_MODES`.
    """

    def __init__(self, on_error: str = "raise", output_dir: str | os.PathLike | None = None, stream: Any = None) -> None:
        if on_error not in ON_ERROR_MODES:
            raise ValueError(f"on_error: expected one of {ON_ERROR_MODES}, got {on_error!r}.")
        self.on_error = on_error
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.stream = stream
        self.errors: list[ScanError] = []
        self.attempted = 0

    @property
    def skip(self) -> bool:
        """Whether bad scans are left out (``on_error="skip"``)."""
        return self.on_error == "skip"

    def guard(self, file: str | os.PathLike, stage: str, fn: Callable[[], T]) -> T | None:
        """``fn()``; when it fails, raise after one line naming ``file`` (``"raise"``), or record it and return ``None``.

        Args:
            file: the scan ``fn`` reads or processes.
            stage: what was being done (``"read"``, ``"simulate"``, ...), for the message and ``errors.csv``.
            fn: the work, without arguments.
        """
        self.attempted += 1
        try:
            return fn()
        except Exception as error:  # noqa: BLE001 - every failure of one scan is that scan's failure
            record = ScanError(os.fspath(file), stage, _message(error))
            if not self.skip:
                print(f"ERROR {record.file}: {record.stage} failed: {record.message}", file=self.stream or sys.stderr,
                      flush=True)
                raise
            self.errors.append(record)
            logger.warning("skipping %s (%s failed): %s", record.file, record.stage, record.message)
            return None

    def summary(self) -> str:
        """``"skipped N bad scan(s) of M: file (stage: message), ..."`` (``"no bad scans"`` when there were none)."""
        if not self.errors:
            return "no bad scans"
        listed = ", ".join(f"{e.file} ({e.stage}: {e.message})" for e in self.errors)
        return f"skipped {len(self.errors)} bad scan(s) of {self.attempted}: {listed}"

    def to_csv(self) -> str:
        """The recorded errors as CSV text with the header ``file,stage,message``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(ScanError._fields)
        writer.writerows(self.errors)
        return buffer.getvalue()

    def write(self, output_dir: str | os.PathLike | None = None) -> Path | None:
        """Write ``errors.csv`` atomically to ``output_dir`` (default: the constructor's) when scans were skipped.

        Returns:
            The path written, or ``None`` when nothing was skipped (an old ``errors.csv`` there is removed, so the
            folder describes this run).

        Raises:
            ValueError: naming ``output_dir`` when no folder is known.
        """
        folder = Path(output_dir) if output_dir is not None else self.output_dir
        if folder is None:
            raise ValueError("output_dir: expected the folder to write errors.csv to, got None.")
        path = folder / "errors.csv"
        if not self.errors:
            path.unlink(missing_ok=True)
            return None
        with atomic_write(path, overwrite=True) as tmp:
            tmp.write_text(self.to_csv())
        return path

    def check_any_succeeded(self, succeeded: int) -> None:
        """Fail when every scan failed (even with ``"skip"``); otherwise write ``errors.csv`` and log the summary.

        Raises:
            ValueError: naming ``dataset_dir`` when ``succeeded`` is 0 and scans were skipped.
        """
        if self.output_dir is not None and (self.errors or self.skip):
            self.write()  # with "skip", also removes an errors.csv a previous run left
        if self.errors:
            where = f"; listed in {self.output_dir / 'errors.csv'}" if self.output_dir is not None else ""
            print(f"skipped {len(self.errors)} bad scan(s) of {self.attempted}{where}", file=self.stream or sys.stderr,
                  flush=True)
        if self.errors and succeeded == 0:
            raise ValueError(f"dataset_dir: every scan failed ({self.summary()}).")


def scan_errors(on_error: str | ScanErrors | None, output_dir: str | os.PathLike | None = None) -> ScanErrors:
    """A :class:`ScanErrors` from a config value: a mode string, an existing instance, or ``None`` (``"raise"``)."""
    if isinstance(on_error, ScanErrors):
        return on_error
    return ScanErrors("raise" if on_error is None else on_error, output_dir)

"""Bundle glue for values a config cannot guess: required overrides that fail with a message saying what to pass.

A config entry that must come from the command line (where the user's data lie) is written as::

    "dataset_dir": "$rim_monai.engines.required_override('dataset_dir', '../shared/data/ct/dicom')"

The expression only runs when the entry is used without an override; it raises :class:`MissingOverrideError`,
which names the key and shows the ``--key value`` to add. With ``--dataset_dir /path/to/data`` on the command line
(or ``dataset_dir=...`` passed to ``ConfigWorkflow``) the entry is replaced before it is ever evaluated.
"""

from __future__ import annotations

__all__ = ["MissingOverrideError", "required_override"]


class MissingOverrideError(ValueError):
    """A config entry that must be given as an override was not."""


def required_override(key: str, example: str, what: str = "the folder of the data") -> str:
    """Fail: ``key`` must be passed as an override (see the module docstring).

    Args:
        key: the config id (``"dataset_dir"``).
        example: an example value for the message (``"../shared/data/ct/dicom"``).
        what: what the value is, for the message.

    Raises:
        MissingOverrideError: always, naming ``key`` and showing ``--key example``.

    Example:
        >>> try:
        ...     required_override("dataset_dir", "../shared/data/ct/dicom")
        ... except MissingOverrideError as error:
        ...     print(str(error).split("got none. ")[1])
        Add for example `--dataset_dir ../shared/data/ct/dicom` to the command line (or dataset_dir=... to ConfigWorkflow).
    """
    raise MissingOverrideError(
        f"{key}: this config needs {what} as an override, got none. Add for example `--{key} {example}` to the "
        f"command line (or {key}=... to ConfigWorkflow)."
    )

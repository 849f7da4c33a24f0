"""Small map-style dataset combinators the protocols assemble their datasets from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils.data import ConcatDataset, Dataset

__all__ = ["RepeatDataset", "concat_datasets"]


class RepeatDataset(Dataset):
    """``length`` items cycling through ``dataset``: item ``i`` is ``dataset[i % len(dataset)]``.

    Each access re-runs the dataset's random transform, so the repeats of a slice are augmented (and simulated)
    differently.

    Args:
        dataset: a non-empty map-style dataset.
        length: the number of items.

    Raises:
        ValueError: an empty ``dataset`` or a negative ``length``.

    Example:
        >>> [RepeatDataset([10, 20], 5)[i] for i in range(5)]
        [10, 20, 10, 20, 10]
    """

    def __init__(self, dataset: Dataset, length: int) -> None:
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ValueError("dataset: expected at least one item to repeat, got an empty dataset.")
        if int(length) < 0:
            raise ValueError(f"length: expected a number of items >= 0, got {length}.")
        self.dataset, self.length = dataset, int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.length:
            raise IndexError(f"i: expected an index in [0, {self.length}), got {i}.")
        return self.dataset[i % len(self.dataset)]  # type: ignore[arg-type]


def concat_datasets(parts: Sequence[Dataset]) -> Dataset:
    """The one dataset of ``parts`` itself, else their ``ConcatDataset`` (items of ``parts[0]`` first).

    Raises:
        ValueError: no parts.
    """
    if not parts:
        raise ValueError("parts: expected at least one dataset, got none.")
    return parts[0] if len(parts) == 1 else ConcatDataset(list(parts))

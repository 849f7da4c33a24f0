"""Dataset combinators."""

from __future__ import annotations

import pytest
from torch.utils.data import ConcatDataset

from rim_monai.data import RepeatDataset, concat_datasets


def test_repeat_cycles_and_checks():
    ds = RepeatDataset([1, 2, 3], 7)
    assert len(ds) == 7 and [ds[i] for i in range(7)] == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(IndexError):
        ds[7]
    with pytest.raises(ValueError, match="dataset"):
        RepeatDataset([], 3)


def test_concat_keeps_a_single_part():
    part = [1, 2]
    assert concat_datasets([part]) is part
    both = concat_datasets([part, [3]])
    assert isinstance(both, ConcatDataset) and [both[i] for i in range(3)] == [1, 2, 3]
    with pytest.raises(ValueError, match="parts"):
        concat_datasets([])

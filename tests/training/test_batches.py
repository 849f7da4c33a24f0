"""ShuffledBatches: every sample once per pass, seeded, the last batch of a pass shorter."""

import pytest
import torch

from rim_monai.training import ShuffledBatches


def test_each_pass_is_a_permutation_handed_out_from_the_end():
    batches = ShuffledBatches(5, 2, seed=3)
    order = torch.randperm(5, generator=torch.Generator().manual_seed(3)).tolist()
    first_pass = [next(batches).tolist() for _ in range(3)]
    assert first_pass == [[order[4], order[3]], [order[2], order[1]], [order[0]]]
    second = next(batches)
    assert len(second) == 2 and set(second.tolist()) <= set(range(5))


def test_reproducible_and_its_own_iterator():
    a, b = ShuffledBatches(7, 3, seed=1), ShuffledBatches(7, 3, seed=1)
    assert iter(a) is a
    assert [next(a).tolist() for _ in range(6)] == [next(b).tolist() for _ in range(6)]
    assert next(ShuffledBatches(4, 10)).shape == (4,)  # batch size capped at n


@pytest.mark.parametrize("args, name", [((0, 2), "n"), ((3, 0), "batch_size"), ((2.5, 1), "n"), ((True, 1), "n")])
def test_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        ShuffledBatches(*args)

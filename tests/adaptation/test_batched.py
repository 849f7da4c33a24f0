"""Running a network over N samples: chunks, data terms, reconstructions (shared and per-sample operators)."""

import math

import pytest
import torch

from rim_monai.adaptation import data_consistency, full_data_term, reconstruct, reconstruct_each
from rim_monai.adaptation.batched import index_chunks, net_output, sample_data_terms
from tests.adaptation.toys import GaussBlur, TinyNet


@pytest.fixture(scope="module")
def case():
    g = torch.Generator().manual_seed(0)
    return TinyNet(seed=1).eval(), GaussBlur(sigma=1.5), torch.randn(5, 1, 16, 16, generator=g)


def test_chunks_and_last_iterate():
    assert [c.tolist() for c in index_chunks(5, 2)] == [[0, 1], [2, 3], [4]]
    assert net_output(lambda y, A: [y, 2 * y], torch.ones(1), None).item() == 2.0


def test_shared_and_per_sample_operators_agree(case):
    net, op, y = case
    per_sample = [GaussBlur(sigma=1.5) for _ in range(5)]
    torch.testing.assert_close(reconstruct(net, [op], y, 2), reconstruct(net, per_sample, y, 2))
    torch.testing.assert_close(reconstruct_each(net, list(y), per_sample), reconstruct(net, [op], y, 5))
    idx = torch.tensor([3, 1])
    torch.testing.assert_close(sample_data_terms(net, [op], y, idx, None), sample_data_terms(net, per_sample, y, idx, None))
    with pytest.raises(ValueError, match="operators"):
        reconstruct_each(net, list(y), per_sample[:2])


def test_full_data_term_is_the_mean_and_the_relative_residual(case):
    net, op, y = case
    with torch.no_grad():
        terms = data_consistency(net(y, op), op, y)
    outputs = []
    value, rel = full_data_term(net, [op], y, None, batch_size=2, outputs=outputs)
    assert value == pytest.approx(float(terms.mean()), rel=1e-5)
    assert rel == pytest.approx(math.sqrt(float(terms.sum()) / float((y**2).sum())), rel=1e-5)
    assert torch.cat(outputs).shape == y.shape
    half, _ = full_data_term(net, [op], y, torch.full_like(y, 0.5), batch_size=2)
    assert half == pytest.approx(value / 2, rel=1e-5)
    first_two, _ = full_data_term(net, [op], y, None, batch_size=4, count=2)
    assert first_two == pytest.approx(float(terms[:2].mean()), rel=1e-5)

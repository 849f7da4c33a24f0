"""RealImageView: a complex operator seen from real images (the adjoint and shapes also join the operator contract,
``tests/operators/cases/real_view.py``)."""

import numpy as np
import pytest
import torch

from rim_monai.operators import RandomProjection, RealImageView


def _dense(op, shape, dtype=torch.float64):
    """The matrix of a real linear map, column by column."""
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=dtype).reshape(n, 1, *shape)
    return op(basis).reshape(n, -1).T


def test_real_image_view_matches_stacked_matrix_and_adjoint():
    inner = RandomProjection((4, 4), 0.5, ensemble="fourier", seed=3)
    B = RealImageView(inner)
    assert B.range_shape == (8, 2) and not B.domain_is_complex and not B.range_is_complex
    phi = inner.matrix
    expected = torch.stack([phi.real, phi.imag], dim=1).reshape(8 * 2, 16)  # rows ordered (measurement, re/im)
    torch.testing.assert_close(_dense(B, (4, 4)), expected)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randn(3, 1, 8, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close((B(x) * y).sum(), (x * B.adjoint(y)).sum())


def test_real_image_view_rejects_real_operator():
    with pytest.raises(ValueError, match="op"):
        RealImageView(RandomProjection((4, 4), 0.5, ensemble="gaussian"))

"""The sparse system-matrix backend of the ray transform: CSR products against the dense matrix, casts, the cache."""

from __future__ import annotations

import pytest
import torch

odl = pytest.importorskip("odl")
pytest.importorskip("astra")
from odl.applications import tomo  # noqa: E402

from rim_monai.operators.system_matrix import SparseSystemMatrix, estimate_matrix_bytes  # noqa: E402


def _space_geometry(n: int = 12, angles: int = 10):
    space = odl.uniform_discr([-n / 2, -n / 2], [n / 2, n / 2], (n, n), dtype="float32")
    return space, tomo.parallel_beam_geometry(space, num_angles=angles)


def _dense(matrix: SparseSystemMatrix) -> torch.Tensor:
    a, _ = matrix.matrices(torch.float64)
    return a.to_dense()


def test_matmul_and_transpose_equal_the_dense_matrix():
    matrix = SparseSystemMatrix(*_space_geometry())
    dense = _dense(matrix)
    m, n = dense.shape
    assert (m, n) == (10 * matrix.range_shape[-1], 144) and matrix.nnz == int((dense != 0).sum())
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    y = torch.randn(2, 3, *matrix.range_shape, dtype=torch.float64)
    torch.testing.assert_close(matrix.matmul(x), (x.reshape(6, n) @ dense.T).reshape(y.shape))
    torch.testing.assert_close(matrix.matmul(y, transpose=True), (y.reshape(6, m) @ dense).reshape(x.shape))


def test_float32_is_stored_and_one_cast_is_cached():
    matrix = SparseSystemMatrix(*_space_geometry())
    a32, _ = matrix.matrices(torch.float32)
    assert a32.values().data_ptr() == matrix.val.data_ptr()  # float32 uses the stored values, no copy
    a64, _ = matrix.matrices(torch.float64)
    again, _ = matrix.matrices(torch.float64)
    assert a64.values().data_ptr() == again.values().data_ptr()  # the cast is cached


def test_assembly_is_cached_by_geometry():
    space, geometry = _space_geometry(angles=7)
    first, second = SparseSystemMatrix(space, geometry), SparseSystemMatrix(*_space_geometry(angles=7))
    assert first.val.data_ptr() == second.val.data_ptr()
    assert SparseSystemMatrix(*_space_geometry(angles=8)).val.data_ptr() != first.val.data_ptr()


def test_memory_estimate():
    space, geometry = _space_geometry()
    matrix = SparseSystemMatrix(space, geometry)
    actual = sum(t.numel() * t.element_size() for t in matrix.buffers())
    assert 0.5 * actual <= estimate_matrix_bytes(space, geometry) <= 3 * actual
    space3d = odl.uniform_discr([-4, -4, -4], [4, 4, 4], (8, 8, 8), dtype="float32")
    assert estimate_matrix_bytes(space3d, tomo.cone_beam_geometry(space3d, 20, 10, num_angles=4)) == 2**62


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [(), (1,), (1, 1), (2,), (3,), (5,), (2, 3)])
def test_every_batch_size_equals_the_dense_matrix(batch, dtype):
    """Batch 1 goes through torch.mv and small batches are padded to CPU_COLUMN_BLOCK columns: same numbers."""
    matrix = SparseSystemMatrix(*_space_geometry())
    dense = _dense(matrix)
    m, n = dense.shape
    x = torch.randn(*batch, 12, 12, dtype=torch.float64)
    y = torch.randn(*batch, *matrix.range_shape, dtype=torch.float64)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    out = matrix.matmul(x.to(dtype))
    assert out.shape == y.shape and out.dtype == dtype
    torch.testing.assert_close(out.double(), (x.reshape(-1, n) @ dense.T).reshape(y.shape), **tol)
    back = matrix.matmul(y.to(dtype), transpose=True)
    assert back.shape == x.shape and back.dtype == dtype
    torch.testing.assert_close(back.double(), (y.reshape(-1, m) @ dense).reshape(x.shape), **tol)


def test_batch_one_equals_its_row_of_a_batch():
    """A sample gives the same image alone (torch.mv) as inside a batch (padded torch.sparse.mm)."""
    matrix = SparseSystemMatrix(*_space_geometry())
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    y = matrix.matmul(x)
    # float32 sums in another order (mv against mm): equal to rounding, relative to the output's scale
    torch.testing.assert_close(matrix.matmul(x[1:2]), y[1:2], rtol=1e-5, atol=1e-5 * float(y.abs().max()))
    back = matrix.matmul(y, transpose=True)
    torch.testing.assert_close(matrix.matmul(y[2:3], transpose=True), back[2:3], rtol=1e-5,
                               atol=1e-5 * float(back.abs().max()))

"""from_odl: ODL operators as batched LinearOperators, against ODL itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

odl = pytest.importorskip("odl")

from rim_monai.operators import LinearOperator, from_odl  # noqa: E402


def _arr(element):
    return np.asarray(element.asarray() if hasattr(element, "asarray") else element.data)


def _space(cell=0.5):
    return odl.uniform_discr([-3 * cell, -2 * cell], [3 * cell, 2 * cell], (6, 4), dtype="float32")


def _operators():
    rng = np.random.default_rng(0)
    space = _space()
    return {
        "gradient": odl.Gradient(space),
        "partial-derivative": odl.PartialDerivative(space, axis=0),
        "matrix-real": odl.MatrixOperator(rng.standard_normal((5, 3))),
        "matrix-complex": odl.MatrixOperator(rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))),
        "scaled-weighted": 3.0 * odl.IdentityOperator(space),
    }


OPS = _operators()


@pytest.mark.parametrize("name", list(OPS))
def test_matches_odl_and_is_euclidean_adjoint(name):
    op = OPS[name]
    a = from_odl(op)
    assert isinstance(a, LinearOperator)
    assert a.domain_shape == tuple(op.domain.shape) and a.range_shape == tuple(op.range.shape)
    assert a.domain_is_complex == op.domain.is_complex and a.range_is_complex == op.range.is_complex
    g = torch.Generator().manual_seed(0)

    def rand(shape, complex_):
        t = torch.randn(shape, generator=g, dtype=torch.float64)
        return torch.complex(t, torch.randn(shape, generator=g, dtype=torch.float64)) if complex_ else t

    x = rand((3, 2) + a.domain_shape, a.domain_is_complex)
    y = rand((3, 2) + a.range_shape, a.range_is_complex)
    ax = a(x)
    # forward: per-sample ODL result
    ref = _arr(op(op.domain.element(x[1, 0].numpy().astype(op.domain.dtype))))
    np.testing.assert_allclose(ax[1, 0].numpy(), ref, rtol=1e-5, atol=1e-5)
    # adjoint for the plain tensor inner product, whatever the ODL space weighting
    lhs = torch.vdot(ax.flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), a.adjoint(y).flatten())
    assert abs(complex(lhs - rhs)) <= 1e-5 * abs(complex(lhs))


def test_weighted_spaces_rescale_odl_adjoint():
    """ODL's ray transform adjoint is the Hilbert-space one (weights 0.25 on pixels, dtheta * du on the sinogram);
    from_odl's is the transpose of the system matrix."""
    pytest.importorskip("astra")
    from odl.applications import tomo

    from rim_monai.operators import RayTransform

    reference = RayTransform((10, 8), num_angles=6, pixel_size=0.5, backend="matrix")
    ray = tomo.RayTransform(reference.space, reference.odl_geometry, impl="astra_cpu")
    assert ray.domain.weighting.const != ray.range.weighting.const
    a = from_odl(ray)
    y = torch.rand(2, *a.range_shape)
    odl_adj = _arr(ray.adjoint(ray.range.element(y[0].numpy())))
    transpose = reference.adjoint(y)
    np.testing.assert_allclose(odl_adj * ray.domain.weighting.const / ray.range.weighting.const,
                               transpose[0].numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(odl_adj, transpose[0].numpy(), rtol=1e-2)
    torch.testing.assert_close(a.adjoint(y), transpose, rtol=1e-4, atol=1e-5)


def test_ray_transform_through_the_bridge():
    pytest.importorskip("astra")
    from odl.applications import tomo

    space = odl.uniform_discr([-5, -5], [5, 5], (10, 10), dtype="float32")
    ray = tomo.RayTransform(space, tomo.parallel_beam_geometry(space, num_angles=8), impl="astra_cpu")
    a = from_odl(ray)
    x = torch.rand(4, 1, 10, 10)
    y = a(x)
    assert y.shape == (4, 1) + tuple(ray.range.shape) and y.dtype == torch.float32
    np.testing.assert_allclose(y[2, 0].numpy(), _arr(ray(x[2, 0].numpy())), rtol=1e-5, atol=1e-5)
    # autograd backward is the adjoint
    x.requires_grad_(True)
    g = torch.rand_like(y)
    a(x).backward(g)
    torch.testing.assert_close(x.grad, a.adjoint(g))


def test_batch_loop_can_be_forbidden():
    a = from_odl(OPS["partial-derivative"], batch_loop_ok=False)
    assert a(torch.randn(1, 1, 6, 4)).shape == (1, 1, 6, 4)
    with pytest.raises(ValueError, match="batch_loop_ok=False"):
        a(torch.randn(2, 1, 6, 4))


def test_rejects_non_operators_and_nonlinear_ones():
    with pytest.raises(ValueError, match="op: expected an odl.Operator"):
        from_odl(np.eye(3))
    with pytest.raises(ValueError, match="op: expected a linear"):
        from_odl(odl.PowerOperator(odl.rn(3), 2))
    weighted = odl.rn(3, weighting=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="op.domain: expected a constant"):
        from_odl(odl.IdentityOperator(weighted))

"""RayTransform against ODL: both backends, FBP against ``fbp_op``, backend choice, ``replace`` and bad arguments.

Adjointness, autograd, batching and devices are covered by the shared contract (``cases/tomography.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

odl = pytest.importorskip("odl")
pytest.importorskip("astra")
from odl.applications import tomo  # noqa: E402

from rim_monai.operators import RayTransform, UnsupportedAbilityError  # noqa: E402
from rim_monai.operators.tomography import fbp_filter  # noqa: E402

GEOMETRIES = [
    ("parallel-square", dict(image_shape=(20, 20), num_angles=16)),
    ("parallel-rect-offset", dict(image_shape=(24, 20), num_angles=18, angle_offset=0.4, detector_shift=1.5,
                                  pixel_size=0.5)),
    ("fan-rect", dict(image_shape=(24, 20), num_angles=20, geometry="fan")),
    ("fan-shift", dict(image_shape=(20, 24), num_angles=16, geometry="fan", angle_offset=-0.3, detector_shift=-2.0,
                       src_radius=40.0, det_radius=25.0, arc=1.5 * math.pi)),
]
ids = [g[0] for g in GEOMETRIES]


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name,kwargs", GEOMETRIES, ids=ids)
def test_matrix_backend_equals_odl(name, kwargs):
    a = RayTransform(backend="matrix", **kwargs)
    b = RayTransform(backend="odl", **kwargs)
    x = _rand(2, 1, *a.domain_shape)
    y = _rand(2, 1, *a.range_shape, seed=1)
    assert _rel(a(x), b(x)) <= 1e-4
    assert _rel(a.adjoint(y), b.adjoint(y)) <= 1e-4
    # and both equal ODL's own ray transform applied to one sample (forward has no extra scaling)
    ray = tomo.RayTransform(a.space, a.odl_geometry, impl="astra_cpu")
    ref = torch.from_numpy(np.asarray(ray(x[0, 0].numpy()).data))
    assert _rel(a(x)[0, 0], ref) <= 1e-4


@pytest.mark.parametrize("name,kwargs", GEOMETRIES, ids=ids)
@pytest.mark.parametrize("filt,scaling,padding", [("ram-lak", 1.0, True), ("hann", 0.8, True),
                                                  ("shepp-logan", 1.0, False), ("cosine", 0.9, True),
                                                  ("hamming", 1.0, True)])
def test_fbp_equals_odl_fbp_op(name, kwargs, filt, scaling, padding):
    a = RayTransform(backend="matrix", **kwargs)
    ray = tomo.RayTransform(a.space, a.odl_geometry, impl="astra_cpu")
    fbp_odl = tomo.fbp_op(ray, padding=padding, filter_type=filt, frequency_scaling=scaling)
    y = _rand(3, *a.range_shape, seed=2)
    ours = a.fbp(y, filter=filt, frequency_scaling=scaling, padding=padding)
    assert ours.shape == (3,) + a.domain_shape
    ref = torch.stack([torch.from_numpy(np.asarray(fbp_odl(ray.range.element(s.numpy())).data)) for s in y])
    assert _rel(ours, ref) <= 1e-3


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_fbp_reconstructs_a_smooth_image(geometry):
    """FBP of noiseless data of a smooth blob is within a few percent of it (scale and position are right)."""
    n = 48
    a = RayTransform((n, n), num_angles=90, geometry=geometry, backend="matrix")
    r = torch.arange(n, dtype=torch.float32) - n / 2 + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    x = torch.exp(-((yy - 6) ** 2 + (xx + 4) ** 2) / (2 * 5.0**2))[None, None]
    x_hat = a.fbp(a(x))
    assert float((x_hat - x).norm() / x.norm()) < 0.05


def test_fbp_float64_and_batched_dims():
    a = RayTransform((16, 16), num_angles=12, backend="matrix")
    y = _rand(2, 3, *a.range_shape, seed=3).double()
    out = a.fbp(y, filter="hann")
    assert out.dtype == torch.float64 and out.shape == (2, 3, 16, 16)
    single = a.fbp(y[1, 2].float(), filter="hann")
    torch.testing.assert_close(out[1, 2].float(), single, rtol=1e-4, atol=1e-5)


def test_fbp_filter_responses():
    nu = torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(fbp_filter(nu, "Ram-Lak"), nu)
    hann = fbp_filter(nu, "hann", 0.5)
    assert float(hann[nu > 0.5].abs().max()) == 0.0
    torch.testing.assert_close(hann[2], nu[2] * math.cos(math.pi * 0.2 / 1.0) ** 2)
    with pytest.raises(ValueError, match="filter"):
        fbp_filter(nu, "gaussian")
    with pytest.raises(ValueError, match="frequency_scaling"):
        fbp_filter(nu, "hann", 0.0)


def test_auto_backend_follows_the_memory_budget():
    a = RayTransform((20, 20), num_angles=16)
    assert a.backend == "matrix"
    estimate = a.estimate_matrix_bytes()
    actual = sum(t.numel() * t.element_size() for t in a.system_matrix.buffers())
    assert 0.5 * actual <= estimate <= 3 * actual  # the estimate is in the right range
    small = RayTransform((20, 20), num_angles=16, memory_budget_bytes=estimate - 1)
    assert small.backend == "odl"
    assert RayTransform((20, 20), num_angles=16, memory_budget_bytes=estimate).backend == "matrix"


def test_defaults_and_attributes():
    a = RayTransform((30, 40), num_angles=10)
    assert a.arc == pytest.approx(math.pi) and a.detector_spacing == 1.0
    assert a.num_detectors == 50 and a.range_shape == (10, 50)  # covers the diagonal of 50 pixels
    f = RayTransform((30, 40), num_angles=10, geometry="fan", pixel_size=2.0)
    assert f.arc == pytest.approx(2 * math.pi)
    assert f.src_radius == pytest.approx(200.0) and f.det_radius == pytest.approx(100.0)
    assert f.detector_spacing == pytest.approx(3.0)  # pixel_size * magnification 1.5
    # the fan of the default detector encloses the disc around the image
    half_fan = math.atan(f.num_detectors * f.detector_spacing / 2 / (f.src_radius + f.det_radius))
    assert half_fan >= math.asin(50.0 / f.src_radius)
    np.testing.assert_allclose(a.odl_geometry.angles, (np.arange(10) + 0.5) * math.pi / 10)


def test_pixel_size_scales_line_integrals():
    x = _rand(1, 1, 16, 16)
    a = RayTransform((16, 16), num_angles=8, backend="matrix")
    b = RayTransform((16, 16), num_angles=8, backend="matrix", pixel_size=2.0, detector_spacing=2.0,
                     num_detectors=a.num_detectors)
    torch.testing.assert_close(b(x), 2.0 * a(x), rtol=1e-4, atol=1e-5)


def test_replace_changes_only_what_is_asked():
    a = RayTransform((20, 20), num_angles=16, geometry="fan", backend="matrix")
    b = a.replace(angle_offset=0.2, detector_shift=0.7, src_radius=50.0)
    assert (b.angle_offset, b.detector_shift, b.src_radius) == (0.2, 0.7, 50.0)
    assert (b.num_detectors, b.detector_spacing, b.det_radius) == (a.num_detectors, a.detector_spacing, a.det_radius)
    direct = RayTransform((20, 20), num_angles=16, geometry="fan", backend="matrix", angle_offset=0.2,
                          detector_shift=0.7, src_radius=50.0, det_radius=a.det_radius,
                          num_detectors=a.num_detectors, detector_spacing=a.detector_spacing)
    x = _rand(1, 1, 20, 20)
    torch.testing.assert_close(b(x), direct(x))
    assert not torch.allclose(b(x), a(x))
    # going back is the cached matrix, not a new assembly
    assert b.replace(angle_offset=0.0, detector_shift=0.0, src_radius=a.src_radius).system_matrix.val.data_ptr() == \
        a.system_matrix.val.data_ptr()
    c = a.replace(num_angles=8, geometry="parallel")
    assert c.range_shape == (8, 29) and c.arc == pytest.approx(math.pi)
    with pytest.raises(ValueError, match="changes: unknown parameter"):
        a.replace(angle=0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(geometry="cone"), "geometry: expected one of"),
        (dict(backend="cuda"), "backend: expected one of"),
        (dict(num_angles=0), "num_angles"),
        (dict(image_shape=(16,)), "image_shape"),
        (dict(pixel_size=-1.0), "pixel_size"),
        (dict(arc=0.0), "arc"),
        (dict(geometry="fan", src_radius=5.0), "src_radius"),
        (dict(geometry="fan", det_radius=0.0), "det_radius"),
        (dict(detector_spacing=0.0), "detector_spacing"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    args = dict(image_shape=(16, 16), num_angles=8) | kwargs
    with pytest.raises(ValueError, match=match):
        RayTransform(**args)


def test_fbp_bad_input():
    a = RayTransform((16, 16), num_angles=8)
    with pytest.raises(ValueError, match="y: expected shape"):
        a.fbp(torch.zeros(1, 8, a.num_detectors + 1))
    with pytest.raises(ValueError, match="filter"):
        a.fbp(torch.zeros(1, *a.range_shape), filter="box")


def test_from_geometry_any_2d_geometry():
    space = odl.uniform_discr([-8, -6], [8, 6], (16, 12), dtype="float32")
    geometry = tomo.cone_beam_geometry(space, src_radius=30, det_radius=20, num_angles=14)
    a = RayTransform.from_geometry(space, geometry, backend="matrix")
    assert a.geometry == "custom" and a.domain_shape == (16, 12) and a.range_shape == geometry.partition.shape
    ray = tomo.RayTransform(space, geometry, impl="astra_cpu")
    x = _rand(16, 12)
    assert _rel(a(x[None])[0], torch.from_numpy(np.asarray(ray(x.numpy()).data))) <= 1e-4
    assert a.supports("fbp") and not a.supports("replace")
    with pytest.raises(UnsupportedAbilityError, match="^geometry: RayTransform does not support 'replace'.*from_geometry"):
        a.replace(angle_offset=0.1)
    with pytest.raises(ValueError, match="space"):
        RayTransform.from_geometry(np.zeros((4, 4)), geometry)
    # the first name of from_geometry is kept: same operator
    alias = RayTransform.from_odl(space, geometry, backend="matrix")
    assert alias.geometry == "custom" and torch.equal(alias(x[None]), a(x[None]))
    space3d = odl.uniform_discr([-4, -4, -4], [4, 4, 4], (8, 8, 8), dtype="float32")
    with pytest.raises(ValueError, match="geometry: a 2D geometry"):
        RayTransform.from_geometry(space3d, geometry)


def _cone_case():
    space = odl.uniform_discr([-8, -8, -8], [8, 8, 8], (16, 16, 16), dtype="float32")
    return space, tomo.cone_beam_geometry(space, src_radius=40, det_radius=20, num_angles=12)


def test_cone_beam_needs_astra_cuda():
    space, geometry = _cone_case()
    if tomo.ASTRA_CUDA_AVAILABLE:
        pytest.skip("ASTRA CUDA is available: the error path does not apply")
    with pytest.raises(RuntimeError, match="astra_cuda"):
        RayTransform.from_geometry(space, geometry)
    with pytest.raises(ValueError, match="backend: 'matrix' supports 2D"):
        RayTransform.from_geometry(space, geometry, backend="matrix")


@pytest.mark.skipif(not (torch.cuda.is_available() and tomo.ASTRA_CUDA_AVAILABLE), reason="needs CUDA and ASTRA CUDA")
def test_cone_beam_on_gpu():
    space, geometry = _cone_case()
    a = RayTransform.from_geometry(space, geometry).to("cuda")
    x = _rand(2, 1, 16, 16, 16).cuda()
    y = _rand(2, 1, *a.range_shape, seed=1).cuda()
    assert a(x).shape == (2, 1) + tuple(geometry.partition.shape)
    lhs, rhs = torch.vdot(a(x).flatten(), y.flatten()), torch.vdot(x.flatten(), a.adjoint(y).flatten())
    assert abs(float(lhs - rhs)) <= 1e-2 * abs(float(lhs))


# ---------------------------------------------------------------- detector offset, angle offset, translation
def _blob(n, centre=(5.0, -3.0), sigma=3.0):
    r = torch.arange(n, dtype=torch.float32) - n / 2 + 0.5
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return torch.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))[None, None]


def _sample_along_detector(y, offset_bins):
    """``y`` linearly interpolated at bin ``l + offset_bins`` (zero outside the detector)."""
    num_det = y.shape[-1]
    position = torch.arange(num_det, dtype=torch.float64) + offset_bins
    low = position.floor().long()
    weight = (position - low).to(y.dtype)
    padded = torch.nn.functional.pad(y, (1, 1))
    return padded[..., (low + 1).clamp(0, num_det + 1)] * (1 - weight) + \
        padded[..., (low + 2).clamp(0, num_det + 1)] * weight


@pytest.mark.parametrize("backend", ["matrix", "odl"])
@pytest.mark.parametrize("geometry", ["parallel", "fan"])
@pytest.mark.parametrize("shift_bins", [2.0, -3.0, 1.5])
def test_detector_shift_translates_the_sinogram(backend, geometry, shift_bins):
    """Bin ``l`` of a detector shifted by ``s`` sits at ``u_l + s``: ``y_s[:, l] = y_0[:, l + s / du]``.

    ODL 1.0's ASTRA CPU conversion of a 2D parallel geometry dropped the offset (``y_s == y_0``); fan beam was right.
    Whole-bin shifts are exact; half-bin shifts hold to the accuracy of linear interpolation of ``y_0``, which is
    coarser for ASTRA's Siddon fan projector (``line_fanflat``) than for the interpolating parallel one (``linear``);
    without the shift the error would be about 0.3.
    """
    tol = 1e-5 if shift_bins.is_integer() else {"parallel": 3e-2, "fan": 8e-2}[geometry]
    a = RayTransform((32, 32), 20, geometry=geometry, backend=backend, num_detectors=60)
    x = _blob(32)
    y0 = a(x)
    b = a.replace(detector_shift=shift_bins * a.detector_spacing)
    y = b(x)
    assert not torch.allclose(y, y0, atol=0.1 * float(y0.abs().max()))  # replace() changed the operator
    assert _rel(y, _sample_along_detector(y0, shift_bins)) <= tol


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_detector_shift_backends_agree(geometry):
    kwargs = dict(image_shape=(24, 20), num_angles=14, geometry=geometry, detector_shift=2.7, pixel_size=0.5)
    a, b = RayTransform(backend="matrix", **kwargs), RayTransform(backend="odl", **kwargs)
    x, y = _rand(2, 1, 24, 20), _rand(2, 1, *a.range_shape, seed=1)
    assert _rel(a(x), b(x)) <= 1e-4 and _rel(a.adjoint(y), b.adjoint(y)) <= 1e-4


def test_parallel_without_offset_equals_odl_conversion():
    """With a centred detector the ``parallel_vec`` description gives ODL's own ``'parallel'`` numbers."""
    space = odl.uniform_discr([-6, -5], [6, 5], (24, 20), dtype="float32")

    def geometry():  # a fresh ODL geometry each time: ODL's conversion cache is per geometry object
        return tomo.Parallel2dGeometry(odl.uniform_partition(0.4, 0.4 + math.pi, 18),
                                       odl.uniform_partition(-8, 8, 32))

    ray = tomo.RayTransform(space, geometry(), impl="astra_cpu")
    assert ray.geometry.implementation_cache.get("astra_cpu", {}).get("type", "parallel") == "parallel"
    x = _rand(24, 20)
    ref = torch.from_numpy(np.asarray(ray(x.numpy()).data))
    for backend in ("matrix", "odl"):
        ours = RayTransform.from_geometry(space, geometry(), backend=backend)
        assert _rel(ours(x[None])[0], ref) <= 1e-4


@pytest.mark.parametrize("backend", ["matrix", "odl"])
def test_parallel_geometry_translation_is_honoured(backend):
    """An ODL geometry translated by ``t`` sees the image moved by ``-t`` (whole pixels: exact)."""
    space = odl.uniform_discr([-10, -10], [10, 10], (20, 20), dtype="float32")
    angles, det = odl.uniform_partition(0, math.pi, 12), odl.uniform_partition(-15, 15, 30)
    plain = RayTransform.from_geometry(space, tomo.Parallel2dGeometry(angles, det), backend=backend)
    moved = RayTransform.from_geometry(space, tomo.Parallel2dGeometry(angles, det, translation=(2.0, -3.0)),
                                  backend=backend)
    x = torch.zeros(1, 1, 20, 20)
    x[..., 6:11, 7:12] = 1.0
    assert _rel(moved(x), plain(torch.roll(x, shifts=(-2, 3), dims=(-2, -1)))) <= 1e-5
    assert _rel(moved(x), plain(x)) > 0.5


@pytest.mark.parametrize("geometry,arc", [("parallel", math.pi), ("fan", 2 * math.pi)])
def test_angle_offset_rotates_the_sinogram_rows(geometry, arc):
    """Offsetting the angles by one step moves every view one row up: ``y_d[k] = y_0[k + 1]``."""
    a = RayTransform((24, 24), 16, geometry=geometry, backend="matrix")
    x = _blob(24)
    y0 = a(x)
    y = a.replace(angle_offset=arc / 16)(x)
    assert _rel(y[..., :-1, :], y0[..., 1:, :]) <= 1e-4
    assert _rel(y, y0) > 0.05


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
def test_fbp_with_a_shifted_detector_puts_the_object_in_place(geometry):
    n = 40
    x = _blob(n, centre=(6.0, -4.0), sigma=4.0)
    a = RayTransform((n, n), 60, geometry=geometry, backend="matrix").replace(detector_shift=3.0)
    unshifted = a.replace(detector_shift=0.0)
    x_hat = a.fbp(a(x))
    error = float((x_hat - x).norm() / x.norm())
    assert error < {"parallel": 0.04, "fan": 0.08}[geometry]  # fan FBP is approximate (see RayTransform.fbp)
    assert error <= float((unshifted.fbp(unshifted(x)) - x).norm() / x.norm()) + 2e-3  # the shift costs nothing
    r = torch.arange(n, dtype=torch.float64) - n / 2 + 0.5

    def centroid(image):  # of the positive part (the ramp filter's negative lobes pull it ~0.3 px inwards)
        w = image[0, 0].double().clamp(min=0)
        return torch.stack([(w.sum(1) * r).sum(), (w.sum(0) * r).sum()]) / w.sum()

    where = centroid(x_hat)
    assert float((where - centroid(unshifted.fbp(unshifted(x)))).abs().max()) < 0.05
    assert float((where - torch.tensor([6.0, -4.0], dtype=torch.float64)).abs().max()) < 0.5
    # reconstructing with the unshifted operator misplaces (parallel) or smears (full fan turn) it
    assert float((unshifted.fbp(a(x)) - x).norm() / x.norm()) > 2.5 * error


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
@pytest.mark.parametrize("pixel_size", [1.0, 0.5])
def test_adjoint_against_odl_adjoint(geometry, pixel_size):
    """ODL 1.0's ``RayTransform.adjoint`` is the adjoint for its weighted L² inner products: ASTRA's back-projection
    (the transpose) times ``range.weighting.const / domain.weighting.const``. A space whose cells have volume 1
    (the default ``pixel_size=1``) is unweighted in ODL and so is its sinogram space: the factor is 1 and ODL's
    adjoint equals ``A.adjoint``. Otherwise the factor is ``range.cell_volume / domain.cell_volume``."""
    a = RayTransform((32, 28), num_angles=24, geometry=geometry, pixel_size=pixel_size, backend="matrix")
    ray = tomo.RayTransform(a.space, a.odl_geometry, impl="astra_cpu")
    y = _rand(1, 1, *a.range_shape, seed=3)
    ours = a.adjoint(y)[0, 0]
    theirs = torch.from_numpy(np.asarray(ray.adjoint(y[0, 0].numpy()).data))
    factor = 1.0 if pixel_size == 1.0 else ray.range.cell_volume / ray.domain.cell_volume
    assert (factor == 1.0) == (not a.space.is_weighted)
    assert _rel(factor * ours, theirs) <= 1e-5
    if pixel_size != 1.0:
        assert abs(factor - 1.0) > 0.1  # the factor is real, not a rounding effect

"""Ray-transform and ODL-bridge cases for the shared operator contract (small sizes so the contract stays fast)."""

from rim_monai.operators import RayTransform
from tests.operators.cases import OperatorCase

_ODL = ("odl", "astra")


def _odl_gradient_component():
    import odl

    from rim_monai.operators import from_odl

    space = odl.uniform_discr([-1, -1], [1, 1], (7, 6), dtype="float32")
    return from_odl(odl.PartialDerivative(space, axis=1))


def _odl_matrix_complex():
    import numpy as np
    import odl

    from rim_monai.operators import from_odl

    rng = np.random.default_rng(0)
    return from_odl(odl.MatrixOperator(rng.standard_normal((5, 4)) + 1j * rng.standard_normal((5, 4))))


def _from_geometry():
    import odl
    from odl.applications import tomo

    space = odl.uniform_discr([-10, -8], [10, 8], (20, 16), dtype="float32")
    return RayTransform.from_geometry(space, tomo.cone_beam_geometry(space, src_radius=40, det_radius=20, num_angles=12),
                                      backend="matrix")


CASES = [
    # a custom ODL geometry: fbp, but no parameters to replace
    OperatorCase("ray-matrix-from-geometry", _from_geometry, requires=_ODL),
    OperatorCase("ray-matrix-parallel-square", lambda: RayTransform((20, 20), 16, backend="matrix"), requires=_ODL,
                 changes={"angle_offset": 0.1}),
    OperatorCase(
        "ray-matrix-parallel-rect-offset",
        lambda: RayTransform((24, 20), 18, backend="matrix", angle_offset=0.3, detector_shift=1.5, pixel_size=0.5),
        batch=(3,), requires=_ODL, changes={"detector_shift": 0.0},
    ),
    OperatorCase("ray-matrix-fan-rect", lambda: RayTransform((24, 20), 20, geometry="fan", backend="matrix"),
                 requires=_ODL, changes={"src_radius": 60.0}),
    OperatorCase(
        "ray-matrix-fan-shift",
        lambda: RayTransform((20, 24), 16, geometry="fan", backend="matrix", angle_offset=-0.2, detector_shift=-2.0,
                             src_radius=40.0, det_radius=25.0),
        requires=_ODL, changes={"det_radius": 30.0},
    ),
    # ODL/ASTRA compute in float32 and on the CPU: no float64 bound, no CUDA device check
    OperatorCase("ray-odl-parallel-rect", lambda: RayTransform((24, 20), 16, backend="odl"), float64=False,
                 requires=_ODL, cuda=False, changes={"detector_shift": 0.5}),
    OperatorCase("ray-odl-fan-offset",
                 lambda: RayTransform((20, 20), 16, geometry="fan", backend="odl", angle_offset=0.5, detector_shift=1.0),
                 float64=False, requires=_ODL, cuda=False, changes={"angle_offset": 0.0}),
    OperatorCase("odl-partial-derivative", _odl_gradient_component, float64=False, requires=("odl",), cuda=False),
    OperatorCase("odl-matrix-complex", _odl_matrix_complex, batch=(2,), requires=("odl",), cuda=False),
]

r"""The sparse system matrix of a 2D ray transform, assembled once from ASTRA's CPU projector and applied in torch.

For a 2D ODL reconstruction space (``n`` pixels) and tomography geometry (``m`` detector readings), the discretised
ray transform is a sparse matrix :math:`A \in \mathbb{R}^{m \times n}`: :math:`A_{ij}` is the length (ASTRA's
``line_fanflat``) or linear-interpolation weight (``linear``, parallel beam) with which pixel ``j`` enters reading
``i``, with ODL's scaling. :class:`SparseSystemMatrix` holds :math:`A` and :math:`A^T` in CSR form (float32 values,
int32 indices) and applies either to every sample of a batch with one ``torch.sparse.mm``, on CPU or GPU, in float32
or float64 (cast values are cached). Assembly is cached by geometry in a small LRU shared by all instances, so a
search that returns to an earlier geometry costs no re-assembly.

:func:`astra_cpu_projection_geometry` is the ASTRA description of an ODL geometry that both ray-transform backends
use: it keeps the detector offset of 2D parallel beam, which ODL 1.0's own conversion drops.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

__all__ = [
    "SparseSystemMatrix", "astra_cpu_projection_geometry", "estimate_matrix_bytes", "MATRIX_CACHE_SIZE",
    "CPU_COLUMN_BLOCK",
]

#: on CPU, batches of 2 or more samples are padded with zero columns to a multiple of this before the sparse product
CPU_COLUMN_BLOCK = 4

#: number of assembled system matrices kept (CPU tensors, shared by all instances; least recently used dropped)
MATRIX_CACHE_SIZE = 8

# geometry key -> (crow, col, val, crow_t, col_t, val_t) as CPU tensors
_MATRIX_CACHE: "OrderedDict[str, tuple[torch.Tensor, ...]]" = OrderedDict()


def _geometry_hash(vol_geom: dict, proj_geom: dict, proj_type: str) -> str:
    digest = hashlib.sha1(proj_type.encode())

    def feed(obj: Any) -> None:
        if isinstance(obj, dict):
            for k in sorted(obj):
                digest.update(str(k).encode())
                feed(obj[k])
        elif isinstance(obj, np.ndarray):
            digest.update(str(obj.shape).encode())
            digest.update(np.ascontiguousarray(obj, dtype=np.float64).tobytes())
        else:
            digest.update(repr(obj).encode())

    feed(vol_geom)
    feed(proj_geom)
    return digest.hexdigest()


def _is_flat_parallel_2d(geometry) -> bool:
    from odl.applications.tomo.geometry.detector import Flat1dDetector
    from odl.applications.tomo.geometry.parallel import ParallelBeamGeometry

    return isinstance(geometry, ParallelBeamGeometry) and geometry.ndim == 2 and isinstance(
        geometry.detector, Flat1dDetector)


def astra_cpu_projection_geometry(geometry) -> dict:
    r"""ASTRA CPU projection geometry of an ODL 2D geometry, keeping the detector offset of parallel beam.

    ODL 1.0 converts a 2D parallel geometry for ASTRA's CPU projectors into ASTRA's ``'parallel'`` type, which
    has only angles, bin width and bin count: a detector whose partition is not centred on 0
    (``detector_shift``) and a ``translation`` of the geometry are silently dropped (fan beam goes through
    ``fanflat_vec`` and is right). Here every 2D parallel geometry is described as ASTRA's ``'parallel_vec'``
    instead, one row :math:`(r, d, u)` per angle :math:`\theta`, taken from the ODL geometry itself:

    .. math::
        r = -\mathrm{det\_to\_src}(\theta, u_0), \quad d = \mathrm{det\_point\_position}(\theta, u_0), \quad
        u = \Delta u\, \mathrm{det\_axis}(\theta),

    the ray direction, the detector centre (:math:`u_0`, the midpoint of the detector partition) and the bin step,
    each rotated by :math:`-\pi/2` into ASTRA's volume axes exactly as ODL does for ``fanflat_vec``. The result is
    stored in the geometry's ``implementation_cache["astra_cpu"]``, where ODL's own ``astra_cpu`` ray transform
    (the ``odl`` backend) looks first, so both backends use it. With no offset it gives the same system matrix
    as ODL's ``'parallel'`` conversion (to float32 rounding).

    Args:
        geometry: a 2D ``odl.applications.tomo`` geometry.

    Returns:
        The ASTRA projection geometry (a dict); other geometries get ODL's own conversion.
    """
    import astra
    from odl.applications.tomo.backends.astra_setup import astra_projection_geometry

    if not _is_flat_parallel_2d(geometry):
        return astra_projection_geometry(geometry, "cpu")
    cached = geometry.implementation_cache.get("astra_cpu")
    if isinstance(cached, dict) and cached.get("type") == "parallel_vec":
        return cached
    rotation = np.array([[0.0, 1.0], [-1.0, 0.0]])  # by -pi/2: ODL (x1, x2) -> ASTRA volume axes
    angles = np.asarray(geometry.angles, dtype=np.float64)
    centre = float(np.asarray(geometry.det_params.mid_pt).reshape(-1)[0])
    vectors = np.zeros((angles.size, 6))
    vectors[:, 0:2] = -np.asarray(geometry.det_to_src(angles, centre)).reshape(-1, 2) @ rotation.T
    vectors[:, 2:4] = np.asarray(geometry.det_point_position(angles, centre)).reshape(-1, 2) @ rotation.T
    step = float(geometry.det_partition.cell_sides[0])
    vectors[:, 4:6] = step * np.asarray(geometry.det_axis(angles)).reshape(-1, 2) @ rotation.T
    proj_geom = astra.create_proj_geom("parallel_vec", int(geometry.detector.size), vectors)
    geometry.implementation_cache["astra_cpu"] = proj_geom
    return proj_geom


def estimate_matrix_bytes(space, geometry) -> int:
    """Estimated memory of the sparse system matrix and its transpose (CSR, float32 values, int32 indices).

    Each pixel meets about ``2 * max(pixel_size / ray_spacing, 0.5)`` rays per view with ASTRA's line/linear
    projectors, where ``ray_spacing`` is the detector spacing scaled to the rotation centre.

    Args:
        space: the ODL reconstruction space.
        geometry: the ODL geometry; 3D geometries (no CPU matrix) give ``2**62``.
    """
    if geometry.ndim != 2:
        return 2**62
    pixel = float(space.cell_sides[0])
    spacing = float(geometry.det_partition.cell_sides[0])
    if hasattr(geometry, "src_radius"):
        spacing *= geometry.src_radius / (geometry.src_radius + geometry.det_radius)
    nnz = 2.0 * max(pixel / spacing, 0.5) * space.size * geometry.motion_partition.size
    rows = space.size + int(np.prod(geometry.partition.shape))
    return int(2 * nnz * (4 + 4) + 2 * rows * 4)


def _csr_parts(matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    idx = np.int32 if matrix.nnz < 2**31 - 1 else np.int64
    return (
        torch.from_numpy(matrix.indptr.astype(idx)),
        torch.from_numpy(matrix.indices.astype(idx)),
        torch.from_numpy(matrix.data.astype(np.float32)),
    )


def _assemble(space, geometry) -> tuple[torch.Tensor, ...]:
    """CSR parts of ``A`` and ``A^T`` from ASTRA's CPU projector for an ODL space and 2D geometry (cached)."""
    import astra
    from odl.applications.tomo.backends.astra_cpu import default_astra_proj_type
    from odl.applications.tomo.backends.astra_setup import astra_projector, astra_volume_geometry

    vol_geom = astra_volume_geometry(space, "cpu")
    proj_geom = astra_cpu_projection_geometry(geometry)
    proj_type = default_astra_proj_type(geometry)
    key = _geometry_hash(vol_geom, proj_geom, proj_type)
    if key in _MATRIX_CACHE:
        _MATRIX_CACHE.move_to_end(key)
        return _MATRIX_CACHE[key]
    proj_id = astra_projector(proj_type, vol_geom, proj_geom, 2)
    try:
        matrix_id = astra.projector.matrix(proj_id)
        try:
            matrix = astra.matrix.get(matrix_id).tocsr()
        finally:
            astra.matrix.delete(matrix_id)
    finally:
        astra.projector.delete(proj_id)
    matrix.eliminate_zeros()
    parts = _csr_parts(matrix) + _csr_parts(matrix.T.tocsr())
    _MATRIX_CACHE[key] = parts
    while len(_MATRIX_CACHE) > MATRIX_CACHE_SIZE:
        _MATRIX_CACHE.popitem(last=False)
    return parts


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)


class SparseSystemMatrix(torch.nn.Module):
    r"""The system matrix :math:`A` (and :math:`A^T`) of a 2D ray transform as torch CSR buffers.

    Shapes: :meth:`matmul` maps ``(*batch, *domain_shape)`` to ``(*batch, *range_shape)`` (``transpose=True``: the
    other way), with ``domain_shape = space.shape`` and ``range_shape = geometry.partition.shape``; all samples of
    the batch go through one ``torch.sparse.mm``. The buffers are not saved in a ``state_dict`` and follow ``.to()``.

    Args:
        space: a 2D ``odl.DiscretizedSpace``.
        geometry: a 2D ``odl.applications.tomo`` geometry (described to ASTRA by
            :func:`astra_cpu_projection_geometry`).

    Example:
        >>> import odl                                                       # doctest: +SKIP
        >>> from odl.applications import tomo                                # doctest: +SKIP
        >>> space = odl.uniform_discr([-1, -1], [1, 1], (32, 32), dtype="float32")   # doctest: +SKIP
        >>> matrix = SparseSystemMatrix(space, tomo.parallel_beam_geometry(space, num_angles=20))  # doctest: +SKIP
        >>> matrix.matmul(torch.ones(2, 1, 32, 32)).shape[:2], matrix.nnz > 0                      # doctest: +SKIP
        (torch.Size([2, 1]), True)
    """

    def __init__(self, space, geometry) -> None:
        super().__init__()
        parts = _assemble(space, geometry)
        for name, tensor in zip(("crow", "col", "val", "crow_t", "col_t", "val_t"), parts):
            self.register_buffer(name, tensor, persistent=False)
        self.domain_shape = tuple(int(s) for s in space.shape)
        self.range_shape = tuple(int(s) for s in geometry.partition.shape)
        self._cast_cache: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def nnz(self) -> int:
        """Number of stored non-zeros of :math:`A`."""
        return int(self.val.numel())

    def matrices(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, A^T)`` as sparse CSR tensors with values of ``dtype`` (float32 as stored; one cast copy cached)."""
        if dtype == torch.float32:
            val, val_t = self.val, self.val_t
        else:
            key = (str(self.val.device), dtype)
            if key not in self._cast_cache:
                self._cast_cache.clear()  # keep one cast copy (the device or dtype changed)
                self._cast_cache[key] = (self.val.to(dtype), self.val_t.to(dtype))
            val, val_t = self._cast_cache[key]
        m, n = int(np.prod(self.range_shape)), int(np.prod(self.domain_shape))
        return _csr(self.crow, self.col, val, (m, n)), _csr(self.crow_t, self.col_t, val_t, (n, m))

    def matmul(self, value: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        """``A x`` of ``x`` ``(*batch, *domain_shape)``, or with ``transpose`` ``A^T y`` of ``y`` ``(*batch, *range_shape)``.

        All samples go through one sparse product. On CPU a single sample uses the sparse matrix-vector product
        (``torch.mv``) and a small batch is padded with zero columns to a multiple of :data:`CPU_COLUMN_BLOCK`:
        MKL's CSR matrix-matrix product is several times slower per call for 1–3 columns than for 4 (measured in
        ``docs/operators.md``, "Batch 1"). Padding adds zero columns only, so the numbers are the same.
        """
        a, a_t = self.matrices(value.dtype)
        matrix, in_shape, out_shape = (a_t, self.range_shape, self.domain_shape) if transpose else (
            a, self.domain_shape, self.range_shape)
        lead = tuple(value.shape[: value.ndim - len(in_shape)])
        rows = value.reshape(-1, int(np.prod(in_shape)))  # (batch, N)
        count = rows.shape[0]
        if value.device.type == "cpu" and count == 1:
            return torch.mv(matrix, rows[0]).reshape(lead + tuple(out_shape))
        columns = rows.T  # (N, batch): one matmul for the batch
        pad = (-count) % CPU_COLUMN_BLOCK if value.device.type == "cpu" and count > 0 else 0
        if pad:
            columns = torch.cat((columns, columns.new_zeros(columns.shape[0], pad)), dim=1)
        out = torch.sparse.mm(matrix, columns.contiguous())
        if pad:
            out = out[:, :count]
        return out.T.reshape(lead + tuple(out_shape))

    def extra_repr(self) -> str:
        return f"domain_shape={self.domain_shape}, range_shape={self.range_shape}, nnz={self.nnz}"

r"""TV part of the peer benchmark (:mod:`rim_monai.benchmarks.peers`): quality and time to converge.

Every contender solves its own TV-regularised least-squares problem on the *same* operator and data, from
:math:`x_0 = 0`:

- ``rim_monai tv_pdhg``: :math:`\tfrac12\|Ax-y\|^2 + \lambda\sum_{ij}\sqrt{|\nabla_h x|^2 + |\nabla_w x|^2}`
  (isotropic, Neumann boundary; complex images: moduli inside the root), Chambolle–Pock on :math:`[A; \nabla]`.
- ``deepinv FISTA + TVPrior``: ``deepinv.optim.FISTA`` with ``L2()`` data fidelity (:math:`\tfrac12\|Ax-y\|^2`),
  ``TVPrior`` (the same isotropic Neumann TV; MRI images are real ``(B, 2, H, W)`` channels, so the TV is
  :math:`\mathrm{TV}(\Re x) + \mathrm{TV}(\Im x)`), step :math:`1/\|A\|^2` from ``physics.compute_norm``. The TV
  proximal map is itself iterative (``TVDenoiser``, warm-started, at most 1000 iterations); it stops at a relative
  change of 1e-5 (``TVDenoiser``'s default). ``TVPrior``'s default of 1e-8 is rarely met, so every outer iteration
  runs up to 1000 inner ones (the CT case measures that cost); the looser 1e-5 leaves FISTA slightly above the
  minimum of its objective (the own-objective values show by how much).
- ``sigpy``: ``sigpy.mri.app.TotalVariationRecon`` (MRI) or ``sigpy.app.LinearLeastSquares`` with
  ``FiniteDifference`` + ``L1Reg`` (CT, the project's ray transform wrapped as a ``sigpy.linop.Linop`` through
  NumPy): :math:`\tfrac12\|Ax-y\|^2 + \lambda\|\nabla x\|_1` — *anisotropic* TV with *periodic* differences — by
  sigpy's primal-dual hybrid gradient (step from 30 power iterations).
- MRI also runs ``sigpy.mri.app.L1WaveletRecon`` (:math:`\lambda\|\Psi x\|_1`, Daubechies-4 wavelets, FISTA), the
  non-TV baseline a sigpy user would try next.

The objectives differ, so each method gets its own weight: :math:`\lambda = c\,\mu s` with :math:`\mu s` the
project's :func:`~rim_monai.classical.default_weight_scale` of the data (a common, data-driven unit) and ``c`` found
by a coarse-to-fine search (:func:`search_plan`; the contenders' runs interleaved): factor-4 steps (extended while the best is on an edge), then the factor-2 and
factor-:math:`\sqrt2` neighbours of the best. Every weight of the search is one full run of ``iterations``
(2000) at batch 1 with the PSNR recorded after every iteration, so the best weight is the best *2000-iteration*
PSNR, and its run gives the rest: the *time to converge* is the time until the PSNR stays within ``tol_db`` of the
2000-iteration value (:func:`iterations_to_reach`), with the scoring time subtracted (it includes each method's own
set-up: norm estimates, power iterations). The run also reports each method's own objective value at the end
(:func:`tv_isotropic`, :func:`tv_real_imag`, :func:`tv_anisotropic_periodic`, or the wavelet :math:`\ell_1` norm).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "Contender",
    "tv_isotropic",
    "tv_real_imag",
    "tv_anisotropic_periodic",
    "iterations_to_reach",
    "convergence_run",
    "search_plan",
    "search_weight",
    "project_tv",
    "deepinv_tv",
    "sigpy_tv_ct",
    "sigpy_tv_mri",
    "sigpy_l1_wavelet_mri",
    "study",
]

Callback = Callable[[int, torch.Tensor], None]


@dataclass
class Contender:
    """A regularised solver with a weight.

    ``solve(lams, iterations, callback)`` returns ``(len(lams), 1, H, W)`` estimates (complex for MRI) and calls
    ``callback(k, x)`` after each iteration ``k`` with the current estimates in that layout; the benchmark calls it
    with one weight at a time. ``regulariser(x)`` is the method's own penalty per sample (``(B,)``), so that its
    objective is :math:`\tfrac12\|Ax-y\|^2 + \lambda R(x)`.
    """

    name: str
    objective: str
    solve: Callable[[Sequence[float], int, Callback | None], torch.Tensor]
    regulariser: Callable[[torch.Tensor], torch.Tensor] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def tv_isotropic(x: torch.Tensor) -> torch.Tensor:
    """Isotropic TV per sample, Neumann forward differences over the last two axes (complex: moduli), ``(B,)``.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[..., 2:, :] = 1.0   # one horizontal edge, 4 pixels long
        >>> float(tv_isotropic(x))
        4.0
    """
    magnitude = torch.zeros(x.shape, dtype=x.real.dtype, device=x.device)
    magnitude[..., :-1, :] += (x[..., 1:, :] - x[..., :-1, :]).abs() ** 2
    magnitude[..., :, :-1] += (x[..., :, 1:] - x[..., :, :-1]).abs() ** 2
    return magnitude.sqrt().reshape(x.shape[0], -1).sum(dim=1)


def tv_real_imag(x: torch.Tensor) -> torch.Tensor:
    """:func:`tv_isotropic` of the real part plus that of the imaginary part (deepinv's TV on 2-channel images)."""
    return tv_isotropic(x.real) + tv_isotropic(x.imag) if x.is_complex() else tv_isotropic(x)


def tv_anisotropic_periodic(x: torch.Tensor) -> torch.Tensor:
    """:math:`\|\nabla x\|_1` with periodic differences over the last two axes (sigpy's ``FiniteDifference`` +
    ``L1Reg``), per sample.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[..., 2:, :] = 1.0   # two periodic edges, 4 pixels long
        >>> float(tv_anisotropic_periodic(x))
        8.0
    """
    d = (x - x.roll(1, dims=-2)).abs() + (x - x.roll(1, dims=-1)).abs()
    return d.reshape(x.shape[0], -1).sum(dim=1)


def iterations_to_reach(psnrs: Sequence[float], tol_db: float = 0.01) -> int:
    """The first iteration (1-based) from which the PSNR stays within ``tol_db`` of the last value.

    Example:
        >>> iterations_to_reach([10.0, 20.0, 29.995, 30.02, 30.0], tol_db=0.01)
        5
        >>> iterations_to_reach([10.0, 29.995, 30.005, 30.0], tol_db=0.01)
        2
    """
    if not len(psnrs):
        raise ValueError("psnrs: expected at least one value, got none.")
    final = psnrs[-1]
    k = len(psnrs)
    while k > 1 and abs(psnrs[k - 2] - final) <= tol_db:
        k -= 1
    return k


# ---------------------------------------------------------------------------------------------------- contenders
def project_tv(y: torch.Tensor, operator: Any) -> Contender:
    """``rim_monai.classical.tv_pdhg`` with ``tol=0`` (runs every iteration); several weights run as a batch."""
    from rim_monai.classical import tv_pdhg

    def solve(lams: Sequence[float], iterations: int, callback: Callback | None = None) -> torch.Tensor:
        ys = y.expand(len(lams), *y.shape[1:]).clone()
        lam = torch.tensor(list(lams), dtype=torch.float32)
        return tv_pdhg(ys, operator, lam=lam, iterations=iterations, tol=0.0, callback=callback)

    return Contender("rim_monai tv_pdhg", "1/2||Ax-y||² + λ TV_iso(x), Neumann; complex TV on moduli",
                     solve, tv_isotropic, settings={"tol": 0.0, "x0": "zeros"})


def deepinv_tv(y: torch.Tensor, physics: Any, to_native: Callable, from_native: Callable, inner: int,
               image_shape: Sequence[int], crit: float = 1e-5) -> Contender:
    """deepinv's FISTA with ``L2`` and ``TVPrior``; several weights run as a batch through a per-sample TV threshold.

    Args:
        y: measurements in the project's layout ``(1, ...)``.
        physics: a deepinv ``LinearPhysics``.
        to_native: project layout -> deepinv layout (measurements).
        from_native: deepinv image layout -> project layout ``(B, 1, H, W)``.
        inner: ``n_it_max`` of the TV proximal solver (deepinv's default 1000).
        image_shape: the deepinv image shape of one sample, e.g. ``(1, H, W)`` or ``(2, H, W)``.
        crit: ``def_crit`` of the TV proximal solver, its relative-change stopping tolerance (``TVPrior``'s default
            is 1e-8, ``TVDenoiser``'s own 1e-5).
    """
    import deepinv

    class PerSampleTV(deepinv.optim.TVPrior):
        """``TVPrior`` whose prox threshold is multiplied by one weight per sample (FISTA's ``lambda`` is 1)."""

        def __init__(self, weights: torch.Tensor, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.weights = weights

        def prox(self, x: torch.Tensor, *args: Any, gamma: float = 1.0, **kwargs: Any) -> torch.Tensor:
            return self.TVModel(x, ths=gamma * self.weights)

    def solve(lams: Sequence[float], iterations: int, callback: Callback | None = None) -> torch.Tensor:
        n = len(lams)
        y_native = to_native(y)
        y_native = y_native.expand(n, *y_native.shape[1:]).clone()
        zeros = torch.zeros(n, *image_shape)
        norm = float(physics.compute_norm(torch.randn(1, *image_shape, generator=torch.Generator().manual_seed(0)),
                                          max_iter=100, tol=1e-4, verbose=False))
        prior = PerSampleTV(torch.tensor(list(lams), dtype=torch.float32), def_crit=crit, n_it_max=inner)
        metrics = None
        if callback is not None:
            pending: list[torch.Tensor] = []
            count = [0]

            def metric(values: list, x_prev: torch.Tensor, x: torch.Tensor) -> float:
                pending.append(x)
                if len(pending) == n:
                    count[0] += 1
                    callback(count[0], from_native(torch.stack(pending)))
                    pending.clear()
                return 0.0

            metrics = {"callback": metric}
        fista = deepinv.optim.FISTA(data_fidelity=deepinv.optim.L2(), prior=prior, lambda_reg=1.0, stepsize=1.0 / norm,
                                    max_iter=iterations, early_stop=False, custom_metrics=metrics)
        out = fista(y_native, physics, init=(zeros, zeros.clone()), compute_metrics=callback is not None)
        return from_native(out[0] if isinstance(out, tuple) else out)

    return Contender("deepinv FISTA + TVPrior", "1/2||Ax-y||² + λ TV_iso(x), Neumann; MRI: TV(Re x) + TV(Im x)",
                     solve, tv_real_imag, settings={"TVPrior def_crit": crit, "TVPrior n_it_max": inner, "x0": "zeros",
                               "stepsize": "1/||A||²"})


def _sigpy_run(app: Any, callback: Callback | None, to_torch: Callable[[np.ndarray], torch.Tensor]) -> torch.Tensor:
    """Step a sigpy App like ``App.run`` does, calling ``callback`` after each iteration."""
    k = 0
    while not app.alg.done():
        app._pre_update()
        app.alg.update()
        app._post_update()
        k += 1
        if callback is not None:
            callback(k, to_torch(app.x))
    return to_torch(app.x)


def _sigpy_linop(operator: Any, image_shape: tuple[int, int], range_shape: tuple[int, ...]) -> Any:
    """The project's (real) operator as a ``sigpy.linop.Linop`` on NumPy arrays ``image_shape -> range_shape``."""
    import sigpy as sp

    class TorchLinop(sp.linop.Linop):
        def __init__(self, adjoint: bool = False) -> None:
            self.is_adjoint = adjoint
            shapes = (list(image_shape), list(range_shape))
            super().__init__(*(shapes if adjoint else shapes[::-1]), repr_str="rim_monai operator")

        def _apply(self, input: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(input, dtype=np.float32))[None, None]
            with torch.no_grad():
                out = operator.adjoint(t) if self.is_adjoint else operator(t)
            return out[0, 0].numpy()

        def _adjoint_linop(self) -> Any:
            return TorchLinop(not self.is_adjoint)

    return TorchLinop()


def _as_image(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(x))[None, None]


def sigpy_tv_ct(y: torch.Tensor, operator: Any) -> Contender:
    """sigpy's TV (``LinearLeastSquares`` + ``FiniteDifference`` + ``L1Reg``) on the project's ray transform."""
    import sigpy as sp

    image_shape = tuple(operator.domain_shape)
    linop = _sigpy_linop(operator, image_shape, tuple(y.shape[2:]))
    y_np = y[0, 0].numpy().astype(np.float32)

    def solve(lams: Sequence[float], iterations: int, callback: Callback | None = None) -> torch.Tensor:
        (lam,) = lams
        G = sp.linop.FiniteDifference(linop.ishape)
        app = sp.app.LinearLeastSquares(linop, y_np, proxg=sp.prox.L1Reg(G.oshape, lam), G=G, max_iter=iterations,
                                        show_pbar=False)
        return _sigpy_run(app, callback, _as_image)

    return Contender("sigpy LinearLeastSquares TV", "1/2||Ax-y||² + λ ||∇x||_1 (anisotropic, periodic)", solve,
                     tv_anisotropic_periodic, settings={"solver": "PrimalDualHybridGradient", "x0": "zeros", "operator": "rim_monai via NumPy"})


def sigpy_tv_mri(kspace: torch.Tensor, sens: torch.Tensor) -> Contender:
    """``sigpy.mri.app.TotalVariationRecon`` on the k-space ``(1, C, H, W)`` with maps ``(1, C, H, W)``."""
    import sigpy.mri

    ksp, mps = kspace[0].numpy(), sens[0].numpy()

    def solve(lams: Sequence[float], iterations: int, callback: Callback | None = None) -> torch.Tensor:
        (lam,) = lams
        app = sigpy.mri.app.TotalVariationRecon(ksp, mps, lam, max_iter=iterations, show_pbar=False)
        return _sigpy_run(app, callback, _as_image)

    return Contender("sigpy TotalVariationRecon", "1/2||PFSx-y||² + λ ||∇x||_1 (anisotropic, periodic, complex)",
                     solve, tv_anisotropic_periodic, settings={"solver": "PrimalDualHybridGradient", "x0": "zeros"})


def sigpy_l1_wavelet_mri(kspace: torch.Tensor, sens: torch.Tensor) -> Contender:
    """``sigpy.mri.app.L1WaveletRecon`` (db4 wavelets, accelerated proximal gradient)."""
    import sigpy.mri

    ksp, mps = kspace[0].numpy(), sens[0].numpy()

    def solve(lams: Sequence[float], iterations: int, callback: Callback | None = None) -> torch.Tensor:
        (lam,) = lams
        app = sigpy.mri.app.L1WaveletRecon(ksp, mps, lam, max_iter=iterations, show_pbar=False)
        return _sigpy_run(app, callback, _as_image)

    wavelet = sigpy.linop.Wavelet(ksp.shape[1:], wave_name="db4")

    def l1_wavelet(x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([float(np.abs(wavelet(xi[0].numpy())).sum()) for xi in x], dtype=torch.float64)

    return Contender("sigpy L1WaveletRecon (not TV)", "1/2||PFSx-y||² + λ ||Ψx||_1 (db4 wavelets)", solve,
                     l1_wavelet, settings={"solver": "GradientMethod (FISTA)", "x0": "zeros"})


# ---------------------------------------------------------------------------------------------------- protocol
def convergence_run(contender: Contender, lam: float, iterations: int,
                    score: Callable[..., dict[str, torch.Tensor]], tol_db: float = 0.01,
                    data_term: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    checkpoints: Sequence[int] = (10, 20, 50, 100, 200, 500, 1000, 2000)) -> dict[str, Any]:
    """Run one weight for ``iterations``, recording PSNR and (scoring-free) elapsed time after every iteration.

    Args:
        contender: the solver.
        lam: its weight.
        iterations: the run's length.
        score: ``score(x, with_ssim=False) -> {"psnr": (B,), "ssim": (B,)}``.
        tol_db: the convergence tolerance of :func:`iterations_to_reach`.
        data_term: ``x -> 1/2||Ax - y||²`` per sample; with the contender's ``regulariser`` it gives ``objective``.
        checkpoints: iterations whose PSNR and time are kept (plus the last one).

    Returns:
        ``{"psnr", "ssim", "objective", "iterations", "iterations_to_target", "seconds_to_target", "seconds_total",
        "seconds_per_iteration", "psnr_at": {k: PSNR}, "seconds_at": {k: seconds}, "estimate": final image}``.
    """
    psnrs: list[float] = []
    elapsed: list[float] = []
    overhead = 0.0
    start = time.perf_counter()

    def callback(k: int, x: torch.Tensor) -> None:
        nonlocal overhead
        t = time.perf_counter()
        elapsed.append(t - start - overhead)
        psnrs.append(float(score(x)["psnr"][0]))
        overhead += time.perf_counter() - t

    x = contender.solve([lam], iterations, callback)
    total = time.perf_counter() - start - overhead
    final = score(x, with_ssim=True)
    objective = None
    if data_term is not None and contender.regulariser is not None:
        objective = float(data_term(x)[0] + lam * contender.regulariser(x)[0])
    k = iterations_to_reach(psnrs, tol_db)
    marks = sorted({c for c in checkpoints if c <= len(psnrs)} | {len(psnrs)})
    return {
        "psnr": float(final["psnr"][0]), "ssim": float(final["ssim"][0]), "objective": objective,
        "iterations": iterations, "iterations_to_target": k, "seconds_to_target": elapsed[k - 1],
        "seconds_total": total, "seconds_per_iteration": total / iterations,
        "psnr_at": {str(c): psnrs[c - 1] for c in marks}, "seconds_at": {str(c): elapsed[c - 1] for c in marks},
        "estimate": x,
    }


def search_plan(start: Sequence[float] = (0.0125, 0.05, 0.2, 0.8), max_extend: int = 4):
    """The weight search as a generator: it yields the next factor ``c`` to run and is sent back that run's PSNR;
    its return value (``StopIteration.value``) is the best factor.

    Factor-4 grid ``start``, extended by factor-4 steps while the best is on an edge (at most ``max_extend`` times),
    then the factor-2 and factor-√2 neighbours of the best; no factor is asked for twice. As a generator, several
    contenders' searches can be interleaved (:func:`study`), so load on a shared machine hits them alike.
    """
    psnrs: dict[float, float] = {}

    def new(factors: Sequence[float]) -> list[float]:
        return [f for f in factors if not any(math.isclose(f, g, rel_tol=1e-6) for g in psnrs)]

    def best() -> float:
        return max(psnrs, key=psnrs.get)

    for f in start:
        psnrs[f] = yield f
    for _ in range(max_extend):
        b = best()
        if b not in (min(psnrs), max(psnrs)):
            break
        for f in new([b / 4 if b == min(psnrs) else b * 4]):
            psnrs[f] = yield f
    for step in (2.0, math.sqrt(2.0)):
        b = best()
        for f in new([b / step, b * step]):
            psnrs[f] = yield f
    return best()


def search_weight(run: Callable[[float], dict[str, Any]], start: Sequence[float] = (0.0125, 0.05, 0.2, 0.8),
                  max_extend: int = 4) -> tuple[float, dict[float, dict[str, Any]]]:
    """Run :func:`search_plan` to the end for one contender, ``run(c)`` giving ``{"psnr": ..., ...}``.

    Returns:
        ``(best factor, {factor: run(factor)})``, sorted by factor.
    """
    plan = search_plan(start, max_extend)
    runs: dict[float, dict[str, Any]] = {}
    factor = next(plan)
    while True:
        runs[factor] = run(factor)
        try:
            factor = plan.send(runs[factor]["psnr"])
        except StopIteration as stop:
            return stop.value, dict(sorted(runs.items()))


def study(contenders: Sequence[Contender], unit: float, score: Callable, iterations: int, tol_db: float = 0.01,
          data_term: Callable[[torch.Tensor], torch.Tensor] | None = None,
          log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Weight search by full convergence runs for every contender, the contenders' runs interleaved round by round
    (see the module docstring).

    Returns:
        One row per contender: ``name``, ``objective_definition``, ``settings``, ``weight_factor``, ``lam``,
        ``grid`` (``{factor: final PSNR}``), ``grid_objective`` (``{factor: final objective}``) and the fields of
        :func:`convergence_run` at the best weight.
    """
    plans = [search_plan() for _ in contenders]
    runs: list[dict[float, dict[str, Any]]] = [{} for _ in contenders]
    pending: dict[int, float] = {i: next(plan) for i, plan in enumerate(plans)}
    best: dict[int, float] = {}
    while pending:
        for i in list(pending):
            factor, contender = pending[i], contenders[i]
            out = convergence_run(contender, factor * unit, iterations, score, tol_db, data_term)
            log(f"    {contender.name} c = {factor:.4g}: {out['psnr']:.2f} dB after {iterations} it. "
                f"({out['seconds_total']:.1f} s)")
            runs[i][factor] = out
            if len(runs[i]) > 1:  # keep only the estimate of the best run so far
                top = max(runs[i], key=lambda f: runs[i][f]["psnr"])
                for f, r in runs[i].items():
                    if f != top:
                        r.pop("estimate", None)
            try:
                pending[i] = plans[i].send(out["psnr"])
            except StopIteration as stop:
                best[i] = stop.value
                del pending[i]
    rows = []
    for i, contender in enumerate(contenders):
        grid = dict(sorted(runs[i].items()))
        top = grid[best[i]]
        log(f"  {contender.name}: best c = {best[i]:.4g}, {top['psnr']:.2f} dB; within {tol_db} dB after "
            f"{top['iterations_to_target']} it., {top['seconds_to_target']:.2f} s")
        rows.append({"name": contender.name, "objective_definition": contender.objective,
                     "settings": contender.settings, "weight_factor": best[i], "lam": best[i] * unit,
                     "grid": {f"{c:.6g}": r["psnr"] for c, r in grid.items()},
                     "grid_objective": {f"{c:.6g}": r["objective"] for c, r in grid.items()}, **top})
    return rows

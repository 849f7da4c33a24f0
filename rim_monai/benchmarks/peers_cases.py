"""The real-data cases of the peer benchmark (:mod:`rim_monai.benchmarks.peers`): CT TV, MRI TV, learned vs classical.

- :func:`ct_tv_case`: the WG-04 chest slice at ``size``², ``views`` parallel views, Poisson noise at ``photons``;
  the project's TV, deepinv's FISTA + TVPrior and sigpy's TV on the same ray transform and sinogram.
- :func:`mri_tv_case`: the real 8-coil BART brain with ESPIRiT maps (:func:`~rim_monai.operators.estimate_sensitivities`);
  the project's TV, deepinv's FISTA + TVPrior (``MultiCoilMRI`` with the same mask and maps), sigpy's
  ``TotalVariationRecon`` and ``L1WaveletRecon``.
- :func:`learned_case`: the shipped MRI bundle's RIM on the same k-space beside zero-filled, CG-SENSE, the project's
  TV at its default weight and every tuned method of :func:`mri_tv_case`.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import torch

from rim_monai.benchmarks.operators import time_it
from rim_monai.benchmarks.peers_data import ct_score, load_bart_brain, load_ct_slice, mri_score, poisson_sinogram
from rim_monai.benchmarks.peers_tv import (
    deepinv_tv,
    project_tv,
    sigpy_l1_wavelet_mri,
    sigpy_tv_ct,
    sigpy_tv_mri,
    study,
)

__all__ = ["ct_tv_case", "mri_tv_case", "load_rim", "learned_case"]


def _data_term(operator: Any, y: torch.Tensor):
    """``x -> 1/2 ||A x - y||²`` per sample (float64)."""

    def data_term(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            r = operator(x) - y
        return 0.5 * (r.abs().double() ** 2).reshape(r.shape[0], -1).sum(dim=1)

    return data_term


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The study rows without the estimates (for JSON)."""
    return [{k: v for k, v in r.items() if k != "estimate"} for r in rows]


def ct_tv_case(data_dir: str | Path, size: int, views: int, photons: float, iterations: int, deepinv_inner: int,
               deepinv_crit: float = 1e-5, seed: int = 0, tol_db: float = 0.01, log=print) -> dict[str, Any]:
    """TV on the real chest slice (see the module docstring).

    Returns:
        ``{"setup": {...}, "baselines": {"fbp": {...}}, "rows": study rows}``.
    """
    import deepinv

    from rim_monai.classical import default_weight_scale
    from rim_monai.operators import RayTransform

    mu, pixel_mm = load_ct_slice(data_dir, size)
    operator = RayTransform((size, size), num_angles=views, geometry="parallel", backend="matrix")
    with torch.no_grad():
        y = poisson_sinogram(operator(mu), photons, pixel_mm, seed=seed)
    score = functools.partial(ct_score, reference=mu)
    unit = float(default_weight_scale(y, operator).reshape(-1)[0])
    physics = deepinv.physics.LinearPhysics(A=operator, A_adjoint=operator.adjoint)
    contenders = [
        project_tv(y, operator),
        deepinv_tv(y, physics, lambda t: t, lambda t: t, deepinv_inner, (1, size, size), deepinv_crit),
        sigpy_tv_ct(y, operator),
    ]
    fbp = operator.fbp(y, filter="hann")
    setup = {
        "image": "WG-04 CT1_UNC.dcm (chest), HU -> mu = 0.02 (1 + HU/1000) /mm clamped at 0, area-averaged",
        "size": size, "views": views, "geometry": "parallel, 180°", "detectors": operator.num_detectors,
        "pixel_mm": pixel_mm, "photons": photons, "seed": seed,
        "noise": "Poisson counts N ~ Poisson(I0 exp(-s A mu)), zero counts clamped to 0.1, y = -log(N/I0)/s",
        "psnr": "data range = max - min of the reference attenuation image, no rescaling",
        "weight_unit": unit, "iterations": iterations, "tol_db": tol_db,
    }
    log(f"CT TV: {size}² slice, {views} views, I0 {photons:g}, weight unit {unit:.4g}")
    rows = study(contenders, unit, score, iterations, tol_db, _data_term(operator, y), log=log)
    fbp_score = score(fbp, with_ssim=True)
    return {"setup": setup, "baselines": {"FBP (Hann)": {k: float(v[0]) for k, v in fbp_score.items()}},
            "rows": _strip(rows), "deepinv_defaults": _deepinv_defaults(rows[1], contenders[1], physics, y, size,
                                                                          score, min(100, iterations), log)}


def _deepinv_defaults(row: dict[str, Any], tuned: Any, physics: Any, y: torch.Tensor, size: int, score,
                      iterations: int, log=print) -> dict[str, Any]:
    """deepinv's FISTA with ``TVPrior()``'s own defaults (``def_crit`` 1e-8, ``n_it_max`` 1000) at the chosen weight
    for ``iterations``, beside the run's setting at the same iteration (what the cheaper inner tolerance costs)."""
    defaults = deepinv_tv(y, physics, lambda t: t, lambda t: t, 1000, (1, size, size), crit=1e-8)
    t0 = time.perf_counter()
    x = defaults.solve([row["lam"]], iterations, None)
    seconds = time.perf_counter() - t0
    out = {"iterations": iterations, "defaults": {"def_crit": 1e-8, "n_it_max": 1000, "seconds": seconds,
                                                  "psnr": float(score(x)["psnr"][0])},
           "run_setting": {**{k: v for k, v in tuned.settings.items() if k.startswith("TVPrior")},
                           "seconds": row["seconds_at"][str(iterations)], "psnr": row["psnr_at"][str(iterations)]}}
    log(f"  deepinv TVPrior defaults, {iterations} it.: {seconds:.1f} s, {out['defaults']['psnr']:.2f} dB "
        f"(run setting: {out['run_setting']['seconds']:.1f} s, {out['run_setting']['psnr']:.2f} dB)")
    return out


def mri_tv_case(data_dir: str | Path, crop: tuple[int, int] | None, iterations: int, deepinv_inner: int,
                deepinv_crit: float = 1e-5, tol_db: float = 0.01, log=print) -> tuple[dict[str, Any], dict[str, Any]]:
    """TV (and sigpy's L1-wavelet) on the real BART brain.

    Returns:
        ``(result, state)``: the JSON-able result ``{"setup", "rows"}`` and, for :func:`learned_case`, the data,
        maps, operator and the study rows with their estimates.
    """
    import deepinv

    from rim_monai.classical import default_weight_scale
    from rim_monai.operators import MaskedFourier, estimate_sensitivities

    data = load_bart_brain(data_dir, crop)
    t0 = time.perf_counter()
    sens = estimate_sensitivities(data.kspace[0], method="espirit")[None]
    espirit_s = time.perf_counter() - t0
    operator = MaskedFourier(data.mask, sens)
    y = data.kspace
    score = functools.partial(mri_score, reference=data.reference)
    unit = float(default_weight_scale(y, operator).reshape(-1)[0])
    h, w = data.mask.shape
    physics = deepinv.physics.MultiCoilMRI(mask=data.mask, coil_maps=sens, img_size=(h, w))
    contenders = [
        project_tv(y, operator),
        deepinv_tv(y, physics, lambda k: torch.stack((k.real, k.imag), dim=1),
                   lambda x: torch.complex(x[:, :1], x[:, 1:]), deepinv_inner, (2, h, w), deepinv_crit),
        sigpy_tv_mri(y, sens),
        sigpy_l1_wavelet_mri(y, sens),
    ]
    setup = {
        "data": "BART brain (mri_kspace/bart_brain_8ch), real 8-coil k-space, Poisson-disc undersampled as acquired",
        "shape": [h, w], "coils": int(y.shape[1]), "sampled_fraction": float(data.mask.mean()),
        "maps": "ESPIRiT (rim_monai.operators.estimate_sensitivities(method='espirit'))", "espirit_seconds": espirit_s,
        "reference": "root-sum-of-squares of the 2-map ESPIRiT image img.cfl of the fully sampled scan",
        "psnr": "magnitude, least-squares scaled onto the reference, data range = max of the reference",
        "weight_unit": unit, "iterations": iterations, "tol_db": tol_db,
    }
    log(f"MRI TV: BART brain {h}x{w}, {y.shape[1]} coils, {100 * float(data.mask.mean()):.1f} % sampled, "
        f"weight unit {unit:.4g}")
    rows = study(contenders, unit, score, iterations, tol_db, _data_term(operator, y), log=log)
    state = {"data": data, "sens": sens, "operator": operator, "rows": rows, "score": score}
    return {"setup": setup, "rows": _strip(rows)}, state


def load_rim(bundle_dir: str | Path) -> torch.nn.Module:
    """The MRI bundle's network (:func:`rim_monai.engines.load_bundle_network`: ``network_def`` of
    ``configs/inference.json`` through MONAI's ``ConfigParser``, ``models/model.pt`` loaded, eval mode), on the CPU.

    Raises:
        FileNotFoundError: naming the missing config or weights.
    """
    from rim_monai.engines import load_bundle_network

    bundle_dir = Path(bundle_dir)
    for path in (bundle_dir / "configs" / "inference.json", bundle_dir / "models" / "model.pt"):
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; the learned comparison needs the shipped MRI bundle.")
    return load_bundle_network(bundle_dir, device="cpu", checkpoint=bundle_dir / "models" / "model.pt")


def _direct_row(name: str, fn, score, min_time: float, note: str) -> dict[str, Any]:
    """Score ``fn()`` and time it: the median of ``time_it`` repeats, or the one call when it took over 3 s."""
    with torch.no_grad():
        t0 = time.perf_counter()
        x = fn()
        seconds = time.perf_counter() - t0
        timing = "one call"
        if seconds < 3.0:
            seconds, timing = time_it(fn, min_time=min_time, min_repeats=3, max_repeats=10), "median"
    s = score(x, with_ssim=True)
    return {"name": name, "psnr": float(s["psnr"][0]), "ssim": float(s["ssim"][0]), "seconds": seconds,
            "timing": timing, "note": note}


def learned_case(state: dict[str, Any], bundle_dir: str | Path, min_time: float, log=print) -> dict[str, Any]:
    """The bundle's RIM against the classical methods on the BART brain (``state`` from :func:`mri_tv_case`).

    The RIM runs with the bundle's own map convention (low-resolution maps, as ``EstimateSensitivitiesd`` gives the
    bundle) and with the ESPIRiT maps every classical method uses. Direct methods are timed with ``time_it``; the
    iterative ones report their 2000-iteration PSNR/SSIM and the time to come within 0.01 dB of it.
    """
    from rim_monai.classical import cg_normal, tv_pdhg, zero_filled
    from rim_monai.operators import MaskedFourier, estimate_sensitivities

    data, operator, score = state["data"], state["operator"], state["score"]
    y = data.kspace
    net = load_rim(bundle_dir)
    lowres = MaskedFourier(data.mask, estimate_sensitivities(y[0], method="lowres")[None])
    rows = [
        _direct_row("zero-filled", lambda: zero_filled(y, operator), score, min_time, "A^H y, ESPIRiT maps"),
        _direct_row("CG-SENSE (cg_normal defaults)", lambda: cg_normal(y, operator), score, min_time,
                    "rim_monai.classical.cg_normal(y, A), ESPIRiT maps"),
        _direct_row("rim_monai tv_pdhg, default weight", lambda: tv_pdhg(y, operator), score, min_time,
                    "tv_pdhg(y, A) with no lam (its default weight, iterations and stopping rule)"),
        _direct_row("RIM (bundle, low-res maps)", lambda: net(y, lowres), score, min_time,
                    "bundles/mri_rim_recon model.pt, maps as the bundle estimates them"),
        _direct_row("RIM (bundle, ESPIRiT maps)", lambda: net(y, operator), score, min_time,
                    "the same network with the classical methods' ESPIRiT maps"),
    ]
    for r in state["rows"]:
        rows.append({"name": f"{r['name']}, best weight", "psnr": r["psnr"], "ssim": r["ssim"],
                     "seconds": r["seconds_to_target"],
                     "note": f"c = {r['weight_factor']:.3g}; {r['iterations']}-iteration result, time to within "
                             f"0.01 dB of it ({r['iterations_to_target']} it.)"})
    for r in rows:
        log(f"  {r['name']:45s} {r['psnr']:6.2f} dB  SSIM {r['ssim']:.4f}  {r['seconds']:8.3f} s")
    return {"bundle": str(bundle_dir), "rows": rows}

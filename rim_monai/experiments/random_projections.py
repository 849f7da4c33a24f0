r"""The RIM paper's convergence experiment (Putzky & Welling 2017, Sec. 4.4, Fig. 2): RIM, GDN and FFN on noisy
random projections of 32x32 grey BSDS300 patches, scored by PSNR over :math:`2T` steps.

For each ensemble (Gaussian, Bernoulli, Fourier) the problem is

.. math::
    y = \Phi\,\mathrm{vec}(x) + n, \qquad \Phi \in \mathbb{R}^{m \times d} \text{ or } \mathbb{C}^{m \times d},
    \quad d = 32^2,\; m = \mathrm{round}(p\,d), \quad n \sim \mathcal N(0, \sigma^2 I),

with patches :math:`x \in [0, 1]^{32 \times 32}` and :math:`\Phi` a :class:`~rim_monai.operators.RandomProjection`
whose entries have unit mean square (the paper's scale, so :math:`\sigma = 1` is a moderate noise level: a
Gaussian or Bernoulli measurement of a patch has a standard deviation of about :math:`\|x\|_2 \approx 16`). The
Fourier ensemble is complex; real patches see it through :class:`RealImageView`, which stacks the real and
imaginary parts of :math:`\Phi x` as ``2m`` real measurements (noise :math:`\sigma` on each).

Three networks per ensemble (:class:`~rim_monai.networks.RIM` with ``variant="rim"``, ``"gdn"``, ``"ffn"``) are trained
with the multi-step loss (Eq. 13, :math:`w_t = 1`) for :math:`T` steps on patches drawn from the stride-``s`` grid
of the training images, then run for :math:`2T` steps on held-out patches of the test images. Outputs (written
atomically): ``<name>.png`` (mean PSNR ± one standard deviation against the step, :math:`T` dashed, one panel per
ensemble), ``<name>.json`` (settings, machine, budget, per-step means/stds, training records) and ``<name>.md`` (the
table of PSNR at :math:`t = 1, T/2, T, 2T` beside two classical baselines measured on the same patches: the
networks' start :math:`A^H y / \|A\|^2` and Tikhonov-regularised least squares around the training mean with
:math:`\lambda` chosen on validation patches of the training split).

Usage (from the repository root)::

    python -m rim_monai.experiments.random_projections --config configs/random_projections.json
    python -m rim_monai.experiments.random_projections --config configs/random_projections.json --quick

``--override '<json>'`` merges a JSON object over the settings (e.g. one ensemble, or a fixed number of Adam
steps with ``"max_seconds_per_model": null``). ``--quick`` applies the config's ``"quick"`` overrides (a
seconds-long smoke run; output in a temporary folder unless ``--output-dir`` is given); ``--synthetic`` replaces the BSDS300 images by smooth synthetic images (used by
the tests when ``../shared/data`` is absent, and implied by ``--quick`` when the data folder is missing).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys

from rim_monai.classical import cg_normal
from rim_monai.data.file_utils import atomic_write
from rim_monai.data.keys import Keys
from rim_monai.engines import MultiStepLoss, PrepareMeasurementBatch, format_table
from rim_monai.experiments.environment import describe_machine
from rim_monai.data.file_utils import atomic_write_text
from rim_monai.experiments.patches import PatchSampler, load_grey_images, synthetic_images
from rim_monai.metrics import psnr
from rim_monai.networks import RIM
from rim_monai.operators import LinearOperator, RandomProjection, RealImageView
from rim_monai.training import GradientClipping, LossHistory, StopAfterSeconds

__all__ = [
    "build_operator",
    "measure",
    "NoisyPatches",
    "train_variant",
    "evaluate_steps",
    "tikhonov_baseline",
    "report_steps",
    "plot_convergence",
    "convergence_table",
    "load_config",
    "run_experiment",
    "main",
    "ENSEMBLES",
    "VARIANTS",
    # re-exported from their own modules (imported from here before)
    "RealImageView",
    "PatchSampler",
    "load_grey_images",
    "synthetic_images",
]

ENSEMBLES = ("gaussian", "bernoulli", "fourier")
VARIANTS = ("rim", "gdn", "ffn")
#: the batch key of the (noisy) random projections of a patch
MEASUREMENTS = "projections"


# ---------------------------------------------------------------------------------------------------- operator
def build_operator(ensemble: str, reduction: float, patch_shape: Sequence[int] = (32, 32), seed: int = 0) -> LinearOperator:
    """The random projection of one ensemble as an operator on real patches.

    Gaussian and Bernoulli ensembles are :class:`~rim_monai.operators.RandomProjection` itself (unit mean-square
    entries, the paper's scale); the Fourier ensemble is wrapped in :class:`RealImageView` (``2m`` real measurements).

    Args:
        ensemble: ``"gaussian"``, ``"bernoulli"`` or ``"fourier"``.
        reduction: the fraction :math:`p` of measurements kept.
        patch_shape: ``(p_h, p_w)``.
        seed: seed of the matrix.

    Raises:
        ValueError: unknown ``ensemble`` (or bad arguments of :class:`RandomProjection`).

    Example:
        >>> build_operator("gaussian", 0.25, (32, 32)).range_shape
        (256,)
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble: expected one of {ENSEMBLES}, got {ensemble!r}.")
    op = RandomProjection(patch_shape, reduction, ensemble=ensemble, seed=seed)
    return RealImageView(op) if ensemble == "fourier" else op


def measure(A: LinearOperator, x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    r""":math:`y = A x + \sigma n`, :math:`n \sim \mathcal N(0, I)` drawn from ``generator`` (real measurements)."""
    with torch.no_grad():
        clean = A(x)
        return clean + sigma * torch.randn(clean.shape, generator=generator, dtype=clean.dtype)


class NoisyPatches:
    """An endless stream of training batches ``{TARGET: x, MEASUREMENTS: A x + sigma n}`` for a MONAI trainer.

    Each batch draws ``batch_size`` patches from ``sampler`` (numpy ``rng``), then their noise (torch ``noise``
    generator), so a stream is reproducible from its two seeds.

    Example:
        >>> stream = NoisyPatches(PatchSampler(synthetic_images(1, (40, 40)), 32), build_operator("gaussian", 0.1),
        ...                       0.5, 2, np.random.default_rng(0), torch.Generator().manual_seed(0))
        >>> next(stream)[MEASUREMENTS].shape
        torch.Size([2, 1, 102])
    """

    def __init__(self, sampler: PatchSampler, A: LinearOperator, sigma: float, batch_size: int,
                 rng: np.random.Generator, noise: torch.Generator) -> None:
        self.sampler, self.A, self.sigma, self.batch_size, self.rng, self.noise = sampler, A, sigma, batch_size, rng, noise

    def __iter__(self) -> "NoisyPatches":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        x = self.sampler.sample(self.batch_size, self.rng)
        return {Keys.TARGET: x, MEASUREMENTS: measure(self.A, x, self.sigma, self.noise)}


# ---------------------------------------------------------------------------------------------------- train / evaluate
def _build_network(variant: str, network_cfg: dict[str, Any], steps: int) -> RIM:
    return RIM(
        in_channels=1,
        architecture=network_cfg.get("architecture", "compact"),
        variant=variant,
        link=network_cfg.get("link", "sigmoid"),
        iterations=steps,
        init=network_cfg.get("init", "adjoint"),
        features=network_cfg.get("features"),
        dilations=network_cfg.get("dilations", (1, 2)),
    )


def train_variant(
    variant: str,
    A: LinearOperator,
    sampler: PatchSampler,
    network_cfg: dict[str, Any],
    train_cfg: dict[str, Any],
    sigma: float,
    seed: int,
    log_every: int = 50,
) -> tuple[RIM, dict[str, Any]]:
    """Train one network with Adam on the multi-step MSE (Eq. 13, :math:`w_t = 1`) for ``T = train_cfg["steps"]``.

    The loop is MONAI's :class:`~monai.engines.SupervisedTrainer`, as in the bundles' ``train.json``: the batches
    come from :class:`NoisyPatches`, :class:`~rim_monai.engines.PrepareMeasurementBatch` calls
    ``net(y, A, iterations=T, sigma=sigma, return_all=True)``, and :mod:`rim_monai.training` handlers record the loss
    curve and clip the gradients. Every variant of an ensemble sees the same sequence of patches and noise (both drawn from ``seed``) and starts
    from weights drawn from ``seed``. Training stops after ``train_cfg["iterations"]`` Adam steps or once
    ``train_cfg["max_seconds"]`` of wall time have passed, whichever comes first (the record says which).

    Args:
        variant: ``"rim"``, ``"gdn"`` or ``"ffn"``.
        A: the operator.
        sampler: training patches.
        network_cfg: keyword settings of :class:`~rim_monai.networks.RIM` (architecture, features, dilations, link, init).
        train_cfg: ``steps``, ``iterations``, ``batch_size``, ``lr``, ``grad_clip``, ``max_seconds``.
        sigma: noise standard deviation of the measurements.
        seed: seed of the weights, patches and noise.
        log_every: record the loss every this many iterations.

    Returns:
        The trained network (in eval mode) and a record: parameters, iterations, seconds, stop reason, loss curve.
    """
    steps = int(train_cfg["steps"])
    torch.manual_seed(seed)
    net = _build_network(variant, network_cfg, steps)
    multi_step = MultiStepLoss("mse")
    iterations, batch = int(train_cfg["iterations"]), int(train_cfg["batch_size"])
    trainer = SupervisedTrainer(
        device=A.device,
        max_epochs=1,
        epoch_length=iterations,
        train_data_loader=NoisyPatches(sampler, A, sigma, batch, np.random.default_rng(seed),
                                       torch.Generator().manual_seed(seed)),
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=float(train_cfg.get("lr", 1e-3))),
        loss_function=lambda estimates, x: multi_step(estimates, x) / steps,  # Eq. 13 averaged over the T steps
        prepare_batch=PrepareMeasurementBatch(MEASUREMENTS, Keys.TARGET, A,
                                              {"iterations": steps, "sigma": sigma, "return_all": True}),
        decollate=False,
        optim_set_to_none=True,
    )
    history = LossHistory(lambda output: output[CommonKeys.LOSS], every=log_every)
    history.attach(trainer)
    if train_cfg.get("grad_clip"):
        GradientClipping(net, float(train_cfg["grad_clip"])).attach(trainer)
    budget = StopAfterSeconds(float(train_cfg["max_seconds"])) if train_cfg.get("max_seconds") is not None else None
    if budget is not None:
        budget.attach(trainer)
    start = time.perf_counter()
    trainer.run()
    seconds, done = time.perf_counter() - start, trainer.state.iteration
    net.eval()
    record = {
        "variant": variant,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "iterations": done,
        "patches_seen": done * batch,
        "seconds": round(seconds, 2),
        "seconds_per_iteration": round(seconds / max(done, 1), 4),
        "stopped_by": "max_seconds" if budget is not None and budget.stopped else "iterations",
        "epsilon": float(net.likelihood.epsilon.detach()),
        "loss_curve": [[i, round(v, 6)] for i, v in history.curve],
    }
    return net, record


def evaluate_steps(
    net: RIM, A: LinearOperator, y: torch.Tensor, x: torch.Tensor, steps: int, sigma: float, batch_size: int = 250
) -> np.ndarray:
    """PSNR (data range 1) of every estimate :math:`x_1, \\dots, x_{steps}` on every patch, shape ``(steps, N)``."""
    rows = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            estimates = net(y[i : i + batch_size], A, iterations=steps, sigma=sigma, return_all=True)
            target = x[i : i + batch_size]
            rows.append(np.stack([psnr(e, target, data_range=1.0, reduction="none").numpy() for e in estimates]))
    return np.concatenate(rows, axis=1)


def tikhonov_baseline(
    A: LinearOperator,
    y_val: torch.Tensor,
    x_val: torch.Tensor,
    y_test: torch.Tensor,
    x_test: torch.Tensor,
    mean: float,
    lams: Sequence[float],
    iterations: int = 50,
) -> dict[str, Any]:
    r"""Tikhonov least squares around the training mean :math:`\mu`, :math:`\hat x = \mu + \arg\min_z \|A z - (y - A\mu)\|^2
    + \lambda \|z\|^2` (conjugate gradients), clipped to [0, 1]; :math:`\lambda` is the one of ``lams`` with the best
    mean validation PSNR. Also scores the networks' start :math:`A^H y/\|A\|^2` on the test patches.

    Returns:
        ``{"lam", "validation": {lam: psnr}, "tikhonov": per-patch PSNRs, "start": per-patch PSNRs}``.
    """
    if not lams:
        raise ValueError("lams: expected at least one regularisation weight.")

    def solve(y: torch.Tensor, like: torch.Tensor, lam: float) -> torch.Tensor:
        offset = A(torch.full_like(like, mean))
        return (mean + cg_normal(y - offset, A, lam=lam, iterations=iterations)).clamp(0, 1)

    val = {float(lam): float(psnr(solve(y_val, x_val, float(lam)), x_val, data_range=1.0)) for lam in lams}
    best = max(val, key=val.get)
    scale = 1.0 / A.opnorm() ** 2
    start = (A.adjoint(y_test) * scale).clamp(0, 1)
    return {
        "lam": best,
        "validation": val,
        "tikhonov": psnr(solve(y_test, x_test, best), x_test, data_range=1.0, reduction="none").numpy(),
        "start": psnr(start, x_test, data_range=1.0, reduction="none").numpy(),
    }


# ---------------------------------------------------------------------------------------------------- outputs
def report_steps(train_steps: int) -> list[int]:
    """The steps of the table: :math:`1, T/2, T, 2T` (distinct, in order)."""
    return sorted({1, max(1, train_steps // 2), train_steps, 2 * train_steps})


def plot_convergence(results: dict[str, Any], path: Path) -> None:
    """One panel per ensemble: mean PSNR ± one std (shaded) of every model against the step, :math:`T` dashed, the
    Tikhonov baseline dotted; saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = results["settings"]["train"]["steps"]
    ensembles = list(results["ensembles"])
    colours = {"rim": "tab:blue", "gdn": "tab:red", "ffn": "tab:green"}
    fig, axes = plt.subplots(1, len(ensembles), figsize=(4.2 * len(ensembles), 3.6), squeeze=False)
    for ax, ens in zip(axes[0], ensembles):
        res = results["ensembles"][ens]
        for variant, model in res["models"].items():
            mean, std = np.asarray(model["psnr_mean"]), np.asarray(model["psnr_std"])
            t = np.arange(1, len(mean) + 1)
            ax.plot(t, mean, color=colours.get(variant), label=variant.upper())
            ax.fill_between(t, mean - std, mean + std, color=colours.get(variant), alpha=0.15, linewidth=0)
        ax.axhline(res["baselines"]["tikhonov"]["mean"], color="grey", linestyle=":", label="Tikhonov")
        ax.axvline(T, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{ens.capitalize()} (p = {res['reduction']:g}, m = {res['measurements']})")
        ax.set_xlabel("step t")
        ax.set_xlim(1, 2 * T)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_write(path, overwrite=True) as tmp:
        fig.savefig(str(tmp), dpi=120, format="png")
    plt.close(fig)


def convergence_table(results: dict[str, Any]) -> str:
    """Markdown table: PSNR mean ± std at :math:`t = 1, T/2, T, 2T` per ensemble and model, with the baselines."""
    steps = report_steps(results["settings"]["train"]["steps"])
    columns = ["ensemble", "model", "parameters", "adam", "train_s", *(f"t{t}" for t in steps), "best"]
    headers = ["ensemble", "model", "parameters", "Adam steps (patches)", "train s", *(f"t = {t}" for t in steps),
               "best t"]
    rows: list[dict[str, Any]] = []
    for ens, res in results["ensembles"].items():
        for variant, m in res["models"].items():
            tr = m["training"]
            rows.append({"ensemble": ens, "model": variant.upper(), "parameters": f"{tr['parameters']:,}",
                         "adam": f"{tr['iterations']} ({tr['patches_seen']})", "train_s": f"{tr['seconds']:.0f}",
                         "best": int(np.argmax(m["psnr_mean"])) + 1,
                         **{f"t{t}": f"{m['psnr_mean'][t - 1]:.2f} ± {m['psnr_std'][t - 1]:.2f}" for t in steps}})
        b = res["baselines"]
        for label, key in (("start A^H y/‖A‖²", "start"), (f"Tikhonov (λ = {b['tikhonov']['lam']:g})", "tikhonov")):
            rows.append({"ensemble": ens, "model": label, "parameters": "–", "adam": "–", "train_s": "–", "best": "–",
                         f"t{steps[0]}": f"{b[key]['mean']:.2f} ± {b[key]['std']:.2f}"})
    return format_table(rows, columns, headers=headers) + "\n"


# ---------------------------------------------------------------------------------------------------- driver
def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_config(path: str | os.PathLike, quick: bool = False) -> dict[str, Any]:
    """Read the JSON config; with ``quick`` the ``"quick"`` section is merged over it (nested keys replace).

    Raises:
        ValueError: the file is missing, is not JSON, or lacks one of the sections ``data``, ``problem``,
            ``network``, ``train``, ``evaluate``, ``baseline``, ``output``.
    """
    p = Path(path)
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except OSError:
        raise ValueError(f"config: {str(p)!r} is not a file.") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"config: {str(p)!r} is not valid JSON ({err}).") from err
    missing = [k for k in ("data", "problem", "network", "train", "evaluate", "baseline", "output") if k not in cfg]
    if missing:
        raise ValueError(f"config: {str(p)!r} lacks the section(s) {missing}.")
    quick_cfg = cfg.pop("quick", {})
    return _merge(cfg, quick_cfg) if quick else cfg


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}


def run_experiment(cfg: dict[str, Any], output_dir: str | os.PathLike, synthetic: bool = False, verbose: bool = True) -> dict[str, Any]:
    """Train and evaluate every (ensemble, variant) pair of ``cfg``; write ``<name>.{png,json,md}`` under ``output_dir``.

    Args:
        cfg: the settings (see ``configs/random_projections.json``).
        output_dir: where the figure and tables go.
        synthetic: use :func:`synthetic_images` instead of the image folders.
        verbose: print progress.

    Returns:
        The results dictionary written to ``<name>.json``.

    Raises:
        ValueError: unknown ensemble or variant in ``cfg``, or missing image folders (without ``synthetic``).
    """
    say = print if verbose else (lambda *a, **k: None)
    wall = time.perf_counter()
    torch.set_num_threads(int(cfg["train"].get("threads", 1)))
    seed = int(cfg.get("seed", 0))
    ensembles, variants = list(cfg["problem"]["ensembles"]), list(cfg.get("variants", VARIANTS))
    for e in ensembles:
        if e not in ENSEMBLES:
            raise ValueError(f"problem.ensembles: expected names from {ENSEMBLES}, got {e!r}.")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"variants: expected names from {VARIANTS}, got {v!r}.")
    data = _experiment_data(cfg["data"], synthetic, seed)
    say(
        f"data: {data['record']['source']}; {data['record']['train_images']} train images, "
        f"{data['record']['train_grid_patches']} stride-{data['train'].stride} patches; "
        f"{data['record']['test_images']} test images, {data['record']['test_patches']} test patches"
    )
    name = cfg["output"].get("name", "convergence_random_projections")
    out = Path(output_dir)
    results: dict[str, Any] = {
        "experiment": "RIM paper Sec. 4.4 / Fig. 2: RIM vs GDN vs FFN on random projections",
        "settings": cfg,
        "data": data["record"],
        "machine": describe_machine(),
        "ensembles": {},
    }
    for k, ens in enumerate(ensembles):
        for _ in _run_ensemble(cfg, k, ens, variants, data, results, say):
            results["wall_seconds"] = round(time.perf_counter() - wall, 1)
            atomic_write_text(out / f"{name}.json", json.dumps(results, indent=1) + "\n")  # partial results survive a kill
    results["wall_seconds"] = round(time.perf_counter() - wall, 1)
    atomic_write_text(out / f"{name}.json", json.dumps(results, indent=1) + "\n")
    atomic_write_text(out / f"{name}.md", convergence_table(results))
    plot_convergence(results, out / f"{name}.png")
    say(f"wrote {out / name}.{{png,json,md}} in {results['wall_seconds']:.0f} s")
    return results


def _experiment_data(data: dict[str, Any], synthetic: bool, seed: int) -> dict[str, Any]:
    """Training and test patch samplers, the test and validation patches, and what the record says about them."""
    patch = int(data["patch_size"])
    if synthetic:
        train_images = synthetic_images(int(data.get("synthetic_images", 6)), (96, 96), seed)
        test_images = synthetic_images(max(2, int(data.get("synthetic_images", 6)) // 2), (96, 96), seed + 1)
        source = "synthetic (smooth random fields with an edge)"
    else:
        max_images = data.get("max_images")
        train_images = load_grey_images(data["train_dir"], max_images)
        test_images = load_grey_images(data["test_dir"], max_images)
        source = f"{data['train_dir']} (train) / {data['test_dir']} (test)"
    train_sampler = PatchSampler(train_images, patch, int(data.get("stride", 4)))
    test_sampler = PatchSampler(test_images, patch, 1)
    rng = np.random.default_rng(seed + 1000)
    x_test = test_sampler.random_patches(int(data["test_patches"]), rng)
    x_val = train_sampler.random_patches(int(data["validation_patches"]), rng)
    train_mean = float(np.mean([im.mean() for im in train_images]))
    record = {
        "source": source,
        "train_images": len(train_images),
        "train_grid_patches": train_sampler.grid_size,
        "test_images": len(test_images),
        "test_patches": int(x_test.shape[0]),
        "validation_patches": int(x_val.shape[0]),
        "train_mean": round(train_mean, 4),
    }
    return {"train": train_sampler, "x_test": x_test, "x_val": x_val, "train_mean": train_mean, "record": record}


def _run_ensemble(cfg: dict[str, Any], k: int, ens: str, variants: list[str], data: dict[str, Any],
                  results: dict[str, Any], say: Any):
    """Baselines, then each variant trained and evaluated, of ensemble ``ens`` (the ``k``-th) into ``results``;
    yields after each variant so the caller can save partial results."""
    problem, train_cfg, seed = cfg["problem"], cfg["train"], int(cfg.get("seed", 0))
    patch, sigma, T = int(cfg["data"]["patch_size"]), float(problem["sigma"]), int(train_cfg["steps"])
    reductions = problem["reduction"]
    reduction = float(reductions[ens] if isinstance(reductions, dict) else reductions)
    x_test, x_val = data["x_test"], data["x_val"]
    A = build_operator(ens, reduction, (patch, patch), int(problem.get("operator_seed", seed)))
    y_test = measure(A, x_test, sigma, torch.Generator().manual_seed(seed + 2000 + k))
    y_val = measure(A, x_val, sigma, torch.Generator().manual_seed(seed + 3000 + k))
    base = tikhonov_baseline(A, y_val, x_val, y_test, x_test, data["train_mean"], cfg["baseline"]["lams"],
                             int(cfg["baseline"].get("cg_iterations", 50)))
    m = int(A.op.range_shape[0]) if isinstance(A, RealImageView) else int(A.range_shape[0])
    entry: dict[str, Any] = {
        "reduction": reduction,
        "measurements": m,
        "real_measurements": int(np.prod(A.range_shape)),
        "opnorm": round(float(A.opnorm()), 4),
        "baselines": {
            "start": _summary(base["start"]),
            "tikhonov": {**_summary(base["tikhonov"]), "lam": base["lam"], "validation": base["validation"]},
        },
        "models": {},
    }
    say(f"[{ens}] m={m}, ||A||={entry['opnorm']:.2f}; start {entry['baselines']['start']['mean']:.2f} dB, "
        f"Tikhonov(lam={base['lam']:g}) {entry['baselines']['tikhonov']['mean']:.2f} dB")
    eval_steps = int(cfg["evaluate"].get("steps_factor", 2)) * T
    for variant in variants:
        net, record = train_variant(variant, A, data["train"], cfg["network"],
                                    {**train_cfg, "max_seconds": train_cfg.get("max_seconds_per_model")}, sigma, seed)
        t0 = time.perf_counter()
        scores = evaluate_steps(net, A, y_test, x_test, eval_steps, sigma, int(cfg["evaluate"].get("batch_size", 250)))
        record["eval_seconds"] = round(time.perf_counter() - t0, 2)
        entry["models"][variant] = {
            "psnr_mean": [round(float(v), 4) for v in scores.mean(axis=1)],
            "psnr_std": [round(float(v), 4) for v in scores.std(axis=1)],
            "training": record,
        }
        say(
            f"[{ens}/{variant}] {record['parameters']} params, {record['iterations']} it in {record['seconds']:.0f} s "
            f"({record['stopped_by']}); PSNR " + ", ".join(f"t={t}: {scores[t - 1].mean():.2f}" for t in report_steps(T))
        )
        results["ensembles"][ens] = entry
        yield variant


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="JSON settings, e.g. configs/random_projections.json")
    parser.add_argument("--quick", action="store_true", help="apply the config's 'quick' overrides (seconds-long smoke run)")
    parser.add_argument("--output-dir", default=None, help="override the config's output.dir")
    parser.add_argument("--synthetic", action="store_true", help="synthetic images instead of the BSDS300 folders")
    parser.add_argument(
        "--override",
        default=None,
        help='JSON merged over the config (after --quick), e.g. \'{"variants": ["rim"], "train": {"iterations": 50}}\'',
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.config, quick=args.quick)
    if args.override:
        try:
            override = json.loads(args.override)
        except json.JSONDecodeError as err:
            raise ValueError(f"override: expected a JSON object, got {args.override!r} ({err}).") from err
        if not isinstance(override, dict):
            raise ValueError(f"override: expected a JSON object, got {type(override).__name__}.")
        cfg = _merge(cfg, override)
    synthetic = args.synthetic
    if args.quick and not synthetic and not Path(cfg["data"]["train_dir"]).is_dir():
        print(f"--quick: {cfg['data']['train_dir']} not found, using synthetic images")
        synthetic = True
    output_dir = args.output_dir or cfg["output"].get("dir") or os.path.join(tempfile.gettempdir(), "rim_monai_random_projections_quick")
    run_experiment(cfg, output_dir, synthetic=synthetic)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

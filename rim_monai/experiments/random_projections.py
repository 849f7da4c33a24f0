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
import math
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rim_monai.classical import cg_normal
from rim_monai.data.file_utils import atomic_write
from rim_monai.engines import MultiStepLoss
from rim_monai.machine import cpu_model
from rim_monai.metrics import psnr
from rim_monai.networks import RIM
from rim_monai.operators import LinearOperator, RandomProjection

__all__ = [
    "RealImageView",
    "PatchSampler",
    "load_grey_images",
    "synthetic_images",
    "build_operator",
    "measure",
    "train_variant",
    "evaluate_steps",
    "tikhonov_baseline",
    "plot_convergence",
    "format_table",
    "load_config",
    "run_experiment",
    "main",
    "ENSEMBLES",
    "VARIANTS",
]

ENSEMBLES = ("gaussian", "bernoulli", "fourier")
VARIANTS = ("rim", "gdn", "ffn")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: ITU-R BT.601 luma weights (MATLAB ``rgb2gray``), applied to RGB values on [0, 1]
GREY_WEIGHTS = (0.298936, 0.587043, 0.114021)


# ---------------------------------------------------------------------------------------------------- operator
class RealImageView(LinearOperator):
    r"""A complex operator restricted to real images, with real measurements :math:`(\mathrm{Re}\,Ax, \mathrm{Im}\,Ax)`.

    For :math:`A: \mathbb{C}^d \to \mathbb{C}^m` this is the real-linear map :math:`B: \mathbb{R}^d \to \mathbb{R}^{m \times 2}`,
    :math:`B x = (\mathrm{Re}\,A x, \mathrm{Im}\,A x)`, whose adjoint is :math:`B^T (u, v) = \mathrm{Re}\,A^H(u + i v)`
    (since :math:`\langle Bx, (u, v)\rangle = \mathrm{Re}\,\langle A x, u + iv\rangle_{\mathbb C} = \langle x,
    \mathrm{Re}\,A^H(u + iv)\rangle` for real :math:`x`). It lets a network built for real images (the paper's
    sigmoid link) reconstruct from complex measurements such as the Fourier random-projection ensemble.

    Shapes:
        ``domain_shape = A.domain_shape`` (real), ``range_shape = (*A.range_shape, 2)`` (real); any leading dims.

    Args:
        op: a :class:`LinearOperator` with a complex domain and a complex range.

    Raises:
        ValueError: ``op`` is not a complex-to-complex :class:`LinearOperator`.

    Example:
        >>> B = RealImageView(RandomProjection((8, 8), 0.5, ensemble="fourier", seed=0))
        >>> B(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 1, 32, 2])
    """

    def __init__(self, op: LinearOperator) -> None:
        super().__init__()
        if not isinstance(op, LinearOperator) or not (op.domain_is_complex and op.range_is_complex):
            raise ValueError(
                f"op: expected a LinearOperator with complex domain and range, got {type(op).__name__}"
                + (f" (domain complex={op.domain_is_complex}, range complex={op.range_is_complex})" if isinstance(op, LinearOperator) else "")
                + "."
            )
        self.op = op
        self.domain_shape = tuple(op.domain_shape)
        self.range_shape = (*op.range_shape, 2)
        self.domain_is_complex = self.range_is_complex = False

    @property
    def device(self) -> torch.device:
        return self.op.device

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(self.op.forward(torch.complex(x, torch.zeros_like(x)), check=False)).contiguous()

    def _adjoint_impl(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(torch.view_as_complex(y.contiguous()), check=False).real.contiguous()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, op={type(self.op).__name__}"


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


# ---------------------------------------------------------------------------------------------------- data
def load_grey_images(folder: str | os.PathLike, max_images: int | None = None) -> list[np.ndarray]:
    """Read every image of ``folder`` (sorted by name) as grey ``float32`` on [0, 1].

    RGB is converted with the BT.601 luma weights of MATLAB ``rgb2gray`` (:data:`GREY_WEIGHTS`) on the 8-bit
    values scaled to [0, 1]; grey images are only scaled.

    Args:
        folder: a folder of PNG/JPEG images (e.g. ``bsds300/images/train``).
        max_images: read only the first ``max_images`` files.

    Returns:
        A list of ``(H, W)`` arrays.

    Raises:
        ValueError: ``folder`` does not exist or holds no image.
    """
    from PIL import Image

    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"folder: {str(path)!r} is not a directory (expected a folder of images, e.g. bsds300/images/train).")
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder: {str(path)!r} holds no image with a suffix in {IMAGE_SUFFIXES}.")
    if max_images is not None:
        files = files[: int(max_images)]
    images = []
    for f in files:
        with Image.open(f) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        images.append((arr @ np.asarray(GREY_WEIGHTS)).astype(np.float32))
    return images


def synthetic_images(count: int, shape: Sequence[int] = (96, 96), seed: int = 0) -> list[np.ndarray]:
    """Smooth synthetic grey images on [0, 1] (blurred noise plus a random straight edge), for data-free smoke runs."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    h, w = (int(s) for s in shape)
    rows, cols = np.mgrid[0:h, 0:w]
    images = []
    for _ in range(int(count)):
        field = gaussian_filter(rng.standard_normal((h, w)), sigma=float(rng.uniform(2, 6)))
        angle, offset = rng.uniform(0, np.pi), rng.uniform(-0.3, 0.3) * max(h, w)
        edge = (np.cos(angle) * (rows - h / 2) + np.sin(angle) * (cols - w / 2) > offset).astype(np.float64)
        img = field / (np.abs(field).max() + 1e-12) + rng.uniform(0.3, 1.0) * edge
        img = 0.05 + 0.9 * (img - img.min()) / (img.max() - img.min() + 1e-12)
        images.append(img.astype(np.float32))
    return images


class PatchSampler:
    """Square patches of a list of grey images: uniform draws from the stride-``stride`` grid (training) or from
    every position (held-out test patches).

    Args:
        images: ``(H, W)`` arrays, each at least ``patch`` on both sides.
        patch: patch side length.
        stride: grid stride of :meth:`sample` (4 in the paper: every patch of the grid is equally likely).

    Raises:
        ValueError: no image, or an image smaller than the patch.

    Example:
        >>> s = PatchSampler(synthetic_images(2, (40, 40)), patch=32, stride=4)
        >>> s.grid_size, s.sample(3, np.random.default_rng(0)).shape
        (18, torch.Size([3, 1, 32, 32]))
    """

    def __init__(self, images: Sequence[np.ndarray], patch: int = 32, stride: int = 4) -> None:
        if not images:
            raise ValueError("images: expected at least one image, got none.")
        small = [i for i, im in enumerate(images) if min(im.shape[-2:]) < patch]
        if small:
            raise ValueError(f"images: image(s) {small[:5]} are smaller than the patch size {patch}.")
        self.images, self.patch, self.stride = list(images), int(patch), int(stride)
        self._grid = [((im.shape[0] - patch) // stride + 1, (im.shape[1] - patch) // stride + 1) for im in self.images]
        self._cum = np.cumsum([r * c for r, c in self._grid])

    @property
    def grid_size(self) -> int:
        """Number of distinct patches on the stride grid (the size of the paper's training set)."""
        return int(self._cum[-1])

    def _crop(self, idx: int, r: int, c: int) -> np.ndarray:
        return self.images[idx][r : r + self.patch, c : c + self.patch]

    def sample(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` patches drawn uniformly (with replacement) from the stride grid, ``(n, 1, patch, patch)``."""
        flat = rng.integers(0, self.grid_size, size=int(n))
        img = np.searchsorted(self._cum, flat, side="right")
        local = flat - np.concatenate([[0], self._cum])[img]
        out = np.empty((int(n), 1, self.patch, self.patch), dtype=np.float32)
        for k, (i, j) in enumerate(zip(img, local)):
            cols = self._grid[i][1]
            out[k, 0] = self._crop(int(i), int(j // cols) * self.stride, int(j % cols) * self.stride)
        return torch.from_numpy(out)

    def random_patches(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """``n`` patches at uniformly random images and positions (any pixel offset), ``(n, 1, patch, patch)``."""
        out = np.empty((int(n), 1, self.patch, self.patch), dtype=np.float32)
        for k in range(int(n)):
            i = int(rng.integers(0, len(self.images)))
            h, w = self.images[i].shape
            out[k, 0] = self._crop(i, int(rng.integers(0, h - self.patch + 1)), int(rng.integers(0, w - self.patch + 1)))
        return torch.from_numpy(out)


# ---------------------------------------------------------------------------------------------------- train / evaluate
def _build_network(variant: str, network_cfg: dict[str, Any], steps: int) -> RIM:
    return RIM(
        in_channels=1,
        architecture=network_cfg.get("architecture", "compact"),
        variant=variant,
        link=network_cfg.get("link", "sigmoid"),
        steps=steps,
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

    Every variant of an ensemble sees the same sequence of patches and noise (both drawn from ``seed``) and starts
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
    loss_fn = MultiStepLoss("mse")
    optimizer = torch.optim.Adam(net.parameters(), lr=float(train_cfg.get("lr", 1e-3)))
    rng = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed)
    iterations, batch = int(train_cfg["iterations"]), int(train_cfg["batch_size"])
    max_seconds = train_cfg.get("max_seconds")
    max_seconds = math.inf if max_seconds is None else float(max_seconds)
    clip = train_cfg.get("grad_clip")
    curve: list[tuple[int, float]] = []
    running, stop, done = 0.0, "iterations", 0
    net.train()
    start = time.perf_counter()
    for it in range(1, iterations + 1):
        x = sampler.sample(batch, rng)
        y = measure(A, x, sigma, noise)
        loss = loss_fn(net(y, A, steps=steps, sigma=sigma, return_all=True), x) / steps
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), float(clip))
        optimizer.step()
        running += float(loss.detach())
        done = it
        if it % log_every == 0 or it == iterations:
            curve.append((it, running / (it - (curve[-1][0] if curve else 0))))
            running = 0.0
        if time.perf_counter() - start > max_seconds:
            stop = "max_seconds"
            if not curve or curve[-1][0] != it:
                curve.append((it, running / (it - (curve[-1][0] if curve else 0))))
            break
    seconds = time.perf_counter() - start
    net.eval()
    record = {
        "variant": variant,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "iterations": done,
        "patches_seen": done * batch,
        "seconds": round(seconds, 2),
        "seconds_per_iteration": round(seconds / max(done, 1), 4),
        "stopped_by": stop,
        "epsilon": float(net.likelihood.epsilon.detach()),
        "loss_curve": [[i, round(v, 6)] for i, v in curve],
    }
    return net, record


def evaluate_steps(
    net: RIM, A: LinearOperator, y: torch.Tensor, x: torch.Tensor, steps: int, sigma: float, batch_size: int = 250
) -> np.ndarray:
    """PSNR (data range 1) of every estimate :math:`x_1, \\dots, x_{steps}` on every patch, shape ``(steps, N)``."""
    rows = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            estimates = net(y[i : i + batch_size], A, steps=steps, sigma=sigma, return_all=True)
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
def _atomic_write(path: Path, write) -> None:
    with atomic_write(path, overwrite=True) as tmp:
        write(str(tmp))


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


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
    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def format_table(results: dict[str, Any]) -> str:
    """Markdown table: PSNR mean ± std at :math:`t = 1, T/2, T, 2T` per ensemble and model, with the baselines."""
    T = results["settings"]["train"]["steps"]
    steps = report_steps(T)
    head = "| ensemble | model | parameters | Adam steps (patches) | train s | " + " | ".join(f"t = {t}" for t in steps) + " | best t |"
    lines = [head, "| " + " | ".join(["---"] * (6 + len(steps))) + " |"]
    for ens, res in results["ensembles"].items():
        for variant, m in res["models"].items():
            cells = [f"{m['psnr_mean'][t - 1]:.2f} ± {m['psnr_std'][t - 1]:.2f}" for t in steps]
            best = int(np.argmax(m["psnr_mean"])) + 1
            tr = m["training"]
            lines.append(
                f"| {ens} | {variant.upper()} | {tr['parameters']:,} | {tr['iterations']} ({tr['patches_seen']}) | "
                f"{tr['seconds']:.0f} | " + " | ".join(cells) + f" | {best} |"
            )
        b = res["baselines"]
        blank = " | ".join([""] * (len(steps) - 1))
        lines.append(f"| {ens} | start A^H y/‖A‖² | – | – | – | {b['start']['mean']:.2f} ± {b['start']['std']:.2f} | {blank} | – |")
        lines.append(
            f"| {ens} | Tikhonov (λ = {b['tikhonov']['lam']:g}) | – | – | – | "
            f"{b['tikhonov']['mean']:.2f} ± {b['tikhonov']['std']:.2f} | {blank} | – |"
        )
    return "\n".join(lines) + "\n"


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
    if not p.is_file():
        raise ValueError(f"config: {str(p)!r} is not a file.")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"config: {str(p)!r} is not valid JSON ({err}).") from err
    missing = [k for k in ("data", "problem", "network", "train", "evaluate", "baseline", "output") if k not in cfg]
    if missing:
        raise ValueError(f"config: {str(p)!r} lacks the section(s) {missing}.")
    quick_cfg = cfg.pop("quick", {})
    return _merge(cfg, quick_cfg) if quick else cfg


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}


def _machine() -> dict[str, Any]:
    cpu = cpu_model()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in load] if load else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


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
    data, problem, train_cfg, eval_cfg = cfg["data"], cfg["problem"], cfg["train"], cfg["evaluate"]
    ensembles, variants = list(problem["ensembles"]), list(cfg.get("variants", VARIANTS))
    for e in ensembles:
        if e not in ENSEMBLES:
            raise ValueError(f"problem.ensembles: expected names from {ENSEMBLES}, got {e!r}.")
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"variants: expected names from {VARIANTS}, got {v!r}.")
    patch, sigma, T = int(data["patch_size"]), float(problem["sigma"]), int(train_cfg["steps"])
    reductions = problem["reduction"]
    if not isinstance(reductions, dict):
        reductions = {e: float(reductions) for e in ensembles}

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
    say(
        f"data: {source}; {len(train_images)} train images, {train_sampler.grid_size} stride-{train_sampler.stride} "
        f"patches; {len(test_images)} test images, {x_test.shape[0]} test patches"
    )

    name = cfg["output"].get("name", "convergence_random_projections")
    out = Path(output_dir)
    results: dict[str, Any] = {
        "experiment": "RIM paper Sec. 4.4 / Fig. 2: RIM vs GDN vs FFN on random projections",
        "settings": cfg,
        "data": {
            "source": source,
            "train_images": len(train_images),
            "train_grid_patches": train_sampler.grid_size,
            "test_images": len(test_images),
            "test_patches": int(x_test.shape[0]),
            "validation_patches": int(x_val.shape[0]),
            "train_mean": round(train_mean, 4),
        },
        "machine": _machine(),
        "ensembles": {},
    }
    eval_steps = int(eval_cfg.get("steps_factor", 2)) * T
    for k, ens in enumerate(ensembles):
        A = build_operator(ens, float(reductions[ens]), (patch, patch), int(problem.get("operator_seed", seed)))
        y_test = measure(A, x_test, sigma, torch.Generator().manual_seed(seed + 2000 + k))
        y_val = measure(A, x_val, sigma, torch.Generator().manual_seed(seed + 3000 + k))
        base = tikhonov_baseline(
            A, y_val, x_val, y_test, x_test, train_mean, cfg["baseline"]["lams"], int(cfg["baseline"].get("cg_iterations", 50))
        )
        m = int(A.op.range_shape[0]) if isinstance(A, RealImageView) else int(A.range_shape[0])
        entry: dict[str, Any] = {
            "reduction": float(reductions[ens]),
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
        for variant in variants:
            net, record = train_variant(variant, A, train_sampler, cfg["network"], {**train_cfg, "max_seconds": train_cfg.get("max_seconds_per_model")}, sigma, seed)
            t0 = time.perf_counter()
            scores = evaluate_steps(net, A, y_test, x_test, eval_steps, sigma, int(eval_cfg.get("batch_size", 250)))
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
            results["wall_seconds"] = round(time.perf_counter() - wall, 1)
            _write_text(out / f"{name}.json", json.dumps(results, indent=1) + "\n")  # partial results survive a kill
    results["wall_seconds"] = round(time.perf_counter() - wall, 1)
    _write_text(out / f"{name}.json", json.dumps(results, indent=1) + "\n")
    _write_text(out / f"{name}.md", format_table(results))
    plot_convergence(results, out / f"{name}.png")
    say(f"wrote {out / name}.{{png,json,md}} in {results['wall_seconds']:.0f} s")
    return results


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

"""What an adaptation run did: the data term over the steps, the penalty, the estimated operator, PSNR/SSIM."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rim_monai.data.file_utils import atomic_write

__all__ = ["AdaptationReport"]


def _json_safe(value: Any) -> Any:
    """Floats that JSON cannot hold (inf, nan) as strings, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _from_json_safe(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: _from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json_safe(v) for v in value]
    return value


@dataclass
class AdaptationReport:
    """The record of one :func:`~rim_monai.adaptation.adapt` (or baseline) run.

    The data term is :math:`D = \\frac{1}{N}\\sum_i \\|W_i^{1/2}(A f_\\theta(y_i, A) - y_i)\\|^2` over all ``N``
    measurements; ``relative_residual`` is :math:`\\sqrt{\\sum_i \\|A f - y_i\\|^2 / \\sum_i \\|y_i\\|^2}`.

    Attributes:
        method: ``"R&R"``, ``"R&R+"`` or ``"supervised"``.
        mu: the weight of :math:`\\|\\theta - \\theta_0\\|^2`.
        num_samples: ``N``.
        eval_steps: the optimisation steps at which the full data term was evaluated (0 = before adaptation).
        data_term: the full data term at ``eval_steps``.
        penalty: :math:`\\mu\\|\\theta - \\theta_0\\|^2` at ``eval_steps`` (0 for ``mu = inf``, where θ is frozen).
        parameters: estimated operator parameters at ``eval_steps`` (name -> list of values).
        psnr / ssim: mean PSNR (dB) / SSIM against the references at ``eval_steps``, when references are given
            (empty otherwise; an SSIM that is not defined is ``None``).
        batch_loss: the mini-batch objective of every step (data term + penalty, or the supervised loss).
        data_term_before / data_term_after: the full data term before adaptation and of the returned network.
        relative_residual_before / relative_residual_after: the relative residual before and after.
        parameters_before / parameters_final: operator parameters before and of the returned operator.
        psnr_before / psnr_after / ssim_before / ssim_after: mean PSNR (dB) / SSIM against the references, if given.
        metric_protocol: how PSNR/SSIM were computed (data range, magnitude for complex images).
        steps_run: the optimisation steps taken; ``stopped_early``: whether early stopping ended the run, and
            ``stop_reason`` why (``"no improvement"`` for ``patience``, ``"noise level"`` when the data term reached
            ``noise_energy``);
        noise_energy: the expected data term of the true images given to the run (``None`` if not given).
        best_step: the step whose state was returned (lowest full data term).
        search_evaluations: objective evaluations spent in the outer search.
        wall_time_s: the wall time of the whole run.
        config: the arguments of the run.
        operator: the (estimated) operator the returned network should be used with; not written to JSON.
    """

    method: str
    mu: float
    num_samples: int
    eval_steps: list[int] = field(default_factory=list)
    data_term: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    parameters: dict[str, list[Any]] = field(default_factory=dict)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float | None] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    data_term_before: float = math.nan
    data_term_after: float = math.nan
    relative_residual_before: float = math.nan
    relative_residual_after: float = math.nan
    parameters_before: dict[str, Any] = field(default_factory=dict)
    parameters_final: dict[str, Any] = field(default_factory=dict)
    psnr_before: float | None = None
    psnr_after: float | None = None
    ssim_before: float | None = None
    ssim_after: float | None = None
    metric_protocol: str | None = None
    steps_run: int = 0
    stopped_early: bool = False
    stop_reason: str | None = None
    noise_energy: float | None = None
    best_step: int = 0
    search_evaluations: int = 0
    wall_time_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    operator: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """All fields except ``operator``, JSON-ready (``inf``/``nan`` as strings)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "operator"}
        return _json_safe(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AdaptationReport":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)} - {"operator"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"data: unknown report fields {unknown}; expected names from {sorted(names)}.")
        return cls(**_from_json_safe(data))

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the report as JSON (atomically: a temporary file in the same folder, then a rename).

        Returns:
            The path written.
        """
        with atomic_write(path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return Path(path)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "AdaptationReport":
        """Read a report written by :meth:`to_json`.

        Raises:
            ValueError: naming ``path`` when the file is missing or not a report.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"path: no report file at {path}.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"path: {path} is not valid JSON ({err}).") from None
        if not isinstance(data, dict):
            raise ValueError(f"path: {path} holds a {type(data).__name__}, expected a JSON object.")
        return cls.from_dict(data)

    def plot(self, path: str | os.PathLike) -> Path:
        """Plot the data term (and the penalty) over the steps, log scale, saved atomically (format from suffix).

        When the run had references, PSNR over the evaluations is drawn on a second axis (right), so one figure shows
        whether lowering the data term helped or started to fit the noise.

        Raises:
            ValueError: naming ``path`` when matplotlib is not installed (``pip install matplotlib``).
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ValueError(f"path: plotting {path} needs matplotlib (pip install matplotlib).") from None
        path = Path(path)
        fig, ax = plt.subplots(figsize=(6, 4))
        try:
            if self.batch_loss:
                ax.plot(range(1, len(self.batch_loss) + 1), self.batch_loss, color="0.75", lw=0.8,
                        label="mini-batch objective")
            ax.plot(self.eval_steps, self.data_term, "o-", label="data term D (all samples)")
            if self.mu > 0 and any(p > 0 for p in self.penalty):
                ax.plot(self.eval_steps, self.penalty, "s--", label="μ‖θ−θ₀‖²")
            if self.noise_energy:
                ax.axhline(self.noise_energy, color="k", ls="--", lw=0.8, label="noise energy (discrepancy level)")
            if self.stopped_early:
                ax.axvline(self.best_step, color="k", ls=":", lw=1, label=f"returned (step {self.best_step})")
            if all(v > 0 for v in self.data_term + self.batch_loss):
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel("value")
            handles, labels = ax.get_legend_handles_labels()
            if self.psnr and all(v is not None for v in self.psnr):
                right = ax.twinx()
                right.plot(self.eval_steps, self.psnr, "^-", color="tab:red", label="PSNR vs reference (dB)")
                right.set_ylabel("PSNR (dB)", color="tab:red")
                more_handles, more_labels = right.get_legend_handles_labels()
                handles, labels = handles + more_handles, labels + more_labels
            title = f"{self.method}, μ = {self.mu:g}, N = {self.num_samples}"
            if self.psnr_before is not None and self.psnr_after is not None:
                title += f"\nPSNR {self.psnr_before:.2f} → {self.psnr_after:.2f} dB"
            ax.set_title(title)
            ax.legend(handles, labels, fontsize="small")
            fig.tight_layout()
            with atomic_write(path, overwrite=True) as tmp:
                fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
        finally:
            plt.close(fig)
        return path

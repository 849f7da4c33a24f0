r"""Measured evidence for model adaptation (issue 6): no adaptation, swapped operator, R&R, R&R+, retrained on A₁.

For one drift ``case`` the trained bundle network (θ₀, trained for the bundle's operator :math:`A_0`) is evaluated on
held-out data simulated with a drifted operator :math:`A_1`, exactly under the bundle's protocol (the bundle's
``inference.json`` is parsed with :class:`monai.bundle.ConfigParser` and only the operator settings are overridden).
CT cases score the held-out WG-04 head slice ``CT2_UNC`` + ellipse phantoms of the test stream (seed 2); MRI cases
the held-out MNI slab ``z in [90, 110)`` with 40 dB k-space noise (:data:`MRI_SNR_DB`):

- ``ct_views``: 60 -> 30 parallel views; ``ct_arc``: limited arc, 120° with 40 views (same 3° step);
  ``ct_fan``: fan beam (the bundle's default fan geometry, 60 views over 360°);
- ``ct_shift`` / ``ct_angle``: parallel beam with an unknown detector shift of 1.5 bins / angle offset of 1°;
- ``mri_equispaced8``: 8x equispaced 1D masks (inside the bundle's training mix: a small drift);
  ``mri_poisson12``: 2D Poisson-disc masks at 12x (the mix has Poisson-disc at 4x and 8x only);
  ``mri_coils4``: 4 coils instead of 8 (4x random masks).

Methods (PSNR/SSIM against the references, mean over the samples; wall time each):

- ``no_adaptation_A0``: θ₀ with the original :math:`A_0` where that is defined (``ct_shift``/``ct_angle``: the
  operator without the offset);
- ``swapped_A1``: θ₀ with :math:`A_1` (``net(y, A1)``);
- ``rr_A1``: R&R (:func:`rim_monai.adaptation.adapt`) on the **same** test measurements, measurement-only (the
  references are used only for scoring, never in the loss — the paper's transductive setting);
- ``rr_plus_frozen_theta_unknown_<parameter>`` and ``rr_plus_joint_unknown_<parameter>`` (``ct_shift``/``ct_angle``):
  R&R+ with the parameter unknown (``GeometryParameter`` search), started from :math:`A_0`, with θ frozen at θ₀
  (μ = ∞: only the operator is estimated) and jointly with θ; the estimates are reported beside the true value;
- ``retrained_A1``: the upper reference, θ₀ fine-tuned with ground truth on *training* pairs simulated with
  :math:`A_1` (the bundle's ``train.json`` dataset, :func:`~rim_monai.adaptation.retrain_supervised`); for the
  offset cases the upper reference is θ₀ with the true :math:`A_1` (``oracle_A1``), since an offset does not change
  the images a network has to learn;
- baselines: FBP (CT, Hann) or zero-filled (MRI) with :math:`A_1`.

``gap_recovered`` is ``(method − lower) / (upper − lower)`` in PSNR, with ``lower`` = ``no_adaptation_A0`` where
defined, else ``swapped_A1``, and ``upper`` = ``retrained_A1`` or ``oracle_A1``.

Example:
    python -m rim_monai.experiments.adaptation_evidence --case ct_shift --out docs/figures/adaptation --steps 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.data import list_data_collate

from rim_monai.adaptation import (
    GeometryParameter,
    ParameterEstimator,
    adapt,
    reconstruct_each,
    retrain_supervised,
    transmission_noise_energy,
    transmission_weights,
)
from rim_monai.data import MRIProtocol
from rim_monai.data.file_utils import atomic_write_text
from rim_monai.engines import bundle_config, load_bundle_network
from rim_monai.experiments.environment import REPOSITORY, SHARED_DATA, machine_line, timed
from rim_monai.metrics import image_quality

__all__ = ["CASES", "REPO", "DATA", "MRI_SNR_DB", "bundle_parser", "run_case", "evaluate", "gap_recovered",
           "training_pairs", "reconstruction_figure", "method_label", "write_results", "summarize", "data_term_levels",
           "main"]

#: the repository and its shared data folder (aliases of :mod:`rim_monai.experiments.environment`)
REPO = REPOSITORY
DATA = SHARED_DATA

CASES: dict[str, dict[str, Any]] = {
    "ct_views": {
        "bundle": "ct_lpd_recon",
        "description": "CT parallel beam, 60 -> 30 views (same arc, detector, dose)",
        "overrides": {"num_angles": 30},
        "protocol": "per_image",
    },
    "ct_arc": {
        "bundle": "ct_lpd_recon",
        "description": "CT parallel beam, 180° -> limited 120° arc with 40 views (same 3° step, a 60° missing wedge)",
        "overrides": {"num_angles": 40, "arc": 2 * math.pi / 3},
        "protocol": "per_image",
    },
    "ct_fan": {
        "bundle": "ct_lpd_recon",
        "description": "CT parallel beam -> fan beam (60 views over 360°, the bundle's default fan geometry)",
        "overrides": {"geometry": "fan"},
        "protocol": "per_image",
    },
    "ct_shift": {
        "bundle": "ct_lpd_recon",
        "description": "CT parallel beam, 60 views, detector shifted by 1.5 bins (unknown to the reconstructor)",
        "overrides": {},
        "unknown": {"parameter": "detector_shift", "value": 1.5, "unit": "bins", "bound": 4.0, "tol": 0.02},
        "protocol": "per_image",
    },
    "ct_fan_shift": {
        "bundle": "ct_lpd_recon",
        "description": "CT fan beam (60 views over 360°), detector shifted by 1.5 bins (unknown to the reconstructor)",
        "overrides": {"geometry": "fan"},
        "unknown": {"parameter": "detector_shift", "value": 1.5, "unit": "bins", "bound": 4.0, "tol": 0.02},
        "protocol": "per_image",
    },
    "ct_angle": {
        "bundle": "ct_lpd_recon",
        "description": "CT parallel beam, 60 views, every view rotated by 1° (unknown to the reconstructor)",
        "overrides": {},
        "unknown": {"parameter": "angle_offset", "value": 1.0, "unit": "degrees", "bound": 3.0, "tol": 0.01},
        "protocol": "per_image",
    },
    "mri_equispaced8": {
        "bundle": "mri_rim_recon",
        "description": "MRI 8 coils, random 4x -> equispaced 8x masks (the bundle was trained on a mix of masks that "
        "includes equispaced 8x, so the drift is small)",
        "overrides": {"mask_func": "equispaced", "acceleration": 8},
        "protocol": "volume",
    },
    "mri_poisson12": {
        "bundle": "mri_rim_recon",
        "description": "MRI 8 coils, random 4x -> 2D Poisson-disc 12x masks (trained on Poisson-disc 4x/8x only)",
        "overrides": {"mask_func": "poisson_disc", "acceleration": 12},
        "protocol": "volume",
    },
    "mri_coils4": {
        "bundle": "mri_rim_recon",
        "description": "MRI random 4x masks, 8 -> 4 coils (another coil array)",
        "overrides": {"coils": 4},
        "protocol": "volume",
    },
}


def bundle_parser(bundle: str, overrides: dict[str, Any], config: str = "inference.json") -> ConfigParser:
    """The repository bundle's ``configs/<config>`` with ``overrides`` (MONAI bundle ids)."""
    return bundle_config(REPO / "bundles" / bundle, overrides, config)


def evaluate(pred: torch.Tensor, ref: torch.Tensor, protocol: str) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of ``pred`` against ``ref`` (``(N, C, H, W)``; complex by magnitude, on the CPU)."""
    values = image_quality(pred.detach().cpu(), ref.detach().cpu(), protocol, ("psnr", "ssim"))
    return {name: float(value) for name, value in values.items()}


def gap_recovered(value: float, lower: float, upper: float) -> float | None:
    """``(value − lower) / (upper − lower)``: the fraction of the PSNR gap recovered (``None`` when the gap ≤ 0)."""
    return None if not upper > lower else (value - lower) / (upper - lower)


def _run_record(report: Any) -> dict[str, Any]:
    """What the evidence keeps of an adaptation report: steps, the returned step, and the curves over evaluations."""
    return {"steps_run": report.steps_run, "best_step": report.best_step, "stop_reason": report.stop_reason,
            "noise_energy": report.noise_energy,
            "data_term_before": report.data_term_before, "data_term_after": report.data_term_after,
            "curve": {"step": list(report.eval_steps), "data_term": list(report.data_term), "psnr": list(report.psnr)}}


def _unknown_value(spec: dict[str, Any], a0: Any) -> tuple[float, float]:
    """(true value in the operator's unit, the display unit's size in the operator's unit) of an offset case."""
    unit = spec["unit"]
    scale = a0.detector_spacing if unit == "bins" else math.pi / 180.0 if unit == "degrees" else 1.0
    return spec["value"] * scale, scale


def _samples(dataset: Any, prepare: Callable, count: int, device: torch.device):
    """``count`` items of ``dataset`` through the bundle's ``prepare_batch``: measurements, references, operators."""
    ys, refs, ops = [], [], []
    for i in range(min(count, len(dataset))):
        y, target, (op, *_), _ = prepare(list_data_collate([dataset[i]]), device)
        ys.append(y[0])
        refs.append(target[0])
        ops.append(op)
    return ys, torch.stack(refs), ops


#: k-space SNR of the MRI test measurements: the bundle's evaluation protocol and its training noise (inference.json
#: simulates noise-free k-space from NIfTI images by default, which would leave R&R no noise to over-fit).
MRI_SNR_DB = 40.0


def _overrides(case: str) -> dict[str, Any]:
    """The bundle ids that describe the drifted operator :math:`A_1` of ``case`` (offsets excluded)."""
    return dict(CASES[case]["overrides"])


def _load(case: str, num_samples: int, phantoms: int, device: torch.device):
    """Parser, network, test measurements, references and per-sample A₁ operators of ``case``."""
    spec = CASES[case]
    overrides = _overrides(case)
    if spec["bundle"] == "ct_lpd_recon":
        overrides.update({"files": [str(DATA / "ct" / "dicom" / "WG04" / "CT2_UNC.dcm")], "phantoms": phantoms})
    else:
        overrides.update({"dataset_dir": str(DATA / "mri_image" / "nifti"),
                          "files": [str(DATA / "mri_image" / "nifti" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")],
                          "slice_range": [90, 110], "snr_db": MRI_SNR_DB})
    parser = bundle_parser(spec["bundle"], overrides)
    if "unknown" in spec:
        true_value, _ = _unknown_value(spec["unknown"], parser.get_parsed_content("operator"))
        parser[spec["unknown"]["parameter"]] = true_value
        parser.parse(reset=True)
    net = load_bundle_network(parser, device)
    ys, refs, ops = _samples(parser.get_parsed_content("dataset"), parser.get_parsed_content("prepare_batch"),
                             num_samples, device)
    return parser, net, ys, refs, ops


#: the v1 training images of the bundles, from which the retrained reference draws its pairs (the v2 training configs
#: of issues 13/14 draw their own acquisitions per batch and cannot be bound to one operator A1)
CT_TRAINING_FILES = ("ct/dicom/WG04/CT1_UNC.dcm", "ct/dicom/dcmqi_ct-3slice/01.dcm", "ct/dicom/dcmqi_ct-3slice/02.dcm",
                     "ct/dicom/dcmqi_ct-3slice/03.dcm")
MRI_TRAINING_VOLUME = "mri_image/nifti/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
MRI_TRAINING_SLABS = ((0, 75), (115, 189))


def training_pairs(case: str, count: int, operator: Any, device: torch.device, seed: int = 100):
    """``count`` ground-truth training pairs measured with :math:`A_1`, from the bundles' v1 training images.

    CT: random ellipse phantoms and the training DICOM slices (:data:`CT_TRAINING_FILES`, a quarter of the items),
    measured by the bundle's ``protocol`` with the test operator itself; MRI: 96² patches of the MNI slices outside
    the validation and test slabs (:data:`MRI_TRAINING_SLABS`) under the case's mask, acceleration and coils; never
    the test samples. ``seed`` gives a stream different from the one the bundle was trained on.

    Returns:
        ``(measurements, references, operators)`` (lists, with a stacked reference tensor).
    """
    spec, over = CASES[case], _overrides(case)
    parser = bundle_parser(spec["bundle"], {"seed": seed, **over})
    if spec["bundle"] == "ct_lpd_recon":
        parser["operator"] = operator  # the test operator object itself: the same geometry and cached matrix
        protocol = parser.get_parsed_content("protocol")
        dataset = protocol.training_dataset(count, dicom_files=[str(DATA / f) for f in CT_TRAINING_FILES],
                                            real_fraction=0.25, augment=True, seed=seed)
    else:
        protocol = MRIProtocol(coils=over.get("coils", 8), snr_db=MRI_SNR_DB,
                               training_accelerations=[over.get("acceleration", 4)],
                               training_masks=[over.get("mask_func", "random")])
        dataset = protocol.training_dataset([str(DATA / MRI_TRAINING_VOLUME)], slice_ranges=MRI_TRAINING_SLABS,
                                            patch_size=(96, 96), seed=seed)
    return _samples(dataset, parser.get_parsed_content("prepare_batch"), count, device)


def data_term_levels(case: str, num_samples: int = 8, phantoms: int = 7, device: str = "cpu") -> dict[str, Any]:
    r"""Where the data term of ``case``'s test samples stands: θ₀, the reference images, and the noise.

    Returns the means over the samples of :math:`\|A_1 x - y\|^2` for ``x`` = θ₀'s reconstruction (swapped
    operator) and ``x`` = the reference image, and for CT the expected noise energy of log-transformed Poisson data,
    :func:`~rim_monai.adaptation.transmission_noise_energy` (the bundle's ``photons`` is :math:`I_0`), which needs
    the measurements only. R&R that drives the data term below the noise energy is fitting the noise (Morozov's
    discrepancy principle).
    """
    from rim_monai.adaptation import data_consistency

    parser, net, ys, refs, ops = _load(case, num_samples, phantoms, torch.device(device))
    with torch.no_grad():
        recon = reconstruct_each(net, ys, ops)
        d_net = [float(data_consistency(x[None], op, y[None])) for x, y, op in zip(recon, ys, ops)]
        d_ref = [float(data_consistency(x[None], op, y[None])) for x, y, op in zip(refs, ys, ops)]
    levels = {"case": case, "num_samples": len(ys), "data_term_theta0": sum(d_net) / len(ys),
              "data_term_reference": sum(d_ref) / len(ys)}
    if CASES[case]["bundle"] == "ct_lpd_recon":
        photons = float(parser.get_parsed_content("photons"))
        levels["noise_energy_estimate"] = float(transmission_noise_energy(torch.stack(ys), photons).mean())
    return levels


def _display(image: torch.Tensor, bundle: str):
    """One reconstruction as a NumPy ``(H, W)`` image in display units (CT: HU; MRI: magnitude)."""
    from rim_monai.data import AttenuationToHU

    image = (image.abs() if image.is_complex() else image).detach().double().cpu()[0]
    return (AttenuationToHU()(image) if bundle == "ct_lpd_recon" else image).numpy()


def reconstruction_figure(case: str, reference: torch.Tensor, images: dict[str, torch.Tensor],
                          path: str | os.PathLike) -> Path:
    """Side-by-side PNG of one sample: the reference and each method's reconstruction (titles: PSNR / SSIM)."""
    from rim_monai.engines.figures import comparison_figure

    bundle = CASES[case]["bundle"] if case in CASES else "ct_lpd_recon"
    ref = _display(reference, bundle)
    window = (-160.0, 240.0) if bundle == "ct_lpd_recon" else (0.0, float(ref.max()))
    panels = {method_label(k): _display(v, bundle) for k, v in images.items()}
    return comparison_figure([(ref, panels)], path, window=window, row_labels=[case])


def method_label(key: str) -> str:
    """A short figure label for a method key of the result record (``rr_plus_joint_unknown_x`` -> ``R&R+ joint``)."""
    for prefix, label in (("rr_plus_frozen_theta", "R&R+, θ frozen"), ("rr_plus_joint", "R&R+ joint"),
                          ("rr_A1", "R&R, A₁"), ("retrained_A1", "retrained on A₁"), ("swapped_A1", "θ₀, A₁ (swapped)"),
                          ("oracle_A1", "θ₀, true A₁"), ("no_adaptation_A0", "θ₀, A₀ (no adaptation)"),
                          ("fbp_A1", "FBP, A₁"), ("zero_filled_A1", "zero-filled, A₁")):
        if key.startswith(prefix):
            return label
    return key


def run_case(case: str, steps: int = 30, num_samples: int = 20, phantoms: int = 4, mu: float = 1e-3,
             lr: float = 1e-4, batch_size: int = 2, search_rounds: int = 1, device: str = "cpu",
             retrain_steps: int = 0, retrain_samples: int = 40, retrain_lr: float = 1e-4, patience: int | None = None,
             figures: str | os.PathLike | None = None, noise_weighting: bool = False,
             noise_stop: bool = False) -> dict[str, Any]:
    """Measure every method of ``case``; returns the result record (see the module docstring).

    Args:
        case: a key of :data:`CASES`.
        steps, mu, lr, batch_size, patience: the R&R / R&R+ settings (:func:`~rim_monai.adaptation.adapt`).
        num_samples: test samples (at most; CT: the head slice + ``phantoms`` phantoms).
        phantoms: ellipse phantoms of the CT test stream.
        search_rounds: R&R+ search rounds.
        device: torch device.
        retrain_steps: Adam steps of the ``retrained_A1`` reference (0: not run).
        retrain_samples, retrain_lr: its training pairs and learning rate (batch ``batch_size``).
        figures: a folder for ``<case>_reconstructions.png`` (sample 0) and ``<case>_rr_data_term.png``.
        noise_weighting: CT only: weight the data term by :func:`~rim_monai.adaptation.transmission_weights`
            (inverse Poisson variances of the log-transformed counts).
        noise_stop: CT only: stop R&R at the measurement-only noise energy
            (:func:`~rim_monai.adaptation.transmission_noise_energy` with the bundle's ``photons``).

    Raises:
        ValueError: an unknown ``case``; ``noise_weighting`` or ``noise_stop`` for an MRI case.
    """
    if case not in CASES:
        raise ValueError(f"case: expected one of {sorted(CASES)}, got {case!r}.")
    spec, dev = CASES[case], torch.device(device)
    for flag, name in ((noise_weighting, "noise_weighting"), (noise_stop, "noise_stop")):
        if flag and spec["bundle"] != "ct_lpd_recon":
            raise ValueError(f"{name}: the transmission (Poisson) noise model is for CT cases, got {case!r}.")
    started = time.perf_counter()
    parser, net, ys, refs, ops = _load(case, num_samples, phantoms, dev)
    scores = _Scores(refs, spec["protocol"])
    a0 = _baselines(case, net, ys, ops, scores)
    energy = None
    if noise_stop:
        photons = float(parser.get_parsed_content("photons"))
        energy = lambda y: transmission_noise_energy(y, photons)  # noqa: E731
    settings = dict(mu=mu, steps=steps, lr=lr, batch_size=batch_size, references=refs,
                    metric_protocol=spec["protocol"], patience=patience, progress=False, seed=0,
                    noise_weighting=transmission_weights if noise_weighting else None, noise_energy=energy)
    if a0 is None:
        report, extra = _rr(net, ys, ops, settings, scores), {}
    else:
        report, extra = _rr_plus(case, net, ys, a0, settings, search_rounds, scores)
    if figures is not None:
        Path(figures).mkdir(parents=True, exist_ok=True)
        report.plot(Path(figures) / f"{case}_rr_data_term.png")
    if retrain_steps > 0 and a0 is None:  # the upper reference: fine-tuned with ground truth on pairs of A₁
        _retrained(case, net, ys, ops, dev, retrain_steps, retrain_samples, retrain_lr, batch_size, scores)
    scores.add_gap_recovered()
    if figures is not None:
        reconstruction_figure(case, refs[0], scores.shown, Path(figures) / f"{case}_reconstructions.png")
    return {
        "case": case,
        "description": spec["description"],
        "bundle": spec["bundle"],
        "num_samples": len(ys),
        "metric_protocol": spec["protocol"],
        "settings": {"steps": steps, "mu": mu, "lr": lr, "batch_size": batch_size, "phantoms": phantoms,
                     "search_rounds": search_rounds, "patience": patience, "retrain_steps": retrain_steps,
                     "retrain_samples": retrain_samples, "retrain_lr": retrain_lr, "noise_weighting": noise_weighting,
                     "noise_stop": noise_stop},
        "setting_note": "R&R/R&R+ adapt on the same test measurements they are scored on, measurement-only "
        "(references only for scoring); retrained_A1 is fine-tuned with ground truth on separate training pairs.",
        "methods": scores.methods,
        **extra,
        "machine": machine_line(),
        "total_wall_s": round(time.perf_counter() - started, 1),
    }


class _Scores:
    """The methods' PSNR/SSIM against the references (and the first sample of each, for the figure)."""

    def __init__(self, refs: torch.Tensor, protocol: str) -> None:
        self.refs, self.protocol = refs, protocol
        self.methods: dict[str, dict[str, Any]] = {}
        self.shown: dict[str, torch.Tensor] = {}

    def add(self, name: str, recon: torch.Tensor, seconds: float, **extra: Any) -> None:
        self.methods[name] = {**evaluate(recon, self.refs, self.protocol), "wall_s": round(seconds, 2), **extra}
        self.shown[name] = recon[0]

    def add_gap_recovered(self) -> None:
        """``gap_recovered`` of every method, when there is an upper reference."""
        methods = self.methods
        lower = methods.get("no_adaptation_A0", methods.get("swapped_A1"))["psnr"]
        upper = methods.get("retrained_A1", methods.get("oracle_A1"))
        if upper is not None:
            for m in methods.values():
                m["gap_recovered"] = gap_recovered(m["psnr"], lower, upper["psnr"])


def _baselines(case: str, net: torch.nn.Module, ys: list, ops: list, scores: _Scores) -> Any:
    """FBP or zero-filled with A₁, θ₀ with A₀ (offset cases), θ₀ with A₁; returns A₀ for the offset cases, else None."""
    spec = CASES[case]
    if spec["bundle"] == "ct_lpd_recon":
        from rim_monai.classical import fbp

        recon, t = timed(lambda: reconstruct_each(lambda y, A: fbp(y, A, filter="hann"), ys, ops))
        scores.add("fbp_A1", recon, t)
    else:
        from rim_monai.classical import zero_filled

        recon, t = timed(lambda: reconstruct_each(zero_filled, ys, ops))
        scores.add("zero_filled_A1", recon, t)
    a0 = None
    if "unknown" in spec:  # (a) no adaptation: θ₀ with A₀ where that is defined
        a0 = ops[0].replace(**{spec["unknown"]["parameter"]: 0.0})
        recon, t = timed(lambda: reconstruct_each(net, ys, [a0] * len(ys)))
        scores.add("no_adaptation_A0", recon, t)
    recon, t = timed(lambda: reconstruct_each(net, ys, ops))  # (b) swapped operator
    scores.add("oracle_A1" if a0 is not None else "swapped_A1", recon, t)
    return a0


def _rr(net: torch.nn.Module, ys: list, ops: list, settings: dict[str, Any], scores: _Scores) -> Any:
    """(c) R&R with the known A₁, measurement-only; returns its report."""
    shared = all(op is ops[0] for op in ops)
    adapted, report = adapt(net, ops[0] if shared else ops, torch.stack(ys) if shared else ys, **settings)
    scores.add("rr_A1", reconstruct_each(adapted, ys, ops), report.wall_time_s, **_run_record(report))
    return report


def _rr_plus(case: str, net: torch.nn.Module, ys: list, a0: Any, settings: dict[str, Any], search_rounds: int,
             scores: _Scores) -> tuple[Any, dict[str, Any]]:
    """(d) R&R+ with the offset unknown, from A₀: θ frozen (μ = ∞, the parameter alone), then jointly with θ.

    Returns the last report and the record's estimate fields.
    """
    unknown = CASES[case]["unknown"]
    name = unknown["parameter"]
    _, unit = _unknown_value(unknown, a0)
    est = ParameterEstimator([GeometryParameter(name, bounds=(-unknown["bound"] * unit, unknown["bound"] * unit),
                                                tol=unknown["tol"] * unit)],
                             search_rounds=search_rounds, search_samples=4)
    found: dict[str, float] = {}
    for label, mu in (("frozen_theta", math.inf), ("joint", settings["mu"])):
        adapted, report = adapt(net, a0, torch.stack(ys), estimate=est, **{**settings, "mu": mu})
        found[label] = float(report.parameters_final[name]) / unit
        recon = reconstruct_each(adapted, ys, [report.operator] * len(ys))
        scores.add(f"rr_plus_{label}_unknown_{name}", recon, report.wall_time_s, **_run_record(report),
                   search_evaluations=report.search_evaluations, estimated=found[label])
    extra = {"unknown_parameter": name, "unit": unknown["unit"], "true_value": unknown["value"],
             "estimated_value": found, "error": {k: abs(v - unknown["value"]) for k, v in found.items()}}
    return report, extra


def _retrained(case: str, net: torch.nn.Module, ys: list, ops: list, device: torch.device, steps: int,
               samples: int, lr: float, batch_size: int, scores: _Scores) -> None:
    """(e) θ₀ fine-tuned with ground truth on ``samples`` training pairs measured with A₁, scored on the test set."""
    y_tr, x_tr, ops_tr = training_pairs(case, samples, ops[0], device)
    shared = all(op is ops_tr[0] for op in ops_tr)
    retrained, rep = retrain_supervised(net, ops_tr[0] if shared else ops_tr, torch.stack(y_tr) if shared else y_tr,
                                        x_tr, steps=steps, lr=lr, batch_size=batch_size,
                                        metric_protocol=CASES[case]["protocol"], progress=False, seed=0)
    scores.add("retrained_A1", reconstruct_each(retrained, ys, ops), rep.wall_time_s, steps=steps,
               training_pairs=len(y_tr))


def write_results(result: dict[str, Any], out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``<out>/<case>.json`` and ``.md`` (a table) atomically; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{result['case']}.json", out / f"{result['case']}.md"
    atomic_write_text(js, json.dumps(result, indent=2) + "\n")
    lines = [f"### {result['case']}: {result['description']}", "",
             f"{result['num_samples']} held-out samples, protocol `{result['metric_protocol']}`, settings "
             f"`{json.dumps(result['settings'])}`; {result['machine']}; total {result['total_wall_s']} s.", "",
             "| method | PSNR (dB) | SSIM | gap recovered | wall (s) |", "| --- | --- | --- | --- | --- |"]
    for name, m in result["methods"].items():
        gap = m.get("gap_recovered")
        gap = "" if gap is None else f"{100 * gap:.0f} %"
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {gap} | {m['wall_s']:.1f} |")
    if "unknown_parameter" in result:
        lines.append("")
        for label, value in result["estimated_value"].items():
            lines.append(f"R&R+ ({label.replace('_', ' ')}) estimated {result['unknown_parameter']}: {value:.3f} "
                         f"{result['unit']} (true {result['true_value']} {result['unit']}, "
                         f"error {result['error'][label]:.3f}).")
    atomic_write_text(md, "\n".join(lines) + "\n")
    return js, md


def summarize(out: str | os.PathLike) -> Path:
    """Write ``<out>/summary.md``: one row per ``<case>.json`` in ``out`` (cases in :data:`CASES` order), atomically.

    One row per adaptation run of a case (R&R; R&R+ with θ frozen and jointly). Columns: the lower reference (no
    adaptation with A₀ where defined, else the swapped operator), the adapted network, the upper reference (retrained
    on A₁, or the oracle operator), the fraction of the gap recovered and the adaptation's wall time.

    Raises:
        ValueError: naming ``out`` when it holds no case results.
    """
    out = Path(out)
    results = [json.loads((out / f"{c}.json").read_text()) for c in CASES if (out / f"{c}.json").is_file()]
    if not results:
        raise ValueError(f"out: no <case>.json results in '{out}'.")
    lines = ["| case | baseline | lower: no adaptation | R&R / R&R+ | upper: retrained / oracle | gap recovered | "
             "adaptation wall (s) | samples |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        m = r["methods"]
        base = next(k for k in m if k.startswith(("fbp", "zero_filled")))
        lower = "no_adaptation_A0" if "no_adaptation_A0" in m else "swapped_A1"
        upper = "retrained_A1" if "retrained_A1" in m else "oracle_A1" if "oracle_A1" in m else None

        def cell(key: str | None) -> str:
            return "—" if key is None or key not in m else f"{m[key]['psnr']:.2f} / {m[key]['ssim']:.3f}"

        for adapted in (k for k in m if k.startswith("rr_")):  # R&R, or R&R+ with θ frozen and jointly
            gap = m[adapted].get("gap_recovered")
            variant = "" if adapted == "rr_A1" else f" ({adapted.split('_unknown')[0].removeprefix('rr_plus_')})"
            lines.append(f"| {r['case']}{variant} | {base.split('_')[0]} {cell(base)} | {lower.split('_A')[0]} "
                         f"{cell(lower)} | {cell(adapted)} | {cell(upper)} | "
                         f"{'—' if gap is None else f'{100 * gap:.0f} %'} | {m[adapted]['wall_s']:.0f} | "
                         f"{r['num_samples']} |")
    path = out / "summary.md"
    atomic_write_text(path, "PSNR (dB) / SSIM, mean over the held-out samples.\n\n" + "\n".join(lines) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: ``--case``, ``--out`` and the adaptation settings."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", required=True, choices=sorted(CASES) + ["summary"],
                   help="a drift case, or 'summary' to tabulate the <case>.json files already in --out")
    p.add_argument("--out", required=True, help="folder for <case>.json, <case>.md and the figures")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--num-samples", type=int, default=20)
    p.add_argument("--phantoms", type=int, default=4)
    p.add_argument("--mu", type=float, default=1e-3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--search-rounds", type=int, default=1)
    p.add_argument("--patience", type=int, default=None, help="early stopping (evaluations without improvement)")
    p.add_argument("--retrain-steps", type=int, default=0, help="steps of the retrained-on-A1 reference (0: skip)")
    p.add_argument("--retrain-samples", type=int, default=40)
    p.add_argument("--retrain-lr", type=float, default=1e-4)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--noise-weighting", action="store_true", help="CT: Poisson inverse-variance weights in the data term")
    p.add_argument("--noise-stop", action="store_true",
                   help="CT: stop R&R at the measurement-only Poisson noise energy (discrepancy principle)")
    p.add_argument("--levels", action="store_true",
                   help="only print the data term of θ₀, of the references and (CT) the noise energy estimate")
    a = p.parse_args(argv)
    if a.levels:
        levels = data_term_levels(a.case, a.num_samples, a.phantoms)
        print(json.dumps(levels, indent=2))
        return levels
    if a.case == "summary":
        path = summarize(a.out)
        print(path.read_text())
        return {"summary": str(path)}
    result = run_case(a.case, a.steps, a.num_samples, a.phantoms, a.mu, a.lr, a.batch_size, a.search_rounds,
                      retrain_steps=a.retrain_steps, retrain_samples=a.retrain_samples, retrain_lr=a.retrain_lr,
                      patience=a.patience, figures=None if a.no_figures else a.out, noise_weighting=a.noise_weighting,
                      noise_stop=a.noise_stop)
    js, md = write_results(result, a.out)
    print(md.read_text())
    return result


if __name__ == "__main__":
    main()

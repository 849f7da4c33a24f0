"""Model adaptation as a bundle step: measurements of the new scanner in, ``model_adapted.pt`` and a report out.

:func:`adapt_bundle` is what a bundle's ``adapt.json`` calls. It reads up to ``num_samples`` items of the bundle's
dataset (configured for the new scanner: other views, mask or coils), builds each item's operator with the bundle's
``prepare_batch`` exactly as inference does, runs :func:`rim_monai.adaptation.adapt` (R&R, or R&R+ with ``estimate``)
from the shipped weights, and writes the adapted weights next to them — never over them — with a JSON report and a
plot of the data term over the adaptation steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from monai.data import list_data_collate

from rim_monai.adaptation import AdaptationReport, adapt
from rim_monai.data.file_utils import atomic_write
from rim_monai.engines.checkpoint import network_weights

__all__ = ["adapt_bundle"]


def adapt_bundle(
    network: torch.nn.Module,
    dataset: Any,
    prepare_batch: Any,
    checkpoint: str | os.PathLike,
    output_checkpoint: str | os.PathLike,
    report_dir: str | os.PathLike,
    num_samples: int = 20,
    mu: float = 1e-3,
    steps: int = 200,
    lr: float = 1e-4,
    batch_size: int = 4,
    estimate: Any = None,
    noise_energy: Any = None,
    use_references: bool = True,
    metric_protocol: str = "per_image",
    device: str | torch.device = "cpu",
    seed: int = 0,
    overwrite: bool = True,
    progress: bool = True,
) -> AdaptationReport:
    """Adapt a bundle's trained network to the operator its dataset now describes.

    Args:
        network: the bundle's network (its weights are replaced by ``checkpoint`` first).
        dataset: items with the measurement and operator keys ``prepare_batch`` expects.
        prepare_batch: the bundle's :class:`~rim_monai.engines.PrepareMeasurementBatch`.
        checkpoint: the trained weights θ₀ (``models/model.pt``).
        output_checkpoint: where the adapted weights go (``models/model_adapted.pt``); must differ from
            ``checkpoint``.
        report_dir: folder of ``adapt_report.json`` and ``adapt_data_term.png``.
        num_samples: measurement-only samples used (the first ``num_samples`` items).
        mu, steps, lr, batch_size, estimate, noise_energy, metric_protocol, seed, progress: see
            :func:`rim_monai.adaptation.adapt` (``noise_energy`` stops the run at the noise level).
        use_references: report PSNR/SSIM before and after against the items' references when they have one (never
            used by the optimisation).
        device: where to run.
        overwrite: replace an existing ``output_checkpoint``.

    Returns:
        The :class:`~rim_monai.adaptation.AdaptationReport` (also written to ``report_dir``).

    Raises:
        ValueError: ``output_checkpoint`` equal to ``checkpoint``, ``num_samples < 1`` or an empty dataset.
    """
    checkpoint, output_checkpoint = Path(checkpoint), Path(output_checkpoint)
    if output_checkpoint.resolve() == checkpoint.resolve():
        raise ValueError(f"output_checkpoint: must differ from the trained weights {checkpoint}; they are never overwritten.")
    if num_samples < 1:
        raise ValueError(f"num_samples: expected at least 1, got {num_samples}.")
    if len(dataset) == 0:
        raise ValueError("dataset: has no items to adapt on.")
    network = network.to(device)
    network.load_state_dict(network_weights(checkpoint, map_location=device))

    measurements, operators, references = [], [], []
    for index in range(min(num_samples, len(dataset))):
        y, target, (operator,), _ = prepare_batch(list_data_collate([dataset[index]]), device)
        measurements.append(y[0])
        operators.append(operator)
        references.append(None if target is None else target[0])
    shared = all(op is operators[0] for op in operators)
    settings = dict(mu=mu, steps=steps, lr=lr, batch_size=batch_size, estimate=estimate, noise_energy=noise_energy,
                    metric_protocol=metric_protocol, progress=progress, seed=seed)
    if use_references and all(r is not None for r in references):
        settings["references"] = torch.stack(references) if shared else references
    adapted, report = adapt(network, operators[0] if shared else operators,
                            torch.stack(measurements) if shared else measurements, **settings)
    with atomic_write(output_checkpoint, overwrite=overwrite) as tmp:
        torch.save(adapted.state_dict(), tmp)
    report_dir = Path(report_dir)
    report.to_json(report_dir / "adapt_report.json")
    report.plot(report_dir / "adapt_data_term.png")
    print(
        f"adapted on {report.num_samples} measurement-only samples in {report.wall_time_s:.1f} s: data term "
        f"{report.data_term_before:.4g} -> {report.data_term_after:.4g}"
        + (f", PSNR {report.psnr_before:.2f} -> {report.psnr_after:.2f} dB" if report.psnr_after is not None else "")
        + f"\nweights: {output_checkpoint}\nreport: {report_dir / 'adapt_report.json'}"
    )
    return report

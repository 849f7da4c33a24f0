r"""How noisy is a measured reference? The PSNR a noise-free reconstruction would score against it.

A reference made from measured, fully sampled k-space (the root-sum-of-squares of its coil images) carries the
scan's own noise. A reconstruction that removes noise is then scored against noise: even the noise-free image scores
only :math:`\mathrm{PSNR}_{\text{noise-free}} \approx 10 \log_{10}(R^2 / \mathrm{MSE}_{\text{noise}})` against the
reference, with :math:`R` the reference's maximum (the data range of the test evaluation) and
:math:`\mathrm{MSE}_{\text{noise}}` the noise the root-sum-of-squares carries per pixel (from :math:`\sigma^2`, the
noise variance per k-space sample, which is the noise variance per pixel of each coil image with the orthonormal
FFT). Zero-filling keeps the noise of the sampled lines, which the reference shares, so on a noisy reference it can
score above a reconstruction that denoises.

:math:`\sigma^2` is estimated per coil by :func:`~rim_monai.classical.estimate_kspace_sigma` (``method="background"``,
the default): the median of :math:`|\cdot|^2` in the image background along the readout, which the anatomy leaves
empty, pooled over the cleanest blocks. ``method="corners"`` takes the mean power of the four k-space corners
(``corner`` of each side) instead, which is an upper bound on the noise wherever signal reaches the corners: on the
IRT abdomen it finds 1.7–2.2 times the background variance, on the twix phantom 5.5 times.

Command line (a ``.mat`` or ``.npy`` file as :func:`~rim_monai.experiments.mri_test_evaluation.measured_kspace` reads
it)::

    python -m rim_monai.experiments.reference_noise \
        ../shared/data/mri_kspace/irt_abd_single_coil/irt_zhao_abd_vl_real_kspace_11frames.mat --key kdata2
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from rim_monai.classical import estimate_kspace_sigma
from rim_monai.operators import ifft2c, rss

__all__ = ["NOISE_METHODS", "kspace_noise_variance", "noise_free_psnr", "main"]

NOISE_METHODS = ("background", "corners")
"""How :func:`kspace_noise_variance` estimates the noise: the readout background (robust) or the k-space corners."""


def kspace_noise_variance(kspace: torch.Tensor, corner: float = 0.1, method: str = "background") -> torch.Tensor:
    r"""The noise variance :math:`\sigma^2` per sample of fully sampled, centred k-space ``(..., C, H, W)``, shape
    ``(...)``: the mean over the coils of :func:`~rim_monai.classical.estimate_kspace_sigma`'s :math:`\sigma^2`
    (``method="background"``), or the mean of :math:`|k|^2` over the four corner boxes of ``corner`` x ``H`` by
    ``corner`` x ``W`` samples and all coils (``method="corners"``, an upper bound where signal reaches the corners).

    Raises:
        ValueError: for a tensor that is not complex ``(..., C, H, W)``, an unknown ``method`` or a ``corner``
            outside (0, 0.5).

    Example:
        >>> noise = torch.randn(2, 4, 64, 64, dtype=torch.complex64) * 0.1
        >>> [round(float(v), 2) for v in kspace_noise_variance(noise, method="corners")]
        [0.01, 0.01]
    """
    if not isinstance(kspace, torch.Tensor) or not kspace.is_complex() or kspace.ndim < 3:
        raise ValueError(f"kspace: expected a complex tensor (..., C, H, W), got "
                         f"{tuple(kspace.shape) if isinstance(kspace, torch.Tensor) else type(kspace).__name__}.")
    if method not in NOISE_METHODS:
        raise ValueError(f"method: expected one of {NOISE_METHODS}, got {method!r}.")
    if not 0 < corner < 0.5:
        raise ValueError(f"corner: expected a fraction in (0, 0.5), got {corner}.")
    if method == "background":
        sigma = estimate_kspace_sigma(kspace, torch.ones(kspace.shape[-2:], dtype=torch.bool, device=kspace.device))
        return sigma.square().mean(dim=-1).to(kspace.real.dtype)
    height, width = kspace.shape[-2:]
    rows, cols = max(1, int(height * corner)), max(1, int(width * corner))
    boxes = [kspace[..., :rows, :cols], kspace[..., :rows, -cols:], kspace[..., -rows:, :cols],
             kspace[..., -rows:, -cols:]]
    power = torch.stack([box.abs().square().mean(dim=(-3, -2, -1)) for box in boxes])
    return power.mean(dim=0)


def noise_free_psnr(kspace: torch.Tensor, corner: float = 0.1, seed: int = 0,
                    method: str = "background") -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(psnr, snr)`` per slice of fully sampled k-space ``(..., C, H, W)``: the PSNR (dB) of a noise-free image
    against the root-sum-of-squares reference, and the reference's SNR (dB), its energy over the noise energy
    :math:`\sigma^2 H W`.

    The root-sum-of-squares is not linear in the noise (the magnitude keeps the noise along the signal, half its
    variance, and in the background the chi-distributed noise of all coils), so the PSNR is measured rather than
    taken from :math:`R^2 / \sigma^2`: noise of the estimated variance is added to the k-space once more (seeded) and
    the new reference is scored against the measured one, which stands in for the noise-free image. The stand-in is
    close where the anatomy is well above the noise; in a large noise-only background the estimate is low (about 1
    dB for a small object in an empty field of view). ``corner`` and ``method``: the noise estimate of
    :func:`kspace_noise_variance`.
    """
    variance = kspace_noise_variance(kspace, corner, method)
    generator = torch.Generator(device=kspace.device).manual_seed(int(seed))
    shape, real = kspace.shape, kspace.real.dtype
    noise = torch.complex(torch.randn(shape, generator=generator, dtype=real, device=kspace.device),
                          torch.randn(shape, generator=generator, dtype=real, device=kspace.device))
    noise = noise * (variance / 2).sqrt().to(real)[..., None, None, None]
    reference = rss(ifft2c(kspace), dim=-3).double()
    again = rss(ifft2c(kspace + noise), dim=-3).double()
    peak = reference.flatten(-2).amax(dim=-1)
    error = (again - reference).square().flatten(-2).mean(dim=-1)
    energy = kspace.abs().double().square().sum(dim=(-3, -2, -1))
    pixels = shape[-2] * shape[-1]
    return 10 * torch.log10(peak.square() / error), 10 * torch.log10(energy / (variance.double() * pixels))


def main(argv: list[str] | None = None) -> None:
    from rim_monai.experiments.mri_test_evaluation import measured_kspace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kspace", help="fully sampled k-space, .npy (coils, lines, columns) or .mat (H, W, frames)")
    parser.add_argument("--key", default=None, help="the array's name in a .mat file")
    parser.add_argument("--method", choices=NOISE_METHODS, default="background",
                        help="noise estimate: the readout background (robust, default) or the k-space corners (an "
                             "upper bound)")
    parser.add_argument("--corner", type=float, default=0.1,
                        help="with --method corners: the corner boxes' fraction of each side")
    args = parser.parse_args(argv)
    kspace = torch.as_tensor(measured_kspace(Path(args.kspace), args.key))
    psnr, snr = noise_free_psnr(kspace, args.corner, method=args.method)
    source = ("the readout background (estimate_kspace_sigma)" if args.method == "background"
              else f"the k-space corners ({args.corner:g} of each side)")
    print(f"{args.kspace}: {tuple(kspace.shape)} (slices, coils, H, W); noise from {source}")
    print("| slice | reference SNR (dB) | PSNR of a noise-free image against the reference (dB) |")
    print("| --- | --- | --- |")
    for index, (p, s) in enumerate(zip(psnr.tolist(), snr.tolist())):
        print(f"| {index} | {s:.1f} | {p:.2f} |" if math.isfinite(p) else f"| {index} | noise-free | inf |")


if __name__ == "__main__":
    main()

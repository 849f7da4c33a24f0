"""The reference-noise estimate: the background and corner noise variances, the noise-free PSNR against a noisy
reference, the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.io
import torch

from rim_monai.experiments import reference_noise
from rim_monai.operators import fft2c, rss


def _smooth_kspace(coils: int = 2, size: int = 64) -> torch.Tensor:
    """Fully sampled k-space of a smooth object that fills the field of view: its energy sits in the centre, its
    corners are empty."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = (0.3 + torch.exp(-(x**2 + y**2) / 0.2)).to(torch.complex64)
    return fft2c(torch.stack([image * (c + 1) for c in range(coils)]))


def _disc_kspace(coils: int = 2, size: int = 96) -> torch.Tensor:
    """Fully sampled k-space of a disc with a sharp edge inside an empty border: the edge puts signal into the
    k-space corners, the border holds no signal."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = ((x**2 + y**2 < 0.4) * (1 + 0.5 * torch.cos(9 * x))).to(torch.complex64)
    return fft2c(torch.stack([image * (c + 1) for c in range(coils)]))


def _add_noise(clean: torch.Tensor, sigma: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (clean + sigma * torch.complex(torch.randn(clean.shape, generator=generator),
                                          torch.randn(clean.shape, generator=generator)) / math.sqrt(2))[None]


def test_background_estimate_holds_where_signal_reaches_the_corners():
    sigma = 0.01
    noisy = _add_noise(_disc_kspace(), sigma)
    background = float(reference_noise.kspace_noise_variance(noisy))
    corners = float(reference_noise.kspace_noise_variance(noisy, method="corners"))
    assert background == pytest.approx(sigma**2, rel=0.2)
    assert corners > 1.5 * sigma**2  # the sharp edge's signal in the corners counts as noise there
    psnr_background, snr_background = reference_noise.noise_free_psnr(noisy)
    psnr_corners, snr_corners = reference_noise.noise_free_psnr(noisy, method="corners")
    assert float(snr_background) > float(snr_corners) and float(psnr_background) > float(psnr_corners)


def test_noise_variance_and_noise_free_psnr_match_the_added_noise():
    sigma = 0.02
    clean = _smooth_kspace()
    noisy = _add_noise(clean, sigma)
    variance = reference_noise.kspace_noise_variance(noisy, method="corners")
    assert variance.shape == (1,) and float(variance) == pytest.approx(sigma**2, rel=0.15)
    psnr, snr = reference_noise.noise_free_psnr(noisy, method="corners")
    # the noise-free image scored against the noisy reference: measured directly
    reference = rss(torch.fft.ifftshift(torch.fft.ifft2(torch.fft.ifftshift(noisy, dim=(-2, -1)), norm="ortho"),
                                        dim=(-2, -1)), dim=-3)[0]
    truth = rss(torch.fft.ifftshift(torch.fft.ifft2(torch.fft.ifftshift(clean, dim=(-2, -1)), norm="ortho"),
                                    dim=(-2, -1)), dim=-3)
    measured = 10 * math.log10(float(reference.max()) ** 2 / float((truth - reference).square().mean()))
    assert float(psnr) == pytest.approx(measured, abs=0.5)
    energy = float(noisy.abs().square().sum())
    assert float(snr) == pytest.approx(10 * math.log10(energy / (float(variance) * 64 * 64)), abs=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="kspace"):
        reference_noise.kspace_noise_variance(torch.ones(4, 8, 8))
    with pytest.raises(ValueError, match="corner"):
        reference_noise.kspace_noise_variance(_smooth_kspace(), corner=0.5)
    with pytest.raises(ValueError, match="method"):
        reference_noise.kspace_noise_variance(_smooth_kspace(), method="median")


def test_command_line_prints_one_row_per_frame(tmp_path, capsys):
    frames = np.stack([_add_noise(_disc_kspace(coils=1), 0.01 * (k + 1))[0, 0].numpy() for k in range(3)], axis=-1)
    scipy.io.savemat(tmp_path / "k.mat", {"kdata2": frames.astype(np.complex128)})
    for method in ("background", "corners"):
        reference_noise.main([str(tmp_path / "k.mat"), "--key", "kdata2", "--method", method])
        out = capsys.readouterr().out
        rows = [line for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
        assert len(rows) == 3 and ("readout background" in out) == (method == "background")
        snrs = [float(row.split("|")[2]) for row in rows]
        assert snrs[0] > snrs[1] > snrs[2]  # more noise, lower SNR

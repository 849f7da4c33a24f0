"""The reference-noise estimate: the corner noise variance, the noise-free PSNR against a noisy reference, the CLI."""

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


def test_noise_variance_and_noise_free_psnr_match_the_added_noise():
    generator = torch.Generator().manual_seed(0)
    clean = _smooth_kspace()
    sigma = 0.02
    noise = sigma * torch.complex(torch.randn(clean.shape, generator=generator),
                                  torch.randn(clean.shape, generator=generator)) / math.sqrt(2)
    noisy = (clean + noise)[None]
    variance = reference_noise.kspace_noise_variance(noisy)
    assert variance.shape == (1,) and float(variance) == pytest.approx(sigma**2, rel=0.15)
    psnr, snr = reference_noise.noise_free_psnr(noisy)
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


def test_command_line_prints_one_row_per_frame(tmp_path, capsys):
    frames = np.stack([_smooth_kspace(coils=1)[0].numpy() + 0.01 * (k + 1) for k in range(3)], axis=-1)
    scipy.io.savemat(tmp_path / "k.mat", {"kdata2": frames.astype(np.complex128)})
    reference_noise.main([str(tmp_path / "k.mat"), "--key", "kdata2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 3

"""nmse: definition, fastMRI agreement, complex handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rim_monai.metrics import nmse


def test_definition_and_fastmri():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 4, 8, 8, generator=g, dtype=torch.float64)
    pred = gt + 0.1 * torch.randn(gt.shape, generator=g, dtype=torch.float64)
    got = nmse(pred, gt, reduction="none")
    for v in range(3):  # fastMRI: np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2 per volume
        ref = np.linalg.norm(gt[v].numpy() - pred[v].numpy()) ** 2 / np.linalg.norm(gt[v].numpy()) ** 2
        assert abs(float(got[v]) - ref) < 1e-12
    assert abs(float(nmse(pred, gt)) - float(got.mean())) < 1e-15
    torch.testing.assert_close(nmse(0.5 * gt, gt, reduction="none"), torch.full((3,), 0.25, dtype=torch.float64))


def test_complex_uses_modulus():
    x = torch.ones(1, 4, 4, dtype=torch.complex64)
    # a pure phase error: complex NMSE sees it, magnitude NMSE does not
    assert abs(float(nmse(1j * x, x)) - 2.0) < 1e-6
    assert float(nmse((1j * x).abs(), x.abs())) == 0.0


@pytest.mark.parametrize(
    "pred, target, name",
    [(torch.zeros(2, 4, 4), torch.zeros(2, 4, 5), "pred"), (torch.zeros(2, 4, 4), torch.zeros(2, 4, 4), "target")],
)
def test_bad_input(pred, target, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        nmse(pred, target)

"""The output data-consistency sweep: every weight scored per item, summarised per acquisition with its oracle."""

from __future__ import annotations

import pytest
import torch

from rim_monai.data.mri_corpus import VALIDATION_ACQUISITIONS
from rim_monai.experiments.dc_weight_sweep import acquisition_names, summarise_sweep, sweep_items
from rim_monai.operators import MaskedFourier, birdcage_maps


def _items(count: int = 3, n: int = 32):
    """Noise-free 4-coil k-space of smooth images, 1D 3x masks with a centre: a step towards the data helps."""
    torch.manual_seed(0)
    maps = birdcage_maps(4, (n, n))
    mask = torch.zeros(1, n, n)
    mask[..., ::3] = 1
    mask[..., n // 2 - 3 : n // 2 + 3] = 1
    items = []
    for _ in range(count):
        image = torch.nn.functional.avg_pool2d(torch.rand(1, 1, n, n), 5, 1, 2)[0].to(torch.complex64)
        kspace = MaskedFourier(mask[0], maps)(image[None])[0]
        items.append({"kspace": kspace, "mask": mask, "sens": maps, "target": image})
    return items


def _prepare(batch, device):
    A = MaskedFourier(batch["mask"], batch["sens"])
    return batch["kspace"], batch["target"], (A,), {}


class _ZeroFilled(torch.nn.Module):
    def forward(self, y, A):
        return A.adjoint(y)


def test_sweep_scores_every_weight_and_small_weights_fit_noise_free_data():
    """Zero-filled (the adjoint) as the network: every weight improves on it, the smallest most (the data are exact);
    bad weights name ``lams``."""
    adjoint = _ZeroFilled()
    rows = sweep_items(adjoint, _items(), _prepare, [1.0, 0.01], iterations=16)
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)
    assert all(r[2] > r[1] > r[0] for r in rows)
    with pytest.raises(ValueError, match="^lams"):
        sweep_items(adjoint, _items(1), _prepare, [0.0])


def test_summary_per_group_with_oracle_and_best_weight_counts():
    rows = [[30.0, 30.5, 29.0], [20.0, 19.0, 21.0], [25.0, 24.0, 24.5]]
    summary = summarise_sweep(rows, [1.0, 0.01], ["a", "b", "a"])
    by = {s["group"]: s for s in summary}
    assert [s["group"] for s in summary] == ["a", "b", "all"]
    assert by["a"]["items"] == 2 and by["a"]["psnr"] == pytest.approx(27.5)
    assert by["a"]["gain"]["1"] == pytest.approx(-0.25) and by["a"]["worst"]["0.01"] == pytest.approx(-1.0)
    assert by["a"]["oracle"] == pytest.approx(0.25)  # +0.5 on the first, no step on the third
    assert by["a"]["best_weight_counts"] == {"none": 1, "1": 1}
    assert by["all"]["best_weight_counts"] == {"none": 1, "1": 1, "0.01": 1}


def test_acquisition_names_follow_the_validation_cycle():
    names = acquisition_names(2 * len(VALIDATION_ACQUISITIONS) + 1)
    assert names[0] == names[len(VALIDATION_ACQUISITIONS)] == names[-1]
    assert len(set(names)) == len(VALIDATION_ACQUISITIONS)
    assert names[0].startswith(f"{VALIDATION_ACQUISITIONS[0].coils}c ")

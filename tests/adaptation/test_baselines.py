import copy

import pytest
import torch

from rim_monai.adaptation import retrain_supervised, swap_operator
from tests.adaptation.toys import GaussBlur, TinyNet, phantoms


def test_swap_operator_is_the_plain_call_with_the_new_operator():
    net = TinyNet(seed=1)
    net.train()
    a1 = GaussBlur(sigma=1.5)
    y = torch.randn(5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    out = swap_operator(net, a1, y, batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(out, net(y, a1))
    assert net.training  # the mode is restored
    per_sample = swap_operator(net, [GaussBlur(sigma=1.5) for _ in range(5)], list(y))
    torch.testing.assert_close(per_sample, out)
    with pytest.raises(ValueError, match="batch_size"):
        swap_operator(net, a1, y, batch_size=0)
    with pytest.raises(ValueError, match="measurements"):
        swap_operator(net, a1, torch.zeros(2, 1, 8, 8))


def test_retrain_supervised_fits_the_pairs_and_leaves_the_input_alone():
    a1 = GaussBlur(sigma=1.5)
    x = phantoms(16, seed=5)
    y = a1(x)
    net = TinyNet(seed=2)
    before = copy.deepcopy(net.state_dict())
    trained, report = retrain_supervised(net, a1, y, x, steps=60, lr=3e-3, batch_size=8, progress=False)
    assert report.method == "supervised" and report.steps_run == 60 and len(report.batch_loss) == 60
    assert report.psnr_after > report.psnr_before + 2.0
    assert report.batch_loss[-1] < report.batch_loss[0]
    assert not trained.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("protocol", ["volume", "per_image"])
def test_retrain_scores_without_the_empty_reference_samples(protocol):
    """A training patch of zeros (background) has no PSNR: it is left out of the report's mean, not an error."""
    a1 = GaussBlur(sigma=1.5)
    x = phantoms(4, seed=5)
    x[1] = 0.0
    _, report = retrain_supervised(TinyNet(seed=2), a1, a1(x), x, steps=2, lr=1e-3, batch_size=2,
                                   metric_protocol=protocol, progress=False)
    assert report.psnr_before is not None and report.psnr_after is not None
    assert "1 reference sample(s) without a data range left out" in report.metric_protocol
    _, empty = retrain_supervised(TinyNet(seed=2), a1, a1(x[1:2]), x[1:2], steps=1, progress=False,
                                  metric_protocol=protocol)
    assert empty.psnr_before is None and empty.ssim_after is None


def test_retrain_from_scratch_reinitialises():
    a1 = GaussBlur(sigma=1.5)
    x = phantoms(4, seed=6)
    net = TinyNet(seed=3)
    fresh, _ = retrain_supervised(net, a1, a1(x), x, steps=1, lr=1e-12, reinitialize=True, progress=False, seed=9)
    again, _ = retrain_supervised(net, a1, a1(x), x, steps=1, lr=1e-12, reinitialize=True, progress=False, seed=9)
    first = next(fresh.parameters())
    assert not torch.allclose(first, next(net.parameters()))  # new initial weights
    torch.testing.assert_close(first, next(again.parameters()))  # seeded


@pytest.mark.parametrize(
    "changes,name",
    [({"targets": torch.zeros(3, 1, 16, 16)}, "targets"), ({"steps": 0}, "steps"), ({"lr": -1.0}, "lr"),
     ({"metric_protocol": "db"}, "metric_protocol"), ({"targets": torch.zeros(4, 1, 8, 8)}, "targets")],
)
def test_retrain_bad_arguments(changes, name):
    args = dict(net=TinyNet(), operator=GaussBlur(), measurements=torch.zeros(4, 1, 16, 16),
                targets=torch.zeros(4, 1, 16, 16), steps=1, progress=False) | changes
    with pytest.raises(ValueError, match=name):
        retrain_supervised(**args)


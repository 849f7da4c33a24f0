"""The multi-step loss (Eq. 13): per-step sums, weights, complex estimates, SSIM, and use in a MONAI trainer."""

from __future__ import annotations

import pytest
import torch
from monai.losses import SSIMLoss

from rim_monai.engines import LogMSELoss, MultiStepLoss


def _images(seed=0, complex_=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 1, 16, 16, generator=g)
    if complex_:
        x = torch.complex(x, torch.rand(2, 1, 16, 16, generator=g))
    return x


@pytest.mark.parametrize("base, fn", [("mse", torch.nn.functional.mse_loss), ("l1", torch.nn.functional.l1_loss)])
def test_sum_over_steps(base, fn):
    target = _images(0)
    estimates = [_images(s) for s in (1, 2, 3)]
    expected = sum(fn(e, target) for e in estimates)
    torch.testing.assert_close(MultiStepLoss(base)(estimates, target), expected)
    weighted = MultiStepLoss(base, weights=[0.0, 0.5, 2.0])(estimates, target)
    torch.testing.assert_close(weighted, 0.5 * fn(estimates[1], target) + 2.0 * fn(estimates[2], target))


def test_single_tensor_is_one_step():
    target, estimate = _images(0), _images(1)
    torch.testing.assert_close(MultiStepLoss("mse")(estimate, target), torch.nn.functional.mse_loss(estimate, target))


def test_complex_estimates_as_real_and_imaginary_channels():
    target, estimate = _images(0, True), _images(1, True)
    expected = ((estimate.real - target.real) ** 2 + (estimate.imag - target.imag) ** 2).mean() / 2
    torch.testing.assert_close(MultiStepLoss("mse")([estimate], target), expected)


def test_ssim_base_on_magnitudes():
    target, estimate = _images(0, True), _images(1, True)
    expected = SSIMLoss(spatial_dims=2, data_range=2.0)(estimate.abs(), target.abs())
    torch.testing.assert_close(MultiStepLoss("ssim", data_range=2.0)([estimate, estimate], target), 2 * expected)
    assert float(MultiStepLoss("ssim")(target.abs(), target.abs())) == pytest.approx(0.0, abs=1e-5)


def test_log_mse_is_minus_the_mean_psnr_of_the_items():
    target = _images(0)
    estimate = target.clone()
    estimate[0] += 0.1  # item 0: MSE 1e-2 (20 dB for a unit peak)
    estimate[1] += 0.01  # item 1: MSE 1e-4 (40 dB)
    torch.testing.assert_close(LogMSELoss()(estimate, target), torch.tensor(-30.0))
    torch.testing.assert_close(LogMSELoss(reduction="sum")(estimate, target), torch.tensor(-60.0))
    # as a base of the multi-step loss: per step, complex estimates as real/imaginary channels
    ctarget = _images(0, True)
    cestimate = ctarget + 0.1 * (1 + 1j)  # squared error 0.01 in each of the two channels
    torch.testing.assert_close(MultiStepLoss("log_mse")([cestimate, cestimate], ctarget), torch.tensor(-40.0))
    assert torch.isfinite(LogMSELoss()(target, target))  # the floor keeps a perfect estimate finite


def test_log_mse_weighs_items_by_their_error():
    """Against the batch MSE, an item with a hundred times less error gets a hundred times the gradient weight."""
    target = torch.zeros(2, 1, 4, 4)
    estimate = torch.cat([torch.full((1, 1, 4, 4), 0.1), torch.full((1, 1, 4, 4), 0.01)]).requires_grad_()
    LogMSELoss()(estimate, target).backward()
    per_pixel = estimate.grad.flatten(1)[:, 0]
    mse_grad = 2 * estimate.detach().flatten(1)[:, 0]  # d(squared error)/dx
    ratio = (per_pixel / mse_grad).tolist()
    assert ratio[1] == pytest.approx(100 * ratio[0], rel=1e-4)


def test_custom_base_module():
    target, estimate = _images(0), _images(1)
    loss = MultiStepLoss(torch.nn.SmoothL1Loss())
    torch.testing.assert_close(loss([estimate], target), torch.nn.SmoothL1Loss()(estimate, target))


def test_bad_input():
    target = _images(0)
    with pytest.raises(ValueError, match="^base"):
        MultiStepLoss("huber")
    with pytest.raises(ValueError, match="^weights"):
        MultiStepLoss(weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="^weights"):
        MultiStepLoss(weights=[1.0, 1.0])([target], target)
    with pytest.raises(ValueError, match="^input"):
        MultiStepLoss()([target[:, :, :8]], target)
    with pytest.raises(ValueError, match="^input"):
        MultiStepLoss()([], target)
    with pytest.raises(ValueError, match="^eps"):
        LogMSELoss(eps=0.0)
    with pytest.raises(ValueError, match="^reduction"):
        LogMSELoss(reduction="none")
    with pytest.raises(ValueError, match="^input"):
        LogMSELoss()(target[:, :, :8], target)


def test_as_the_loss_of_a_monai_supervised_trainer():
    from monai.engines import SupervisedTrainer

    from rim_monai.networks import RIM
    from rim_monai.operators import Identity

    A = Identity((16, 16))
    x = _images(0)
    y = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)  # the weights: the test must not depend on the tests run before it
    net = RIM(features=(8, 8), iterations=3)

    def prepare_batch(batchdata, device=None, non_blocking=False, **kwargs):
        # (inputs, targets, args, kwargs): the inferer calls net(y, A, return_all=True)
        return batchdata["y"], batchdata["x"], (A,), {"return_all": True}

    loss = MultiStepLoss("mse")
    with torch.no_grad():
        before = float(loss(net(y, A, return_all=True), x))
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=15,
        train_data_loader=[{"y": y, "x": x}],
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-2),
        loss_function=loss,
        prepare_batch=prepare_batch,
        decollate=False,
    )
    trainer.run()
    with torch.no_grad():
        after = float(loss(net(y, A, return_all=True), x))
    assert after < before

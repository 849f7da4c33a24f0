"""GradientClipping on a MONAI SupervisedTrainer: the step uses clipped gradients."""

import pytest
import torch
from monai.engines import SupervisedTrainer

from rim_monai.training import GradientClipping


def _trainer(clip):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    data = [(torch.full((2, 3), 100.0), torch.zeros(2, 1))]
    trainer = SupervisedTrainer(device=torch.device("cpu"), max_epochs=1, train_data_loader=data, network=net,
                                optimizer=torch.optim.SGD(net.parameters(), lr=1.0), loss_function=torch.nn.MSELoss(),
                                decollate=False)
    if clip:
        GradientClipping(net, 0.5).attach(trainer)
    start = [p.detach().clone() for p in net.parameters()]
    trainer.run()
    return torch.sqrt(sum(((p.detach() - s) ** 2).sum() for p, s in zip(net.parameters(), start)))


def test_the_step_is_at_most_lr_times_max_norm():
    assert float(_trainer(clip=False)) > 10.0
    assert float(_trainer(clip=True)) == pytest.approx(0.5, rel=1e-5)


def test_bad_max_norm():
    with pytest.raises(ValueError, match="max_norm"):
        GradientClipping(torch.nn.Linear(1, 1), 0.0)

import pytest
import torch
from monai.data import MetaTensor

from rim_monai.engines import PrepareMeasurementBatch
from rim_monai.operators import Identity


def test_fixed_operator_call_layout():
    op = Identity((4, 4))
    prepare = PrepareMeasurementBatch("sinogram", "target", op, network_kwargs={"return_all": True})
    batch = {"sinogram": MetaTensor(torch.ones(2, 1, 4, 4)), "target": torch.zeros(2, 1, 4, 4)}
    y, target, args, kwargs = prepare(batch, device="cpu")
    assert type(y) is torch.Tensor and y.shape == (2, 1, 4, 4)
    assert target.shape == (2, 1, 4, 4)
    assert args == (op,) and kwargs == {"return_all": True}


def test_callable_operator_is_built_per_batch():
    prepare = PrepareMeasurementBatch("y", None, lambda batch, device: Identity(batch["y"].shape[-2:]))
    y, target, (op,), _ = prepare({"y": torch.ones(1, 1, 3, 5)})
    assert target is None and op.domain_shape == (3, 5)


def test_missing_key_is_named():
    prepare = PrepareMeasurementBatch("kspace", "target", Identity((2, 2)))
    with pytest.raises(ValueError, match="missing key 'kspace'"):
        prepare({"image": torch.ones(1, 1, 2, 2)})
    with pytest.raises(ValueError, match="operator"):
        PrepareMeasurementBatch("kspace")


def test_ray_transform_is_built_from_the_batch_and_cached():
    from rim_monai.engines import RayTransformFromBatch

    build = RayTransformFromBatch()
    batch = {"geometry": ["fan", "fan"], "views": torch.tensor([6, 6]), "size": torch.tensor([16, 16])}
    op = build(batch)
    assert op.geometry == "fan" and op.domain_shape == (16, 16) and op.range_shape[0] == 6
    assert build(batch) is op  # one operator per (geometry, size, views)
    with pytest.raises(ValueError, match="share 'views'"):
        build({**batch, "views": torch.tensor([6, 8])})
    with pytest.raises(ValueError, match="missing key 'geometry'"):
        build({"views": torch.tensor([6]), "size": torch.tensor([16])})

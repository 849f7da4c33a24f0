"""Finding a bundle, reading its configs and loading its trained network (the repository's bundles)."""

from pathlib import Path

import pytest
import torch

from rim_monai.engines import bundle_config, find_bundle_root, load_bundle_network

REPO = Path(__file__).resolve().parents[2]


def _make_bundle(root, name):
    (root / name / "configs").mkdir(parents=True)
    (root / name / "configs" / "metadata.json").write_text("{}")
    return root / name


def test_found_from_repository_root_and_from_the_bundle(tmp_path):
    bundle = _make_bundle(tmp_path / "bundles", "demo_bundle")
    assert find_bundle_root("demo_bundle", start=tmp_path) == str(bundle)
    assert find_bundle_root("demo_bundle", start=bundle) == str(bundle)


def test_missing_bundle_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundle 'nope'.*--bundle_root"):
        find_bundle_root("nope", start=tmp_path)


def test_bundle_config_by_name_or_folder_with_overrides():
    by_name = bundle_config("ct_lpd_recon", {"num_angles": 30})
    by_folder = bundle_config(REPO / "bundles" / "ct_lpd_recon", {"num_angles": 30})
    assert by_name["num_angles"] == by_folder["num_angles"] == 30
    assert by_name.get_parsed_content("operator").range_shape[-2] == 30
    with pytest.raises(ValueError, match="config"):
        bundle_config("ct_lpd_recon", config="nope.json")


@pytest.mark.parametrize("bundle", ["ct_lpd_recon", "mri_rim_recon"])
def test_load_bundle_network_has_the_shipped_weights_in_eval_mode(bundle, tmp_path):
    net = load_bundle_network(bundle)
    parser = bundle_config(bundle)
    shipped = torch.load(parser.get_parsed_content("ckpt_path"), map_location="cpu")
    assert not net.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, shipped[key])
    changed = {k: v + 1 if v.is_floating_point() else v for k, v in shipped.items()}
    torch.save(changed, tmp_path / "other.pt")
    other = load_bundle_network(parser, checkpoint=tmp_path / "other.pt")
    key = next(k for k, v in shipped.items() if v.is_floating_point())
    assert torch.equal(other.state_dict()[key], changed[key])

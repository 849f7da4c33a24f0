import pytest

from rim_monai.engines import find_bundle_root


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

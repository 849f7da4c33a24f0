"""Required overrides: a config entry that must come from the command line fails with the flag to add."""

from __future__ import annotations

import pytest
from monai.bundle import ConfigParser

from rim_monai.engines import MissingOverrideError, required_override


def test_message_names_the_key_and_the_flag():
    with pytest.raises(MissingOverrideError, match=r"dataset_dir: .* `--dataset_dir /data/ct` to the command line"):
        required_override("dataset_dir", "/data/ct")


def test_only_fails_when_the_entry_is_used_without_override():
    config = {"dataset_dir": "$rim_monai.engines.required_override('dataset_dir', '/data')",
              "files": "$[@dataset_dir + '/a.dcm']"}
    parser = ConfigParser(config, globals={"rim_monai": "rim_monai"})
    with pytest.raises(Exception) as info:
        parser.get_parsed_content("files")
    assert "--dataset_dir /data" in "".join(str(e) for e in _chain(info.value))
    parser = ConfigParser(config, globals={"rim_monai": "rim_monai"})
    parser["dataset_dir"] = "/mine"
    assert parser.get_parsed_content("files") == ["/mine/a.dcm"]


def _chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__

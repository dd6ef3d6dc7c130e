"""Every environment variable ``_config.py`` reads is documented in ``docs/configuration.md`` (issue 12 item 8)."""

import re
from pathlib import Path

import im_core._config as config

REPO = Path(__file__).resolve().parents[2]


def test_every_variable_read_in_config_is_documented():
    source = Path(config.__file__).read_text(encoding="utf-8")
    read = set(re.findall(r"\"((?:IM|ROBOFLOW)_[A-Z_]+)\"", source))
    assert {"IM_HOME", "IM_OFFLINE", "ROBOFLOW_API_KEY"} <= read  # the scan finds them
    documented = set(
        re.findall(r"^\| `((?:IM|ROBOFLOW)_[A-Z_]+)` \|", (REPO / "docs" / "configuration.md").read_text(), re.M)
    )
    assert sorted(read - documented) == []
    assert sorted(documented - read) == []  # and nothing documented that is no longer read

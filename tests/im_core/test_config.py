from pathlib import Path

import pytest

from im_core._config import Settings, reload_settings, settings
from im_core.errors import ConfigurationError


def test_defaults_and_parsing():
    s = Settings.from_environ(
        {
            "IM_HOME": "/x/im",
            "IM_OFFLINE": "yes",
            "IM_DISABLED_BACKENDS": "TRT, torch ,",
            "IM_DOWNLOAD_RETRIES": "7",
            "IM_ONNX_PROVIDERS": "CUDAExecutionProvider,CPUExecutionProvider",
        }
    )
    assert s.home == Path("/x/im") and s.offline is True
    assert s.disabled_backends == {"trt", "torch"}
    assert s.download_retries == 7
    assert s.onnx_execution_providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    d = Settings.from_environ({})
    assert d.home == Path("~/.cache/im").expanduser() and d.offline is False and d.default_provider == "roboflow"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"IM_OFFLINE": "maybe"}, "IM_OFFLINE"),
        ({"IM_DOWNLOAD_RETRIES": "many"}, "IM_DOWNLOAD_RETRIES"),
        ({"IM_DOWNLOAD_TIMEOUT": "0"}, "minimum"),
        ({"IM_LOG_LEVEL": "LOUD"}, "IM_LOG_LEVEL"),
    ],
)
def test_bad_values_raise_configuration_error(env, fragment):
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_environ(env)


def test_settings_are_read_once_and_reloaded_on_request(monkeypatch, tmp_path):
    first = settings()
    monkeypatch.setenv("IM_HOME", str(tmp_path / "other"))
    assert settings() is first
    assert reload_settings().home == tmp_path / "other"


def test_api_key_not_in_repr():
    s = Settings.from_environ({"ROBOFLOW_API_KEY": "sekrit-key-123"})
    assert s.roboflow_api_key == "sekrit-key-123" and "sekrit" not in repr(s)

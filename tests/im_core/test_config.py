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


@pytest.mark.parametrize("name", ["IM_LOCK_STALE", "IM_DOWNLOAD_TIMEOUT", "IM_DOWNLOAD_RETRIES"])
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN", "Infinity", "1e999"])
def test_non_finite_numbers_are_refused_naming_the_variable(name: str, raw: str) -> None:
    """``IM_LOCK_STALE=nan`` made waiters wait forever and ``IM_DOWNLOAD_TIMEOUT=inf`` raised a raw OverflowError."""
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_environ({name: raw})


def test_download_limits_and_metadata_cap_settings() -> None:
    d = Settings.from_environ({})
    assert d.download_min_speed == 1024 and d.download_speed_window_s == 60.0
    assert d.metadata_max_bytes == 16 << 20
    s = Settings.from_environ(
        {"IM_DOWNLOAD_MIN_SPEED": "0", "IM_DOWNLOAD_SPEED_WINDOW": "0.5", "IM_METADATA_MAX_BYTES": "4096"}
    )
    assert s.download_min_speed == 0 and s.download_speed_window_s == 0.5 and s.metadata_max_bytes == 4096
    for env in ({"IM_DOWNLOAD_MIN_SPEED": "-1"}, {"IM_DOWNLOAD_SPEED_WINDOW": "nan"}, {"IM_METADATA_MAX_BYTES": "1"}):
        with pytest.raises(ConfigurationError, match=next(iter(env))):
            Settings.from_environ(env)


def test_the_registry_root_chooses_the_default_provider() -> None:
    from im_core._config import Settings, registry_provider

    assert registry_provider("/srv/registry") == registry_provider("file:///srv/registry") == "local"
    assert registry_provider("https://models.example.com/r") == registry_provider("HTTP://host/r") == "http"
    assert registry_provider(None) is None and registry_provider(" ") is None
    assert Settings.from_environ({"IM_REGISTRY": "/srv/registry"}).default_provider == "local"
    assert Settings.from_environ({"IM_REGISTRY": "https://m.example.com"}).default_provider == "http"
    assert Settings.from_environ({}).default_provider == "roboflow"
    named = {"IM_REGISTRY": "/srv/registry", "IM_DEFAULT_PROVIDER": "mine"}
    assert Settings.from_environ(named).default_provider == "mine"  # a provider named wins

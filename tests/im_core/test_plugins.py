from types import SimpleNamespace

import pytest

from im_core import BackendManifest, ModelEntry, ModelsManifest, ProviderManifest, register, registry
from im_core._plugins import PluginRegistry, load_target
from im_core.errors import MissingDependencyError, ModelImplementationNotFoundError, PluginError


def test_all_workspace_members_are_discovered_through_entry_points():
    reg = registry(refresh=True)
    assert {"onnx", "torch", "trt"} <= set(reg.backends)
    assert {"roboflow", "local", "http"} <= set(reg.providers)
    assert reg.find_model("yolov8", "object-detection", "onnx").target.startswith("im_models.")
    assert {"ocr", "face-gaze"} <= set(reg.pipelines)
    assert "im_models.yolo._sniff:sniff_ultralytics" in reg.sniffers
    assert reg.broken == []


def _ep(name, group, value, dist="broken-dist"):
    def load():
        return load_target(value)

    return SimpleNamespace(name=name, group=group, load=load, dist=SimpleNamespace(name=dist))


def test_a_broken_plugin_warns_and_errors_only_when_used():
    reg = PluginRegistry()
    with pytest.warns(RuntimeWarning, match="broken-dist"):
        reg.scan([_ep("ghost", "im.backends", "no_such_module_xyz:MANIFEST")])
    assert [b.name for b in reg.broken] == ["ghost"]
    with pytest.raises(PluginError, match=r"installed \(distribution broken-dist\) but failed to load"):
        reg.backend("ghost")


def test_a_broken_plugin_does_not_break_import_in_a_fresh_interpreter(tmp_path):
    import subprocess
    import sys

    dist = tmp_path / "ghost_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ghost-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[im.backends]\nghost = ghost_missing_module:MANIFEST\n")
    code = (
        "import warnings, im_core\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    reg = im_core.registry()\n"
        "print('WARNED', any('ghost-plugin' in str(x.message) for x in w))\n"
        "try:\n    reg.backend('ghost')\n"
        "except im_core.errors.PluginError as e:\n    print('ERROR', 'ghost-plugin' in str(e))\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "WARNED True" in out.stdout and "ERROR True" in out.stdout


def test_missing_module_names_the_distribution_and_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 'im-backend-trt'.*im-vision\[trt\]"):
        load_target("im_backend_not_here:X", distribution="im-backend-trt", extra="trt")
    with pytest.raises(PluginError, match="module:attribute"):
        load_target("no-colon")


def test_register_user_plugins_and_refuse_silent_replacement():
    reg = registry()
    manifest = ProviderManifest(name="user-test", target="json:loads", distribution="user")
    register(manifest)
    assert reg.providers["user-test"] is manifest
    with pytest.raises(PluginError, match="already registered"):
        register(ProviderManifest(name="user-test", target="json:dumps", distribution="user"))
    register(ProviderManifest(name="user-test", target="json:dumps", distribution="user"), replace=True)
    assert registry(refresh=True).providers["user-test"].target == "json:dumps"  # survives a rescan


def test_api_version_mismatch_is_refused():
    with pytest.raises(PluginError, match="plugin API 99"):
        PluginRegistry().add(BackendManifest("x", "a:b", "d", api_version=99))


def test_model_lookup_errors_say_what_exists():
    reg = PluginRegistry()
    reg.add(ModelsManifest((ModelEntry(("arch",), "object-detection", "m:C", backends=("onnx",)),), "d"))
    with pytest.raises(ModelImplementationNotFoundError, match="does not support 'trt'"):
        reg.find_model("arch", "object-detection", "trt")
    with pytest.raises(ModelImplementationNotFoundError, match="Known: arch/object-detection"):
        reg.find_model("other", "object-detection")


def test_a_family_that_names_no_backends_accepts_any_backend():
    """``ModelEntry.backends`` unset means any backend that can load the file (a family talks to a Session only)."""
    reg = PluginRegistry()
    reg.add(ModelsManifest((ModelEntry(("arch",), "classification", "m:Any"),), "d"))
    assert ModelEntry(("arch",), "classification", "m:Any").backends is None
    for backend in ("onnx", "trt", "some-backend-registered-later"):
        assert reg.find_model("arch", "classification", backend).target == "m:Any"
    reg.add(ModelsManifest((ModelEntry(("arch",), "classification", "m:OnnxOnly", backends=("onnx",)),), "d"))
    assert reg.find_model("arch", "classification", "onnx").target == "m:OnnxOnly"
    assert reg.find_model("arch", "classification", "trt").target == "m:Any"


def test_backend_manifests_declare_the_facts_core_negotiates_with():
    """Priorities, suffixes, weights names and aliases come from the manifests; the built-ins keep TensorRT > ONNX >
    torch on CUDA and ONNX > torch on CPU."""
    reg = registry()
    rank = {kind: sorted(reg.backends, key=lambda b: -reg.backend_priority(b, kind)) for kind in ("cuda", "cpu")}
    assert [b for b in rank["cuda"] if b in ("onnx", "torch", "trt")] == ["trt", "onnx", "torch"]
    assert reg.backend_priority("onnx", "cpu") > reg.backend_priority("torch", "cpu") > 0
    assert reg.backend_priority("nope", "cpu") == 0
    suffixes = reg.file_suffixes()
    assert suffixes[".onnx"] == [("onnx", None)] and suffixes[".pt2"] == [("torch", "exported-program")]
    assert suffixes[".plan"] == [("trt", None)] and suffixes[".pt"] == [("torch", None)]
    assert ("engine.plan", "trt") in reg.weights_files() and reg.weights_files()[0] == ("weights.onnx", "onnx")
    assert {reg.canonical_backend(a) for a in ("TensorRT", "onnxruntime", "torchscript", "torch-script")} == {
        "trt",
        "onnx",
        "torch",
    }
    assert reg.canonical_backend("unknown") == "unknown"


@pytest.mark.parametrize(
    "bad",
    [
        {"priority": {"cpu": "high"}},
        {"file_suffixes": {"onnx": None}},
        {"file_suffixes": {".x": 3}},
        {"weights_files": "weights.x"},
    ],
)
def test_a_malformed_backend_manifest_is_refused(bad):
    with pytest.raises(PluginError, match="Backend 'x'"):
        BackendManifest("x", "a:b", "d", **bad)


def test_requirement_blocks_are_read_by_the_backends_own_model():
    from im_core import ModelPackage
    from im_core.errors import MalformedMetadataError

    reg = registry()
    onnx = ModelPackage(package_id="p", backend="onnx", requirements={"opset": "17", "future_key": 1})
    read = reg.requirements(onnx)
    assert type(read).__name__ == "OnnxRequirements" and read.opset == 17  # unknown keys are ignored
    with pytest.raises(MalformedMetadataError, match=r"'p' declares onnx requirements.*opset"):
        reg.requirements(onnx.model_copy(update={"requirements": {"opset": "seventeen"}}))
    plain = ModelPackage(package_id="q", backend="not-installed", requirements={"x": 1})
    assert reg.requirements(plain) == {"x": 1}  # no reader: the block as written


def test_legacy_requirement_fields_and_aliases_still_read():
    """Metadata written before opaque blocks (cache snapshots: ``"onnx": {...}``) and aliased backend names."""
    from im_core import ModelPackage

    old = ModelPackage.model_validate(
        {"package_id": "p", "backend": "onnx", "onnx": {"opset": 17}, "torch": None, "trt": None}
    )
    assert old.requirements == {"opset": 17}
    assert ModelPackage(package_id="t", backend="TensorRT", trt={"trt_version": "10.3"}).requirements == {
        "trt_version": "10.3"
    }
    assert ModelPackage(package_id="t", backend="TensorRT").backend == "trt"


def test_plugin_commands_come_from_the_im_cli_entry_point_group(capsys):
    from im_core import CommandManifest
    from im_core.cli import _COMMANDS, main

    reg = registry()
    assert {"registry", "trt"} <= set(reg.commands)
    assert reg.commands["registry"].distribution == "im-providers"
    assert not [t for _, t in _COMMANDS.values() if not t.startswith("im_core.")]  # core names only its own
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "registry" in out and "trt" in out and "cache" in out
    assert isinstance(reg.commands["trt"], CommandManifest)


@pytest.mark.parametrize(
    ("lookup", "name", "install"),
    [
        ("provider", "roboflow", r"pip install 'im-providers'"),
        ("provider", "local", r"pip install 'im-providers'"),
        ("provider", "http", r"pip install 'im-providers'"),
        ("backend", "onnx", r"pip install 'im-backend-onnx'"),
        ("backend", "torch", r"pip install 'im-backend-torch'"),
        ("backend", "trt", r"pip install 'im-backend-trt'.*im-vision\[trt\]"),
        ("pipeline", "ocr", r"pip install 'im-pipelines'"),
    ],
)
def test_a_builtin_name_without_its_distribution_says_what_to_install(lookup, name, install):
    """An im-core-only install (no plugins at all): asking for a built-in says which distribution brings it."""
    reg = PluginRegistry()
    with pytest.raises(PluginError, match=install) as info:
        getattr(reg, lookup)(name)
    assert "not installed" in info.value.message
    with pytest.raises(ModelImplementationNotFoundError, match="pip install 'im-models'"):
        reg.find_model("yolov8", "object-detection")
    with pytest.raises(PluginError, match="Unknown weights provider 'nope'"):  # not a built-in: the generic hint
        reg.provider("nope")


def test_install_hint_conventions_match_the_workspace_entry_points():
    """The install hints hold no list of plugin names: they follow each group's convention (``im-backend-<name>``,
    one distribution for the other groups), which every workspace member follows."""
    from importlib import metadata

    from im_core._plugins import GROUP_DISTRIBUTIONS

    for group, pattern in GROUP_DISTRIBUTIONS.items():
        eps = [ep for ep in metadata.entry_points(group=group) if ep.dist.name.startswith("im-")]
        assert eps, group
        for ep in eps:
            manifest = ep.load()
            if group == "im.models" and manifest.distribution == ep.dist.name != pattern:
                # families whose runtime lives in another wheel ship there and say so (im-backend-transformers'
                # generative vision-language families); the hint for an architecture no wheel has names im-models
                continue
            names = [getattr(e, "name", ep.name) for e in getattr(manifest, "entries", (manifest,))]
            for name in names:
                assert ep.dist.name == pattern.format(name=name), (group, name)


def test_from_pretrained_in_an_im_core_only_install_names_im_providers(monkeypatch):
    from im_core import _plugins
    from im_core._cache import resolve_metadata

    monkeypatch.setattr(_plugins, "_registry", PluginRegistry())  # nothing discovered: im-core alone
    with pytest.raises(PluginError, match=r"'roboflow'.*the distribution 'im-providers'.*not installed.*pip install"):
        resolve_metadata("roboflow", "coco/3")


def test_bad_provider_options_name_the_provider_and_its_options(tmp_path):
    from im_core import AutoModel
    from im_core.errors import InvalidParameterError

    reg = registry()
    with pytest.raises(InvalidParameterError, match=r"provider 'http'.*'rot'.*accepts: root, timeout_s, retries"):
        reg.provider("http", rot="http://x")
    with pytest.raises(InvalidParameterError, match=r"'local'.*accepts: root\."):
        reg.provider("local", root=str(tmp_path), secret_token="hunter2")
    with pytest.raises(InvalidParameterError) as info:
        AutoModel.from_pretrained("a/b", weights_provider="local", provider_options={"rooot": "hunter2"})
    assert "rooot" in info.value.message and "hunter2" not in str(info.value)  # names, never values
    assert reg.provider("local", root=str(tmp_path)).root == tmp_path.resolve()


def test_entry_points_are_read_once_for_all_groups(monkeypatch):
    """Reading entry points scans every installed distribution: one call for the four groups, kept for the process;
    ``registry(refresh=True)`` reads them again."""
    from importlib import metadata

    from im_core import _plugins

    calls = []
    real = metadata.entry_points

    def counting(**params):
        calls.append(params)
        return real(**params)

    monkeypatch.setattr(metadata, "entry_points", counting)
    monkeypatch.setattr(_plugins, "_entry_points_cache", None)
    reg = registry(refresh=True)
    assert calls == [{}]  # one call, no group filter: the groups are selected from its answer
    assert {"onnx", "torch", "trt"} <= set(reg.backends) and {"local", "http"} <= set(reg.providers)
    assert reg.models and {"ocr", "face-gaze"} <= set(reg.pipelines)
    PluginRegistry().scan()
    PluginRegistry().scan()
    assert len(calls) == 1
    registry(refresh=True)
    assert len(calls) == 2


def test_entry_points_are_selected_per_group_in_group_order(monkeypatch):
    """Whatever ``entry_points()`` returns (``SelectableGroups`` on 3.10/3.11, ``EntryPoints`` on 3.12+), only the
    im groups are kept, in the order of ``GROUPS``."""
    from importlib import metadata

    from im_core import _plugins

    eps = metadata.EntryPoints(
        metadata.EntryPoint(name, value, group)
        for name, value, group in [
            ("p", "a:P", "im.pipelines"),
            ("script", "a:main", "console_scripts"),
            ("b", "a:B", "im.backends"),
            ("m", "a:M", "im.models"),
            ("w", "a:W", "im.weights_providers"),
            ("c", "a:C", "im.cli"),
        ]
    )
    monkeypatch.setattr(metadata, "entry_points", lambda: eps)
    monkeypatch.setattr(_plugins, "_entry_points_cache", None)
    assert [ep.group for ep in _plugins._im_entry_points()] == list(_plugins.GROUPS)

"""Registry builder + `local`/`http` providers against a real loopback HTTP server; user-defined providers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from im_core import ModelMetadata, ProviderManifest, register, registry
from im_core._cache import ModelCache, resolve_metadata
from im_core._config import reload_settings
from im_core.cli import main as im_main
from im_core.errors import (
    ConfigurationError,
    InvalidParameterError,
    MalformedMetadataError,
    ModelNotFoundError,
    ProviderUnavailableError,
    UnauthorizedError,
    UnsafePathError,
)
from im_providers import HttpRegistryProvider, LocalRegistryProvider, add_to_registry
from testlib import servers


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    weights = tmp_path / "weights.onnx"
    weights.write_bytes(b"\x08\x07onnx" * 1000)
    names = tmp_path / "class_names.txt"
    names.write_text("face\n")
    add_to_registry(
        root,
        model_id="mediapipe/face-detector",
        architecture="blazeface",
        task="object-detection",
        files=[weights, names],
        class_names=["face"],
        input_size=(128, 128),
        opset=13,
    )
    return root


def test_builder_writes_wire_document_with_hashes(reg: Path, tmp_path: Path) -> None:
    doc = json.loads((reg / "mediapipe/face-detector/metadata.json").read_text())
    pkg = doc["modelPackages"][0]
    assert pkg["packageId"] == "onnx-fp32-b1" and pkg["inputSize"] == [128, 128]
    f = {x["fileHandle"]: x for x in pkg["packageFiles"]}["weights.onnx"]
    data = (tmp_path / "weights.onnx").read_bytes()
    assert f["sha256Hash"] == hashlib.sha256(data).hexdigest() and f["md5Hash"] == hashlib.md5(data).hexdigest()
    assert f["size"] == len(data) and f["downloadUrl"] == "onnx-fp32-b1/weights.onnx"
    assert (reg / "mediapipe/face-detector/onnx-fp32-b1/weights.onnx").read_bytes() == data
    # a second package is added next to the first; re-adding replaces it
    add_to_registry(
        reg,
        model_id="mediapipe/face-detector",
        architecture="blazeface",
        task="object-detection",
        files=[tmp_path / "weights.onnx"],
        batch=(1, 16),
        quantization="fp16",
    )
    add_to_registry(
        reg,
        model_id="mediapipe/face-detector",
        architecture="blazeface",
        task="object-detection",
        files=[tmp_path / "weights.onnx"],
        batch=(1, 16),
        quantization="fp16",
    )
    md = LocalRegistryProvider(reg).get_model_metadata("mediapipe/face-detector")
    assert sorted(p.package_id for p in md.packages) == ["onnx-fp16-b1-16", "onnx-fp32-b1"]
    assert md.class_names == ("face",)


def test_cli_registry_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = tmp_path / "model.pt"
    w.write_bytes(b"torchscript")
    rc = im_main(
        [
            "registry",
            "add",
            str(tmp_path / "r"),
            str(w),
            "--model-id",
            "acme/det",
            "--architecture",
            "yolov8",
            "--task",
            "object-detection",
            "--backend",
            "torchscript",
            "--batch",
            "1:8",
            "--class-names",
            "a,b",
            "--input-size",
            "640x480",
            "--no-verify",  # the file is not a real TorchScript archive: the arguments are what is tested
        ]
    )
    assert rc == 0 and "metadata.json" in capsys.readouterr().out
    md = LocalRegistryProvider(tmp_path / "r").get_model_metadata("acme/det")
    pkg = md.packages[0]
    assert pkg.backend == "torch" and pkg.batch.max == 8 and pkg.input_size == (640, 480)
    assert md.class_names == ("a", "b")


def test_local_provider_materializes_file_urls(reg: Path) -> None:
    md = resolve_metadata("local", "mediapipe/face-detector", provider_options={"root": str(reg)})
    assert md.provider == "local" and md.packages[0].files[0].url.startswith("file://")
    folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "class_names.txt").read_text() == "face\n"


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "/etc/passwd", "a\\b", "./a", "a//b", "~/x", ""])
def test_ids_that_escape_the_registry_are_refused(reg: Path, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        LocalRegistryProvider(reg).get_model_metadata(bad)
    with pytest.raises(UnsafePathError):
        HttpRegistryProvider("http://127.0.0.1:9/").get_model_metadata(bad)


def test_symlink_escaping_registry_is_refused(reg: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "m"
    outside.mkdir(parents=True)
    (outside / "metadata.json").write_text("{}")
    (reg / "linked").symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafePathError):
        LocalRegistryProvider(reg).get_model_metadata("linked/m")


def test_unknown_model_and_missing_root(reg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFoundError):
        LocalRegistryProvider(reg).get_model_metadata("nope/1")
    with pytest.raises(ConfigurationError, match="IM_REGISTRY"):
        LocalRegistryProvider()
    monkeypatch.setenv("IM_REGISTRY", str(reg))
    reload_settings()
    assert LocalRegistryProvider().get_model_metadata("mediapipe/face-detector").architecture == "blazeface"
    with pytest.raises(ConfigurationError, match="http"):
        HttpRegistryProvider()


def test_http_provider_statuses(reg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_DOWNLOAD_RETRIES", "3")
    reload_settings()
    path = "/mediapipe/face-detector/metadata.json"
    with servers.LoopbackServer(root=reg) as srv:
        srv.fail[path] = [503, 500]
        md = HttpRegistryProvider(srv.url).get_model_metadata("mediapipe/face-detector")
        assert srv.count(path) == 3
        assert md.packages[0].files[0].url == f"{srv.url}/mediapipe/face-detector/onnx-fp32-b1/weights.onnx"
        with pytest.raises(ModelNotFoundError):
            HttpRegistryProvider(srv.url).get_model_metadata("nope/1")
        srv.fail[path] = [401]
        with pytest.raises(UnauthorizedError):
            HttpRegistryProvider(srv.url).get_model_metadata("mediapipe/face-detector")
    with pytest.raises(ProviderUnavailableError):
        HttpRegistryProvider(f"http://127.0.0.1:{servers.closed_port()}", retries=2).get_model_metadata("a/b")


class _EchoProvider:
    """A user-defined provider: answers any id with one package from a fixed folder."""

    name = "echo"

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def get_model_metadata(self, model_id: str, *, api_key: str | None = None) -> ModelMetadata:
        data = (self.folder / "w.bin").read_bytes()
        return ModelMetadata.model_validate(
            {
                "model_id": model_id,
                "architecture": "toy",
                "task": "classification",
                "packages": [
                    {
                        "package_id": "p1",
                        "backend": "onnx",
                        "files": [
                            {
                                "name": "w.bin",
                                "url": (self.folder / "w.bin").as_uri(),
                                "size": len(data),
                                "sha256": hashlib.sha256(data).hexdigest(),
                            }
                        ],
                    }
                ],
            }
        )


def test_user_defined_provider_registration(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    register(ProviderManifest(name="echo-test", target=f"{__name__}:_EchoProvider", distribution="tests"), replace=True)
    assert "echo-test" in registry().providers
    md = resolve_metadata("echo-test", "any/model", provider_options={"folder": str(tmp_path)})
    assert md.provider == "echo-test"
    assert (ModelCache().materialize(md, md.packages[0]) / "w.bin").read_bytes() == b"abc"
    assert ModelCache().load_metadata("echo-test", "any/model") == md


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"modelId": "mediapipe/face-detector", ', "not readable JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"modelPackages": 5}', "modelPackages"),
        ('{"modelPackages": [3]}', r"modelPackages\[0\]"),
    ],
)
def test_corrupt_existing_metadata_is_named_and_nothing_is_written(
    reg: Path, tmp_path: Path, content: str, match: str
) -> None:
    meta = reg / "mediapipe/face-detector/metadata.json"
    meta.write_text(content)
    before = _tree(reg)
    with pytest.raises(MalformedMetadataError, match=match) as info:
        add_to_registry(
            reg,
            model_id="mediapipe/face-detector",
            architecture="blazeface",
            task="object-detection",
            files=[tmp_path / "weights.onnx"],
            package_id="second",
        )
    assert str(meta) in info.value.message
    assert _tree(reg) == before
    assert sorted(p.name for p in meta.parent.iterdir()) == ["metadata.json", "onnx-fp32-b1"]


def test_an_add_that_fails_validation_leaves_nothing_behind(reg: Path, tmp_path: Path) -> None:
    before = _tree(reg)
    bad = {"staticBatchSize": 0}  # a package no parser can read
    with pytest.raises(InvalidParameterError, match="would not be readable"):
        add_to_registry(
            reg, model_id="new/model", architecture="x", task="t", files=[tmp_path / "weights.onnx"], manifest_extra=bad
        )
    assert not (reg / "new").exists()
    with pytest.raises(InvalidParameterError, match="would not be readable"):  # replacing an existing package
        add_to_registry(
            reg,
            model_id="mediapipe/face-detector",
            architecture="blazeface",
            task="object-detection",
            files=[tmp_path / "class_names.txt"],
            manifest_extra=bad,
        )
    assert _tree(reg) == before
    assert sorted(p.name for p in (reg / "mediapipe/face-detector").iterdir()) == ["metadata.json", "onnx-fp32-b1"]


@pytest.mark.parametrize("provider", ["local", "http"])
def test_file_names_with_percent_and_spaces_round_trip(tmp_path: Path, provider: str) -> None:
    """A file named ``w%41 b.onnx`` must arrive under that name, not ``wA b.onnx`` (escapes decoded once)."""
    root = tmp_path / "registry"
    odd = tmp_path / "w%41 b.onnx"
    odd.write_bytes(b"odd bytes")
    add_to_registry(root, model_id="odd/1", architecture="yolov8", task="object-detection", files=[odd])
    if provider == "local":
        md = resolve_metadata("local", "odd/1", provider_options={"root": str(root)})
        folder = ModelCache().materialize(md, md.packages[0])
    else:
        with servers.LoopbackServer(root=root) as srv:
            md = resolve_metadata("http", "odd/1", provider_options={"root": srv.url})
            folder = ModelCache().materialize(md, md.packages[0])
    assert (folder / "w%41 b.onnx").read_bytes() == b"odd bytes"


def test_concurrent_registry_adds_from_eight_processes_lose_no_package(tmp_path: Path) -> None:
    """``im registry add`` reads, changes and replaces metadata.json: eight processes adding different packages of
    one model at once must all land (without the registry lock, 2-5 of 8 were silently lost)."""
    import subprocess
    import sys

    root = tmp_path / "registry"
    weights = tmp_path / "weights.onnx"
    weights.write_bytes(b"\x08\x07onnx" * 50_000)
    command = [sys.executable, "-m", "im_core.cli", "registry", "add", str(root), str(weights)]
    command += ["--model-id", "team/model", "--architecture", "yolov8", "--task", "object-detection"]
    command += ["--no-verify"]  # the bytes are not a real network: the registry lock is what is tested
    procs = [
        subprocess.Popen(
            [*command, "--package-id", f"pkg-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in results] == [0] * 8, results
    document = json.loads((root / "team/model/metadata.json").read_text())
    assert sorted(p["packageId"] for p in document["modelPackages"]) == [f"pkg-{i}" for i in range(8)]
    metadata = LocalRegistryProvider(root=root).get_model_metadata("team/model")
    assert len(metadata.packages) == 8
    assert all((root / "team/model" / f"pkg-{i}" / "weights.onnx").is_file() for i in range(8))


def test_a_remote_registry_cannot_make_im_copy_local_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An HTTP registry's metadata naming ``file://`` URLs: the package is skipped (its reason logged) and nothing of
    this machine is copied into the cache; the same document from a registry folder may name local files."""
    from im_core import AutoModel
    from im_core.errors import NoCompatiblePackageError

    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"private bytes of this machine")
    entry = {
        "modelId": "evil/model",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [
            {
                "packageId": "onnx-fp32",
                "packageManifest": {
                    "type": "onnx-model-package-v1",
                    "backendType": "onnx",
                    "quantization": "fp32",
                    "staticBatchSize": 1,
                },
                "packageFiles": [
                    {
                        "fileHandle": "weights.onnx",
                        "downloadUrl": secret.as_uri(),
                        "size": secret.stat().st_size,
                        "sha256Hash": hashlib.sha256(secret.read_bytes()).hexdigest(),
                    }
                ],
            }
        ],
    }
    with servers.LoopbackServer() as srv:
        srv.routes["/evil/model/metadata.json"] = servers.json_route(entry)
        metadata = HttpRegistryProvider(srv.url).get_model_metadata("evil/model")
        assert metadata.packages == ()
        assert "names a local file (file://), which only a registry folder may do" in caplog.text
        with pytest.raises(NoCompatiblePackageError):
            AutoModel.from_pretrained("evil/model", weights_provider="http", provider_options={"root": srv.url})
    home_files = [p for p in Path(reload_settings().home).rglob("*") if p.is_file()]
    assert not any(p.read_bytes() == secret.read_bytes() for p in home_files)
    # the same document in a registry folder (a local file itself) may name local files
    folder = tmp_path / "registry" / "evil" / "model"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(entry))
    assert len(LocalRegistryProvider(root=tmp_path / "registry").get_model_metadata("evil/model").packages) == 1


# -- hostile or broken metadata answers (issue 14: items 7 and 8) --------------------------------------------------

META = "/mediapipe/face-detector/metadata.json"


@pytest.fixture
def http_reg(reg: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IM_DOWNLOAD_RETRIES", "3")
    reload_settings()
    with servers.LoopbackServer(root=reg) as srv:
        yield srv


def test_a_metadata_body_cut_short_is_retried(http_reg) -> None:
    http_reg.truncate[META] = 50
    http_reg.truncate_times[META] = 2
    md = HttpRegistryProvider(http_reg.url).get_model_metadata("mediapipe/face-detector")
    assert md.architecture == "blazeface" and http_reg.count(META) == 3
    http_reg.truncate[META] = 50  # every attempt: the provider is unavailable (a saved snapshot would be used)
    with pytest.raises(ProviderUnavailableError, match="3 attempts"):
        HttpRegistryProvider(http_reg.url).get_model_metadata("mediapipe/face-detector")


@pytest.mark.parametrize(
    "location", [META, "ftp://127.0.0.1/metadata.json", "http://[::1"], ids=["loop", "ftp", "bad-url"]
)
def test_bad_metadata_redirects_are_provider_errors_at_once(http_reg, location: str) -> None:
    http_reg.routes[META] = lambda _req: (302, {"Location": location}, b"")
    with pytest.raises(ProviderUnavailableError, match=r"redirect|URL"):
        HttpRegistryProvider(http_reg.url).get_model_metadata("mediapipe/face-detector")
    assert http_reg.count(META) == (31 if location == META else 1)


@pytest.mark.parametrize("provider", ["local", "http"])
@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_metadata_is_malformed_not_a_recursion_error(
    reg: Path, http_reg, provider: str, depth: int
) -> None:
    (reg / META.lstrip("/")).write_text('{"a": ' + "[" * depth + "]" * depth + "}")
    root = str(reg) if provider == "local" else http_reg.url
    with pytest.raises(MalformedMetadataError, match="nested"):
        resolve_metadata(provider, "mediapipe/face-detector", provider_options={"root": root})


@pytest.mark.parametrize("provider", ["local", "http"])
def test_a_metadata_document_over_the_size_cap_is_refused(
    reg: Path, http_reg, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IM_METADATA_MAX_BYTES", "4096")
    reload_settings()
    doc = json.loads((reg / META.lstrip("/")).read_text())
    doc["padding"] = "x" * 5000
    (reg / META.lstrip("/")).write_text(json.dumps(doc))
    root = str(reg) if provider == "local" else http_reg.url
    with pytest.raises(MalformedMetadataError, match="IM_METADATA_MAX_BYTES"):
        resolve_metadata(provider, "mediapipe/face-detector", provider_options={"root": root})
    monkeypatch.setenv("IM_METADATA_MAX_BYTES", "65536")
    reload_settings()
    assert resolve_metadata(provider, "mediapipe/face-detector", provider_options={"root": root}).packages


def test_a_deeply_nested_snapshot_is_ignored_offline(reg: Path) -> None:
    """A snapshot under IM_HOME that someone replaced with deep nesting: unreadable, hence not cached."""
    resolve_metadata("local", "mediapipe/face-detector", provider_options={"root": str(reg)})
    cache = ModelCache()
    for snapshot in (cache.root / "metadata").rglob("*.json"):
        snapshot.write_text("[" * 100_000 + "]" * 100_000)
    assert cache.load_metadata("local", "mediapipe/face-detector") is None


def test_skipped_packages_keep_their_reason_in_the_report_and_the_error(tmp_path: Path) -> None:
    """Every package of a model is refused while reading the metadata (an unsafe file name, an unknown package
    type): the error names each one and why, not "the model has no packages at all"."""
    from im_core import AutoModel
    from im_core.errors import NoCompatiblePackageError

    entry = {
        "modelId": "odd/model",
        "modelArchitecture": "yolov8",
        "taskType": "object-detection",
        "modelPackages": [
            {
                "packageId": "escapes",
                "packageManifest": {"type": "onnx-model-package-v1", "backendType": "onnx", "staticBatchSize": 1},
                "packageFiles": [{"fileHandle": "../../etc/passwd", "downloadUrl": "https://example.com/x"}],
            },
            {"packageId": "alien", "packageManifest": {"type": "alien-runtime-package-v9"}},
        ],
    }
    folder = tmp_path / "registry" / "odd" / "model"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(entry))
    kwargs = {"weights_provider": "local", "provider_options": {"root": tmp_path / "registry"}}
    metadata = LocalRegistryProvider(root=tmp_path / "registry").get_model_metadata("odd/model")
    assert metadata.packages == ()
    assert [s.package_id for s in metadata.skipped_packages] == ["escapes", "alien"]
    report = AutoModel.negotiate("odd/model", **kwargs)
    assert [v.package_id for v in report.verdicts] == ["alien", "escapes"]
    with pytest.raises(NoCompatiblePackageError) as info:
        AutoModel.from_pretrained("odd/model", **kwargs)
    message = str(info.value)
    assert "no packages at all" not in message
    assert "escapes" in message and "leaves its package folder" in message
    assert "alien" in message and "'alien-runtime-package-v9' is not one im can run" in message

"""The Roboflow provider against a loopback server speaking its wire format: bearer key, paging, retries,
status → error mapping, and the key never leaking into logs, errors or IM_HOME."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from im_core._cache import ModelCache, resolve_metadata
from im_core._config import reload_settings
from im_core.errors import (
    ForbiddenError,
    ImError,
    InvalidParameterError,
    MalformedMetadataError,
    ModelNotFoundError,
    PaymentRequiredError,
    ProviderUnavailableError,
    UnauthorizedError,
    UsagePausedError,
)
from im_providers import RoboflowProvider
from testlib import servers

KEY = "rf_SECRET_key_0123456789"
API = "/models/v1/external/weights"


def _package(pid: str, url: str, data: bytes) -> dict:
    return {
        "type": "external-model-package-v1",
        "packageId": pid,
        "trustedSource": True,
        "packageFiles": [{"fileHandle": "weights.onnx", "downloadUrl": url, "md5Hash": hashlib.md5(data).hexdigest()}],
        "packageManifest": {
            "type": "onnx-model-package-v1",
            "backendType": "onnx",
            "dynamicBatchSize": False,
            "staticBatchSize": 1,
            "quantization": "fp32",
            "opset": 17,
        },
    }


@pytest.fixture
def roboflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A loopback Roboflow API: two pages of packages; files served from the same server."""
    data = b"weights-bytes" * 4000
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "w.onnx").write_bytes(data)
    srv = servers.LoopbackServer(root=tmp_path)
    file_url = f"{srv.url}/files/w.onnx?X-Goog-Signature=abc&api_key={KEY}"

    def api(req):
        if req.headers.get("authorization") != f"Bearer {KEY}":
            return 401, {"Content-Type": "application/json"}, b'{"error": "unauthorized"}'
        if req.query.get("modelId") != ["coco/3"]:
            return 404, {}, b"{}"
        page2 = req.query.get("startAfter") == ["cursor-1"]
        body = {
            "modelMetadata": {
                "type": "external-model-metadata-v1",
                "modelId": "coco/3",
                "modelArchitecture": "yolov8",
                "taskType": "object-detection",
                "nextPage": None if page2 else "cursor-1",
                "modelPackages": [_package("p2" if page2 else "p1", file_url, data)],
            }
        }
        import json

        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    srv.routes[API] = api
    monkeypatch.setenv("ROBOFLOW_API_HOST", srv.url)
    monkeypatch.setenv("IM_DOWNLOAD_RETRIES", "3")
    reload_settings()
    with srv:
        yield srv


def test_bearer_key_paging_and_retries(roboflow) -> None:
    roboflow.fail[API] = [500, 500]
    md = RoboflowProvider().get_model_metadata("coco/3", api_key=KEY)
    assert [p.package_id for p in md.packages] == ["p1", "p2"]
    api_calls = [r for r in roboflow.requests if r.path == API]
    assert len(api_calls) == 4  # 500, 500, page 1, page 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in api_calls)
    assert api_calls[-1].query["startAfter"] == ["cursor-1"] and "startAfter" not in api_calls[-2].query


def test_key_from_environment(roboflow, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
    reload_settings()
    assert len(RoboflowProvider().get_model_metadata("coco/3").packages) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, UnauthorizedError),
        (402, PaymentRequiredError),
        (403, ForbiddenError),
        (404, ModelNotFoundError),
        (423, UsagePausedError),
    ],
)
def test_status_mapping_fails_at_once(roboflow, status: int, error: type) -> None:
    roboflow.fail[API] = [status]
    with pytest.raises(error) as info:
        RoboflowProvider().get_model_metadata("coco/3", api_key=KEY)
    assert roboflow.count(API) == 1 and info.value.context["status_code"] == status
    assert KEY not in str(info.value)


def test_retries_exhausted_and_dead_host(roboflow, monkeypatch: pytest.MonkeyPatch) -> None:
    roboflow.fail[API] = [503, 502, 429]
    with pytest.raises(ProviderUnavailableError):
        RoboflowProvider().get_model_metadata("coco/3", api_key=KEY)
    assert roboflow.count(API) == 3
    dead = RoboflowProvider(api_host=f"http://127.0.0.1:{servers.closed_port()}", retries=2)
    with pytest.raises(ProviderUnavailableError) as info:
        dead.get_model_metadata("coco/3", api_key=KEY)
    assert KEY not in str(info.value)


def test_api_key_never_leaks(roboflow, caplog: pytest.LogCaptureFixture) -> None:
    home = ModelCache().root
    caplog.set_level(logging.DEBUG)
    md = resolve_metadata("roboflow", "coco/3", api_key=KEY)
    ModelCache().materialize(md, md.packages[0])
    errors: list[str] = []
    roboflow.fail[API] = [401]
    with pytest.raises(ImError) as info:
        resolve_metadata("roboflow", "coco/3", api_key=KEY)
    errors.append(str(info.value) + repr(info.value.context))
    roboflow.fail["/files/w.onnx"] = [403]
    md2 = md.model_copy(update={"model_id": "coco/4"})
    with pytest.raises(ImError) as info:
        ModelCache().materialize(
            md2,
            md2.packages[0].model_copy(
                update={"files": (md2.packages[0].files[0].model_copy(update={"md5": "0" * 32}),)}
            ),
        )
    errors.append(str(info.value))
    assert roboflow.count("/files/w.onnx") == 2  # the first load downloaded once; the second got 403
    assert all(KEY not in e for e in errors)
    assert KEY not in caplog.text
    key = KEY.encode()
    leaked = [p for p in home.rglob("*") if p.is_file() and key in p.read_bytes()]
    names = [p for p in home.rglob("*") if KEY in str(p)]
    assert not leaked and not names
    snapshot = ModelCache().load_metadata("roboflow", "coco/3")
    assert snapshot is not None and "X-Goog-Signature=abc" in snapshot.packages[0].files[0].url


@pytest.mark.parametrize(
    ("page", "field"),
    [
        ({"modelPackages": 5}, "modelPackages"),
        ({"modelPackages": "p1"}, "modelPackages"),
        ({"nextPage": {"cursor": 1}}, "nextPage"),
        ({"nextPage": 7}, "nextPage"),
        ({"taskType": None}, "taskType"),
    ],
)
def test_malformed_pages_name_the_field(roboflow, page: dict, field: str) -> None:
    body = {"modelId": "coco/3", "modelArchitecture": "yolov8", "taskType": "object-detection", **page}
    roboflow.routes[API] = servers.json_route({"modelMetadata": body})
    with pytest.raises(MalformedMetadataError, match=field) as info:
        RoboflowProvider().get_model_metadata("coco/3", api_key=KEY)
    assert KEY not in str(info.value)


def test_a_deeply_nested_or_cut_answer_is_an_im_error(roboflow) -> None:
    roboflow.routes[API] = lambda _req: (200, {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(MalformedMetadataError, match="nested"):
        RoboflowProvider().get_model_metadata("coco/3", api_key=KEY)
    body = b'{"modelMetadata": {"modelId": "coco/3"}}'
    roboflow.routes[API] = lambda _req: (200, {"Content-Type": "application/json", "Content-Length": "500"}, body)
    with pytest.raises(ProviderUnavailableError, match="3 attempts") as info:
        RoboflowProvider().get_model_metadata("coco/3", api_key=KEY)
    assert roboflow.count(API) == 1 + 3 and KEY not in str(info.value)  # the nested answer, then 3 cut ones


def test_a_server_that_echoes_the_key_never_gets_it_printed(roboflow, tmp_path: Path) -> None:
    """The API answers with the caller's key inside its metadata: in a class name, in a package id and type that
    are skipped with a WARNING, and (for another model) in a document that does not parse. `im describe-model`, in
    a real process with ROBOFLOW_API_KEY set, prints neither in its output nor in its log lines nor in its error."""
    import json
    import os
    import subprocess
    import sys

    data = b"weights-bytes" * 4000

    def echo(req):
        key = req.headers.get("authorization", "").removeprefix("Bearer ")
        if req.query.get("modelId") == ["bad/1"]:  # not a model: the error quotes the id the server sent
            body = {"modelMetadata": {"modelId": f"bad/{key}", "modelArchitecture": "yolov8"}}
        else:
            bogus = {"packageId": f"echo-{key}", "packageManifest": {"type": f"type-{key}"}}
            body = {
                "modelMetadata": {
                    "modelId": "coco/3",
                    "modelArchitecture": "yolov8",
                    "taskType": "object-detection",
                    "classNames": ["cat", f"class-{key}"],
                    "modelPackages": [_package("p1", f"{roboflow.url}/files/w.onnx", data), bogus],
                }
            }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    roboflow.routes[API] = echo
    env = {**os.environ, "ROBOFLOW_API_KEY": KEY, "ROBOFLOW_API_HOST": roboflow.url, "IM_PROGRESS": "0"}
    env.pop("COLUMNS", None)
    cli = [sys.executable, "-m", "im_core.cli", "describe-model"]
    ok = subprocess.run([*cli, "coco/3"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "skipping package 'echo-***'" in ok.stderr and "type-***" in ok.stderr  # the WARNING, scrubbed
    bad = subprocess.run([*cli, "bad/1"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "bad/***" in bad.stderr
    for out in (ok.stdout, ok.stderr, bad.stdout, bad.stderr):
        assert KEY not in out
    # in this process too: the error object, and a record logged with the key as an argument and in a traceback
    with pytest.raises(MalformedMetadataError) as info:
        resolve_metadata("roboflow", "bad/1", api_key=KEY)
    assert KEY not in f"{info.value} {info.value!r} {info.value.args} {info.value.__cause__!r}"


def test_extra_headers_and_query_params_reach_the_api_on_every_page(roboflow) -> None:
    """As the reference's weights_provider_extra_headers / _extra_query_params (deployments behind gateways)."""
    seen: list[tuple[str | None, tuple[str, ...]]] = []
    api = roboflow.routes[API]

    def recording(req):
        seen.append((req.headers.get("x-gateway"), tuple(req.query.get("region") or ())))
        return api(req)

    roboflow.routes[API] = recording
    provider = RoboflowProvider(extra_headers={"X-Gateway": "edge-7"}, extra_query_params={"region": "eu"})
    metadata = provider.get_model_metadata("coco/3", api_key=KEY)
    assert metadata.packages and len(seen) >= 2  # the fixture serves two pages
    assert set(seen) == {("edge-7", ("eu",))}
    with pytest.raises(InvalidParameterError, match="may not set"):
        RoboflowProvider(extra_headers={"authorization": "Bearer x"})
    with pytest.raises(InvalidParameterError, match="dict of strings"):
        RoboflowProvider(extra_query_params={"n": 1})  # type: ignore[dict-item]


def test_a_401_without_any_key_says_no_key_was_sent_and_how_to_give_one(roboflow) -> None:
    with pytest.raises(UnauthorizedError) as info:
        RoboflowProvider().get_model_metadata("coco/3")
    message = info.value.message
    assert "no API key was sent" in message and "ROBOFLOW_API_KEY is not set" in message
    assert "ROBOFLOW_API_KEY=" in message and "api_key=" in message and "weights_provider='local'" in message
    assert "check the API key" not in message and info.value.context["status_code"] == 401


@pytest.mark.parametrize(
    ("where", "origin"),
    [
        ("env", "ROBOFLOW_API_KEY environment variable"),
        ("call", "api_key= argument"),
        ("option", "provider's api_key option"),
    ],
)
def test_a_401_with_a_key_names_where_the_refused_key_came_from(roboflow, monkeypatch, where, origin) -> None:
    wrong = "rf_wrong_key_9876543210"
    if where == "env":
        monkeypatch.setenv("ROBOFLOW_API_KEY", wrong)
        reload_settings()
    provider = RoboflowProvider(api_key=wrong if where == "option" else None)
    with pytest.raises(UnauthorizedError) as info:
        provider.get_model_metadata("coco/3", api_key=wrong if where == "call" else None)
    assert f"the API key from the {origin} was refused" in info.value.message
    assert wrong not in str(info.value) and "no API key was sent" not in info.value.message

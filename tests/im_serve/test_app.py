"""im-serve in process (httpx's ASGI transport, with the app's lifespan): the routes, their schemas and status
codes, background loading and readiness, drain, metrics, on the real nudenet YOLO detector."""

from __future__ import annotations

import json
import threading
import time

import pytest

from im_core import ModelSpec
from im_core.errors import InvalidParameterError, ModelLoadingError
from im_serve import create_app

from .conftest import AppClient

pytestmark = pytest.mark.weights

PREDICT = "/v1/models/nudenet/predict"


@pytest.fixture(scope="module")
def client(nudenet):
    with AppClient(create_app({"nudenet": nudenet})) as c:
        yield c


def _same_json(result) -> dict:
    return json.loads(json.dumps(result.to_dict()))


def test_predict_answers_what_the_model_answers_alone(client, nudenet, images) -> None:
    for data in images:
        for params in ({}, {"confidence": 0.3, "max_detections": 5}):
            response = client.post(PREDICT, content=data, params=params)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            assert response.json() == _same_json(nudenet(data, **params))
    body = client.post(PREDICT, content=images[0]).json()
    assert body["type"] == "detections" and body["n"] == len(body["xyxy"]) == len(body["class_name"])


def test_query_parameters_are_typed_and_repeated_ones_are_lists(client, nudenet, images) -> None:
    names = list(nudenet.class_names[:2])
    response = client.post(
        f"{PREDICT}?class_filter={names[0]}&class_filter={names[1]}&confidence=0.2", content=images[0]
    )
    assert response.status_code == 200, response.text
    assert response.json() == _same_json(nudenet(images[0], class_filter=names, confidence=0.2))


def test_a_bad_image_gets_400_with_the_im_message(client, images) -> None:
    response = client.post(PREDICT, content=b"not an image")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "ModelInputError"
    assert "could not be decoded" in error["message"]
    assert error["help_url"].endswith("#modelinputerror")
    assert client.post(PREDICT, content=images[0]).status_code == 200  # the worker is unharmed


@pytest.mark.parametrize(
    ("query", "content", "code", "kind", "words"),
    [
        ("?conf=0.3", None, 400, "InvalidParameterError", "did you mean 'confidence'"),
        ("?errors=raise", None, 400, "InvalidParameterError", "'errors' is set by the server"),
        ("", b"", 400, "ModelInputError", "body is empty"),
    ],
)
def test_bad_requests(client, images, query, content, code, kind, words) -> None:
    response = client.post(PREDICT + query, content=images[0] if content is None else content)
    assert response.status_code == code
    assert response.json()["error"]["type"] == kind
    assert words in response.json()["error"]["message"]


def test_unknown_model_is_404(client, images) -> None:
    for response in (client.post("/v1/models/nope/predict", content=images[0]), client.get("/v2/models/nope")):
        assert response.status_code == 404
        assert "nudenet" in response.json()["error"]["message"]
    assert client.get("/v2/models/nope/ready").status_code == 404


def test_kserve_v2_health_and_metadata(client, nudenet) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert client.get("/v2/models/nudenet/ready").json() == {"name": "nudenet", "ready": True}
    meta = client.get("/v2/models/nudenet").json()
    assert meta["name"] == "nudenet" and meta["versions"] == [] and meta["platform"] == "im-onnx"
    assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [1]}]
    assert meta["outputs"] == [{"name": "result", "datatype": "BYTES", "shape": [1]}]
    assert meta["state"] == "ready"
    assert meta["parameters"]["task"] == "object-detection"
    assert meta["parameters"]["class_names"] == list(nudenet.class_names)


def test_metrics(client, images) -> None:
    client.post(PREDICT, content=images[0])
    client.post(PREDICT, content=b"bad")
    text = client.get("/metrics").text
    assert 'im_serve_requests_total{code="200",model="nudenet",route="/v1/models/{model}/predict"}' in text
    assert 'im_serve_requests_total{code="400",model="nudenet",route="/v1/models/{model}/predict"}' in text
    assert 'im_serve_request_duration_seconds_bucket{le="0.005",model="nudenet"' in text
    assert 'im_serve_batch_size_count{model="nudenet"}' in text
    assert 'im_serve_queue_depth{model="nudenet"} 0.0' in text
    assert 'im_serve_inference_seconds_count{model="nudenet"}' in text
    assert 'im_serve_model_load_seconds{model="nudenet"}' in text
    client.post("/v1/models/some-random-name/predict", content=b"x")
    assert 'model="some-random-name"' not in client.get("/metrics").text  # labels stay bounded


def test_loading_in_the_background_gates_readiness(asset, nudenet, images, monkeypatch) -> None:
    release = threading.Event()

    def slow_load(self):
        assert release.wait(30)
        return nudenet

    monkeypatch.setattr(ModelSpec, "load", slow_load)
    app = create_app({"nudenet": ModelSpec(str(asset("yolo/nudenet_320n.onnx")))})
    with AppClient(app) as client:
        assert client.get("/v2/health/live").status_code == 200  # the server answers while the model loads
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/nudenet/ready").status_code == 503
        assert client.get("/v2/models/nudenet").json()["state"] == "loading"
        refused = client.post(PREDICT, content=images[0])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        release.set()
        for _ in range(200):
            if client.get("/v2/health/ready").status_code == 200:
                break
            threading.Event().wait(0.02)
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post(PREDICT, content=images[0]).status_code == 200


def test_a_model_that_fails_to_load_leaves_the_others_serving(asset, nudenet, images, monkeypatch) -> None:
    def broken(self):
        raise ModelLoadingError("the weights are corrupt")

    monkeypatch.setattr(ModelSpec, "load", broken)
    app = create_app({"broken": ModelSpec(str(asset("yolo/nudenet_320n.onnx"))), "nudenet": nudenet})
    with AppClient(app) as client:
        for _ in range(200):
            if client.get("/v2/models/broken").json()["state"] != "loading":
                break
            threading.Event().wait(0.02)
        meta = client.get("/v2/models/broken").json()
        assert meta["state"] == "failed" and meta["error"] == "the weights are corrupt"
        assert client.get("/v2/health/ready").status_code == 503
        refused = client.post("/v1/models/broken/predict", content=images[0])
        assert refused.status_code == 503 and "the weights are corrupt" in refused.json()["error"]["message"]
        assert client.post(PREDICT, content=images[0]).status_code == 200


def test_drain_turns_readiness_503_and_refuses_new_work(nudenet, images) -> None:
    app = create_app({"nudenet": nudenet})
    with AppClient(app) as client:
        assert client.post(PREDICT, content=images[0]).status_code == 200
        app.state.im_serve.drain()
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/nudenet/ready").status_code == 503
        assert client.get("/v2/health/live").status_code == 200
        refused = client.post(PREDICT, content=images[0])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("models", "options"),
    [
        ({}, {}),
        ({"a/b": None}, {}),
        ({"a": "yolo/x.onnx"}, {}),
        ({"a": None}, {"max_queue": 0}),
        ({"a": None}, {"max_batch_size": 0}),
    ],
)
def test_create_app_checks_its_arguments(nudenet, models, options) -> None:
    models = {k: nudenet if v is None else v for k, v in models.items()}
    with pytest.raises(InvalidParameterError):
        create_app(models, **options)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("people=yolo/nudenet_320n.onnx", ("people", "yolo/nudenet_320n.onnx")),
        ("coco=coco/3", ("coco", "coco/3")),
        ("/models/nudenet_320n.onnx", ("nudenet_320n", "/models/nudenet_320n.onnx")),
    ],
)
def test_model_arguments(text, expected) -> None:
    from im_serve._cli import parse_model_arg

    assert parse_model_arg(text) == expected


def test_cli_refuses_bad_and_duplicate_names(asset, capsys) -> None:
    from im_core.cli import main

    path = asset("yolo/nudenet_320n.onnx")
    assert main(["serve", f"a={path}", f"a={path}"]) == 2
    assert "two models are named 'a'" in capsys.readouterr().err
    assert main(["serve", f"a/b={path}"]) == 2
    assert "give NAME=ID" in capsys.readouterr().err


def test_max_wait_ms_lets_a_batch_fill(nudenet, images) -> None:
    """Opt-in waiting (for GPUs): requests arriving within the wait share one batch, and answers do not change."""
    app = create_app({"nudenet": nudenet}, max_batch_size=4, max_wait_ms=2000)
    with AppClient(app) as client:
        started = time.perf_counter()
        responses = client.post_many(PREDICT, images[:4])
        assert time.perf_counter() - started < 2.0, "a full batch runs without waiting out the delay"
        assert [r.status_code for r in responses] == [200] * 4
        assert [r.json() for r in responses] == [_same_json(nudenet(data)) for data in images[:4]]
        text = client.get("/metrics").text
    assert 'im_serve_batch_size_count{model="nudenet"} 1.0' in text
    assert 'im_serve_batch_size_sum{model="nudenet"} 4.0' in text


class _Runner:
    """A ModelRunner that runs the model inline and records what it was asked (what im-ray's Ray Serve replica
    does with @serve.batch and @serve.multiplexed)."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls: list[tuple[str, dict]] = []
        self.is_loaded = False

    async def predict(self, model, data, params):
        self.calls.append((model, params))
        self.is_loaded = True
        result = self.model.infer_batch([data], errors="return", **params)[0]
        return result if isinstance(result, Exception) else result.to_dict()

    def loaded(self, model):
        return self.model if self.is_loaded else None


def test_a_runner_replaces_the_workers_behind_the_same_routes(nudenet, images) -> None:
    runner = _Runner(nudenet)
    with AppClient(create_app({"nudenet": ModelSpec("no-such-model-is-loaded")}, runner=runner)) as c:
        assert c.get("/v2/health/ready").status_code == 200  # nothing to load: the runner loads on demand
        assert c.get("/v2/models/nudenet/ready").json() == {"name": "nudenet", "ready": True}
        assert "parameters" not in c.get("/v2/models/nudenet").json()  # not loaded yet
        response = c.post(PREDICT, content=images[1], params={"confidence": 0.3})
        assert response.status_code == 200, response.text
        assert response.json() == _same_json(nudenet(images[1], confidence=0.3))
        assert runner.calls == [("nudenet", {"confidence": 0.3})]
        assert c.get("/v2/models/nudenet").json()["parameters"]["class_names"] == list(nudenet.class_names)
        bad = c.post(PREDICT, content=b"not an image")
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "ModelInputError"
        assert c.post(PREDICT, content=images[0], params={"no_such": 1}).status_code == 400
        assert c.post("/v1/models/other/predict", content=images[0]).status_code == 404
        assert len(runner.calls) == 3  # the unknown model never reached the runner
        assert 'code="400"' in c.get("/metrics").text


def test_create_app_refuses_a_runner_without_predict(nudenet) -> None:
    with pytest.raises(InvalidParameterError, match="runner must have"):
        create_app({"nudenet": nudenet}, runner=object())  # type: ignore[arg-type]

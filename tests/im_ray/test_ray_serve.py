"""Ray Serve on a local cluster (opt-in: ``-m ray``): im-serve's routes through Ray Serve's HTTP proxy, batching
and multiplexing of two models with an LRU of one, and a redeploy under load with no non-2xx answer."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from im_core import ModelSpec

from .conftest import free_port, write_images

pytestmark = [pytest.mark.ray, pytest.mark.weights, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(ray_cluster, nudenet_path):
    """Two names for the nudenet weights (``a``, and ``b`` on another device string, loaded separately), one
    replica keeping one model (so the two evict each other), behind Ray Serve's proxy on 127.0.0.1."""
    from ray import serve

    import im_ray

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    models = {"a": ModelSpec(nudenet_path), "b": ModelSpec(nudenet_path, device="cpu")}
    serve.run(im_ray.build_app(models, max_models_per_replica=1), name="im", route_prefix="/")
    yield f"http://127.0.0.1:{port}", models
    serve.delete("im")


@pytest.fixture(scope="module")
def photos(asset, tmp_path_factory) -> list[bytes]:
    return [p.read_bytes() for p in write_images(asset, tmp_path_factory.mktemp("serve"), n=6)]


def _expected(nudenet_path, data: bytes, **params) -> dict:
    from im_core import AutoModel

    return json.loads(json.dumps(AutoModel.from_pretrained(nudenet_path)(data, **params).to_dict()))


def test_every_route_through_ray_serve(served, photos, nudenet_path) -> None:
    import httpx

    url, _ = served
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").status_code == 200
        assert c.get("/v2/models/a/ready").json() == {"name": "a", "ready": True}
        response = c.post("/v1/models/a/predict", content=photos[0], params={"confidence": 0.3})
        assert response.status_code == 200, response.text
        assert response.json() == _expected(nudenet_path, photos[0], confidence=0.3)
        meta = c.get("/v2/models/a").json()
        assert meta["name"] == "a" and meta["platform"] == "im-onnx", meta
        bad = c.post("/v1/models/a/predict", content=b"not an image")
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "ModelInputError"
        assert c.post("/v1/models/a/predict", content=photos[0], params={"no_such": 1}).status_code == 400
        assert c.post("/v1/models/a/predict", params={"errors": "raise"}, content=photos[0]).status_code == 400
        assert c.post("/v1/models/zzz/predict", content=photos[0]).status_code == 404
        assert c.get("/v2/models/zzz").status_code == 404
        metrics = c.get("/metrics").text
        assert "im_serve_requests" in metrics


def test_concurrent_requests_to_two_multiplexed_models_answer_alone(served, photos, nudenet_path) -> None:
    """16 clients, two models alternating on a replica that keeps one: batches and LRU swaps never change an
    answer, and the multiplexing header routes as well as the path does."""
    import httpx

    url, _ = served
    expected = [_expected(nudenet_path, data) for data in photos]

    def call(k: int) -> tuple[int, int, dict]:
        name = "ab"[k % 2]
        i = k % len(photos)
        with httpx.Client(base_url=url, timeout=120) as c:
            r = c.post(f"/v1/models/{name}/predict", content=photos[i], headers={"serve_multiplexed_model_id": name})
        return r.status_code, i, r.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(48)))
    assert [code for code, _, _ in answers] == [200] * 48
    for _, i, body in answers:
        assert body == expected[i]
    metrics = httpx.get(f"{url}/metrics", timeout=60).text
    singles = sum(_sample(metrics, f'im_serve_batch_size_bucket{{le="1.0",model="{m}"}}') for m in "ab")
    batches = sum(_sample(metrics, f'im_serve_batch_size_count{{model="{m}"}}') for m in "ab")
    requests = sum(_sample(metrics, f'im_serve_batch_size_sum{{model="{m}"}}') for m in "ab")
    assert requests >= 48 and batches < requests and singles < batches  # @serve.batch took several at once


def _sample(text: str, name: str) -> float:
    """A Prometheus sample's value (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_redeploy_under_load_answers_every_request_2xx(served, photos, nudenet_path) -> None:
    import httpx
    from ray import serve

    import im_ray

    url, models = served
    codes: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            while not stop.is_set():
                codes.append(c.post("/v1/models/a/predict", content=photos[1]).status_code)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        while len(codes) < 8:
            stop.wait(0.1)
        before = len(codes)
        # new options: Ray replaces the replica, the old one answers what it accepted
        serve.run(im_ray.build_app(models, max_batch_size=4, max_models_per_replica=1), name="im", route_prefix="/")
        while len(codes) < before + 16:
            stop.wait(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert len(codes) >= 24
    assert set(codes) == {200}, sorted(set(codes))

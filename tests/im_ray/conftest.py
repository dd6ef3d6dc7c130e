"""Shared pieces of the im-ray tests.

Tests marked ``ray`` start one local Ray cluster for the whole session (``num_cpus=2``, no dashboard, a temp dir of
their own, actors with fractional CPUs). They are opt-in: ``uv run pytest -m ray tests/im_ray`` (or
``IM_TEST_RAY=1``); a plain ``pytest`` skips them with that reason, since a local cluster costs about 3 minutes and
2.7 GB on a 2-core machine (``.ci/run`` runs them as a step of its own, after the main suite). Every test here runs
under a timeout: a Ray pipeline that cannot schedule hangs without an error (ray-project/ray#44687), so a test that
overruns fails with its stack instead of stalling CI.
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

import pytest

# Ray workers run this interpreter. Under `uv run`, Ray would otherwise start each worker with `uv run` in a copy of
# the working directory, re-creating the environment (minutes, or a silent hang offline). Ray reads this when it is
# first imported, so it is set before any test module imports ray.
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"

#: seconds a ray test may run (cluster start included for the first one); a hard exit follows HARD_MARGIN_S later
TEST_TIMEOUT_S = float(os.environ.get("IM_TEST_RAY_TIMEOUT", "240"))
HARD_MARGIN_S = 60.0
#: images of the Ray Data test: the pinned photographs at several sizes, flipped, as PNG and JPEG
N_IMAGES = 20
SIZES = [(320, 320), (640, 480), (480, 640), (300, 500), (256, 200)]
OPT_IN = (
    "Ray tests are opt-in (a local cluster: ~3 min and ~2.7 GB on 2 cores; .ci/run runs them as a step of its own): "
    "run `uv run pytest -m ray tests/im_ray`"
)


def _opted_in(config: pytest.Config) -> bool:
    expr = config.getoption("markexpr", "") or ""
    return os.environ.get("IM_TEST_RAY") == "1" or ("ray" in expr and "not ray" not in expr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _opted_in(config):
        return
    skip = pytest.mark.skip(reason=OPT_IN)
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(skip)


class RayTestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _timeout(request: pytest.FixtureRequest):
    """Fail a test that runs past TEST_TIMEOUT_S (SIGALRM in the main thread), and end the process with every
    thread's stack if even that does not return (a hang inside native code)."""
    if request.node.get_closest_marker("ray") is None or sys.platform == "win32":
        yield
        return

    def expired(signum, frame):
        raise RayTestTimeout(
            f"{request.node.nodeid} ran past {TEST_TIMEOUT_S:.0f} s: a Ray pipeline that cannot get resources "
            "waits without an error (ray-project/ray#44687); see the Ray logs under the cluster's temp dir."
        )

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT_S)
    faulthandler.dump_traceback_later(TEST_TIMEOUT_S + HARD_MARGIN_S, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def ray_cluster():
    """A local cluster for the session: 2 CPUs, no dashboard, its own temp dir and IM_HOME, torn down at the end."""
    ray = pytest.importorskip("ray", reason="im-ray's tests need ray: uv sync --all-packages")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local test cluster: no token written to ~/.ray
    temp = Path(tempfile.mkdtemp(prefix="imray", dir="/tmp"))  # short: Ray's unix socket paths have a length limit
    home = temp / "im_home"
    home.mkdir()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=str(temp),
        log_to_driver=False,
        runtime_env={"env_vars": {"IM_HOME": str(home), "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}},
    )
    try:
        yield ray
    finally:
        try:
            from ray import serve

            serve.shutdown()
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def nudenet_path(asset) -> Path:
    return asset("yolo/nudenet_320n.onnx")


def write_images(asset, folder: Path, n: int = N_IMAGES) -> list[Path]:
    """``n`` real photographs (the pinned ones, resized, some flipped; PNG and JPEG) written to ``folder``."""
    import cv2

    photos = [cv2.imread(str(asset(f"images/{name}.png")), cv2.IMREAD_COLOR) for name in ("astronaut", "chelsea")]
    photos.append(cv2.cvtColor(cv2.imread(str(asset("images/camera.png")), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        image = cv2.resize(photos[k % len(photos)], SIZES[k % len(SIZES)])
        if (k // len(photos)) % 2:
            image = cv2.flip(image, 1)
        path = folder / f"img{k:04d}.{'png' if k % 2 else 'jpg'}"
        assert cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

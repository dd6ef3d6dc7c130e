"""Shared pieces of the im-serve tests: PNG bytes of the pinned photographs at several sizes, and a real server in a
subprocess on 127.0.0.1 (any free port)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

#: (width, height): several nudenet canvases, so batches mix sizes and infer_batch groups them
SIZES = [(320, 320), (640, 480), (480, 640), (300, 500)]
HERE = Path(__file__).parent


def png_images(asset) -> list[bytes]:
    import cv2

    photos = [cv2.imread(str(asset(f"images/{name}.png")), cv2.IMREAD_COLOR) for name in ("astronaut", "chelsea")]
    out = []
    for k, size in enumerate(SIZES):
        ok, buf = cv2.imencode(".png", cv2.resize(photos[k % len(photos)], size))
        assert ok
        out.append(buf.tobytes())
    return out


@pytest.fixture(scope="module")
def images(asset) -> list[bytes]:
    return png_images(asset)


@pytest.fixture(scope="module")
def nudenet(asset):
    from im_core import AutoModel

    return AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))


class ServerProcess:
    """``python -m ...`` serving on 127.0.0.1:0; ``url`` once uvicorn names its port and readiness is 200."""

    def __init__(self, args: list[str], *, ready_timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: list[str] = []
        self._port = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._port.wait(ready_timeout):
            self.kill()
            pytest.fail("the server did not start:\n" + self.log)
        self.wait_ready(ready_timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                self._port.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail("the server did not become ready:\n" + self.log)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the process if it still runs, and close its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def server_process():
    started: list[ServerProcess] = []

    def start(args: list[str]) -> ServerProcess:
        server = ServerProcess(args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


class AppClient:
    """A synchronous client of an ASGI app in process (``httpx.ASGITransport`` on an event loop of its own), with
    the app's lifespan run on entry and exit (Starlette's TestClient wants ``httpx2`` now)."""

    def __init__(self, app) -> None:
        import asyncio

        self.app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _call(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def __enter__(self) -> AppClient:
        import httpx

        self._thread.start()
        self._lifespan = self.app.router.lifespan_context(self.app)
        self._call(self._lifespan.__aenter__())
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://app")
        return self

    def __exit__(self, *exc) -> None:
        self._call(self._client.aclose())
        self._call(self._lifespan.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def request(self, method: str, url: str, **kwargs):
        return self._call(self._client.request(method, url, **kwargs))

    def post_many(self, url: str, bodies: list[bytes]) -> list:
        """The requests at once (concurrently on the app's event loop)."""
        import asyncio

        async def run():
            return await asyncio.gather(*(self._client.post(url, content=body) for body in bodies))

        return self._call(run())

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs):
        return self.request("POST", url, **kwargs)

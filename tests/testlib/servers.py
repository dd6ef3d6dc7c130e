"""Loopback HTTP servers for cache and provider tests (real sockets on 127.0.0.1, a thread each).

:class:`LoopbackServer` serves a folder and can be told, per path, to fail with given statuses first, to cut the
body short, to stream slowly, to hold its answer until an event is set, to gzip a file whatever the client accepts,
or to answer from a Python function (the Roboflow API). Files are served with ``Range: bytes=N-`` support (206,
``Content-Range``) unless ``ranges`` is off. It records every request, when it arrived (``times``,
``time.monotonic()``) and how many body bytes each file answer sent (``sent``).

Imported by tests as ``from testlib import servers`` (``tests`` is on pytest's pythonpath).
"""

from __future__ import annotations

import gzip as gzip_module
import io
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Route = Callable[["Request"], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (port chosen by the OS)."""

    root: Path | None = None
    requests: list[Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() of each request, in order
    fail: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer first, in order
    fail_headers: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> headers of those answers
    truncate: dict[str, int] = field(default_factory=dict)  # path -> body bytes sent, then close (full length declared)
    truncate_times: dict[str, int] = field(default_factory=dict)  # path -> how many answers to cut (default: all)
    slow: dict[str, float] = field(default_factory=dict)  # path -> seconds to sleep after each 64 KiB chunk
    gate: dict[str, threading.Event] = field(default_factory=dict)  # path -> answered once the event is set (<= 30 s)
    routes: dict[str, Route] = field(default_factory=dict)
    gzip: set[str] = field(default_factory=set)  # paths sent gzip-encoded whatever Accept-Encoding says (no ranges)
    ranges: bool = True  # honour "Range: bytes=N-" on files (206 + Content-Range; 416 past the end)
    sent: list[tuple[str, int]] = field(default_factory=list)  # (path, body bytes written) of each file answer
    chunk: int = 64 << 10

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    owner._handle(self)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        req = Request(path=path, query=parse_qs(parts.query), headers={k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(req)
            self.times.append(time.monotonic())
            queue = self.fail.get(path)
            status = queue.pop(0) if queue else None
        if status is not None:
            headers = {"Content-Type": "text/plain", **self.fail_headers.get(path, {})}
            return self._send(h, status, headers, f"status {status}\n".encode())
        if path in self.gate:
            self.gate[path].wait(30)
        if path in self.routes:
            status, headers, body = self.routes[path](req)
            return self._send(h, status, headers, body)
        target = (self.root / path.lstrip("/")).resolve() if self.root is not None else None
        if target is None or not target.is_file() or not target.is_relative_to(self.root.resolve()):
            return self._send(h, 404, {"Content-Type": "text/plain"}, b"not found\n")
        size = target.stat().st_size
        start, status, headers = 0, 200, {"Content-Type": "application/octet-stream"}
        wanted = re.fullmatch(r"bytes=(\d+)-", req.headers.get("range", "").strip())
        if wanted and self.ranges and path not in self.gzip:
            start = int(wanted.group(1))
            if start >= size:
                return self._send(h, 416, {"Content-Range": f"bytes */{size}"}, b"")
            status, headers["Content-Range"] = 206, f"bytes {start}-{size - 1}/{size}"
        encoded = None
        if path in self.gzip:
            encoded = gzip_module.compress(target.read_bytes())
            headers["Content-Encoding"] = "gzip"
        length = len(encoded) if encoded is not None else size - start
        with self._lock:
            limit = min(self.truncate.get(path, length), length)
            if path in self.truncate_times:
                self.truncate_times[path] -= 1
                if self.truncate_times[path] <= 0:
                    del self.truncate_times[path]
                    self.truncate.pop(path, None)
        delay = self.slow.get(path, 0.0)
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(length))
        if limit < length:
            h.send_header("Connection", "close")
        h.end_headers()
        sent = 0
        try:
            if limit == length and not delay and encoded is None:  # zero-copy: the server is never the bottleneck
                with open(target, "rb") as f:
                    sent = h.connection.sendfile(f, offset=start, count=length)
                return
            with open(target, "rb") as f:
                f.seek(start)
                source = f if encoded is None else io.BytesIO(encoded)
                while sent < limit and (data := source.read(min(self.chunk, limit - sent))):
                    h.wfile.write(data)
                    sent += len(data)
                    if delay:
                        h.wfile.flush()
                        time.sleep(delay)
            h.wfile.flush()
            if limit < length:
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
        finally:
            with self._lock:
                self.sent.append((path, sent))

    def bytes_sent(self, path: str) -> list[int]:
        """Body bytes written by each file answer for ``path``, in order."""
        with self._lock:
            return [n for p, n in self.sent if p == path]

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        """Answer ``body``; a route that declares a longer ``Content-Length`` gets its body cut short (closed)."""
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "content-length" not in {k.lower() for k in headers}:
            h.send_header("Content-Length", str(len(body)))
        else:
            h.close_connection = True
        h.end_headers()
        h.wfile.write(body)


def json_route(payload: Any, status: int = 200) -> Route:
    body = json.dumps(payload).encode()
    return lambda _req: (status, {"Content-Type": "application/json"}, body)


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

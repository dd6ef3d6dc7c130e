"""Run an app under uvicorn with im-serve's drain.

On SIGTERM (or SIGINT) readiness turns 503 at once and new work gets 503 with ``Retry-After``; after ``drain_delay``
seconds (so that load balancers and clients move away while their requests are still answered, not reset) uvicorn
stops accepting connections, answers every accepted request and the process exits within the graceful timeout.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["serve"]

#: part of the graceful timeout kept for what follows uvicorn's wait (lifespan shutdown, interpreter exit)
_EXIT_MARGIN_S = 0.5


def serve(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    graceful_timeout: float = 30.0,
    drain_delay: float = 0.5,
    log_level: str = "info",
) -> int:
    """Serve ``app`` (made by :func:`~im_serve.create_app`) until SIGTERM or SIGINT; return the exit status.

    Args:
        app: the app.
        host: the address to listen on (``0.0.0.0`` for every interface).
        port: the port (0: any free port; the log line ``Uvicorn running on ...`` names it).
        graceful_timeout: seconds between the signal and the end of the process: requests still running after
            it are cancelled.
        drain_delay: seconds between the signal and closing the listening socket, while new requests get 503 with
            ``Retry-After`` (at most half the graceful timeout). Closing at once would reset connections a client
            opened just before; a delay lets clients and load balancers see the 503 and stop sending.
        log_level: uvicorn's log level.
    """
    import uvicorn

    state = app.state.im_serve
    delay = max(0.0, min(drain_delay, graceful_timeout / 2))

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if state.draining or delay == 0:  # a second signal (or no delay): uvicorn's own handling at once
                state.drain()
                super().handle_exit(sig, frame)
                return
            state.drain()  # readiness 503 and new work refused now; the listener closes after the delay
            timer = threading.Timer(delay, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # typed int, used as asyncio.timeout's seconds: a float is kept as it is
        timeout_graceful_shutdown=cast(int, max(0.1, graceful_timeout - delay - _EXIT_MARGIN_S)),
        lifespan="on",
    )
    server: Any = _Server(config)
    # uvicorn re-raises the captured signal once it has shut down; a drained exit is a clean exit (status 0)
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run()
    except _Drained:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if server.started else 1


class _Drained(Exception):
    pass


def _exit_cleanly(sig: int, frame: FrameType | None) -> None:
    raise _Drained

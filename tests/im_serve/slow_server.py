"""A real im-serve server on 127.0.0.1 (any free port) whose model is deliberately slow, for the batching and
overload tests: ``python slow_server.py MODEL_PATH DELAY_S MAX_BATCH_SIZE MAX_QUEUE``.

Each worker batch sleeps ``DELAY_S`` once before running, so requests pile up while it runs: batches form and the
queue bound is reached without a busy machine."""

from __future__ import annotations

import sys
import time


def main() -> int:
    from im_core import AutoModel
    from im_serve import create_app, serve

    path, delay, max_batch_size, max_queue = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    model = AutoModel.from_pretrained(path)
    run = model.infer_batch

    def slow(items, **kwargs):
        time.sleep(delay)
        return run(items, **kwargs)

    model.infer_batch = slow
    app = create_app({"slow": model}, max_batch_size=max_batch_size, max_queue=max_queue)
    return serve(app, host="127.0.0.1", port=0, graceful_timeout=5, log_level="info")


if __name__ == "__main__":
    raise SystemExit(main())

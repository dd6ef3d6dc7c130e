"""SAM promptable segmentation on a tiny randomly initialised ``transformers`` SamModel (random weights: no SAM
weights can be downloaded here), against the reference pipeline: ``SamProcessor`` + ``SamModel`` +
``post_process_masks``, on the real test images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")

from im_core import AutoModel, ImageEmbedding, PromptSegmentation, RLEMask
from im_core.errors import InvalidParameterError

IMAGES = ("astronaut", "chelsea", "camera", "page")
pytestmark = pytest.mark.weights  # the pinned real images


@pytest.fixture(scope="module")
def sam_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_sam

    return tiny_sam(tmp_path_factory.mktemp("hf") / "tiny-sam")


@pytest.fixture(scope="module")
def reference(sam_folder: Path) -> Any:
    """``(rgb, prompts, multimask, mask_input) -> (masks (P, M, H, W) bool, iou (P, M))`` through transformers.

    The image encoder runs once per image (``SamModel.get_image_embeddings`` on the processor's pixels) and the
    model is then called with ``image_embeddings=``, transformers' own way of prompting one image many times."""
    import torch
    from transformers import SamModel, SamProcessor

    model = SamModel.from_pretrained(str(sam_folder)).eval()
    processor = SamProcessor.from_pretrained(str(sam_folder))
    encoded: dict[bytes, Any] = {}

    def run(rgb: np.ndarray, prompts: dict[str, Any], multimask: bool = True, mask_input: Any = None) -> Any:
        kwargs: dict[str, Any] = {}
        if "points" in prompts:
            kwargs["input_points"] = [[prompts["points"]]]
            kwargs["input_labels"] = [[prompts["labels"]]]
        if "boxes" in prompts:
            kwargs["input_boxes"] = [prompts["boxes"]]
        inputs = processor(images=rgb, return_tensors="pt", **kwargs)
        pixels = inputs.pop("pixel_values")
        key = pixels.numpy().tobytes()
        with torch.no_grad():
            if key not in encoded:
                encoded[key] = model.get_image_embeddings(pixels)
            masks_in = None if mask_input is None else torch.as_tensor(mask_input).reshape(1, 1, *mask_input.shape[-2:])
            prompts_in = {k: v for k, v in inputs.items() if k.startswith("input_")}
            out = model(image_embeddings=encoded[key], **prompts_in, input_masks=masks_in, multimask_output=multimask)
        masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])
        return masks[0].numpy(), out.iou_scores[0].numpy()

    return run


@pytest.fixture(scope="module")
def sam(sam_folder: Path) -> Any:
    return AutoModel.from_pretrained(sam_folder)


def _image(asset: Any, name: str) -> np.ndarray:
    import cv2

    return cv2.imread(str(asset(f"images/{name}.png")), cv2.IMREAD_COLOR)  # BGR (H, W, 3)


def _prompts(height: int, width: int) -> dict[str, dict[str, Any]]:
    return {
        "one point": {"points": [[width * 0.4, height * 0.5]], "labels": [1]},
        "two points": {"points": [[width * 0.4, height * 0.5], [width * 0.7, height * 0.2]], "labels": [1, 0]},
        "box": {"boxes": [[width * 0.1, height * 0.2, width * 0.6, height * 0.9]]},
        "two boxes": {"boxes": [[width * 0.1, height * 0.2, width * 0.6, height * 0.9], [0, 0, width / 2, height / 3]]},
        "points and box": {
            "points": [[width * 0.4, height * 0.5]],
            "labels": [1],
            "boxes": [[width * 0.1, height * 0.2, width * 0.6, height * 0.9]],
        },
    }


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _assert_parity(got: PromptSegmentation, masks: np.ndarray, iou: np.ndarray, what: str) -> None:
    dense = got.dense_masks()
    assert dense.shape == masks.shape, what
    worst = min(
        _mask_iou(a, b) for a, b in zip(dense.reshape(-1, *dense.shape[2:]), masks.reshape(-1, *dense.shape[2:]))
    )
    assert worst >= 0.99, f"{what}: mask IoU {worst:.4f}"
    np.testing.assert_allclose(got.iou, iou, atol=1e-4, err_msg=what)
    assert 0.05 < dense.mean() < 0.95, f"{what}: a degenerate mask would prove nothing"


@pytest.mark.parametrize("name", IMAGES)
def test_reference_parity_points_boxes_multimask(sam: Any, reference: Any, asset: Any, name: str) -> None:
    """Random weights: im's masks (original size) and IoU predictions equal SamProcessor + SamModel +
    post_process_masks for points, boxes, points + box, several boxes, with and without multimask."""
    bgr = _image(asset, name)
    rgb = bgr[:, :, ::-1].copy()
    embedding = sam.embed(bgr)
    pixels, _ = sam.preprocess(rgb)
    from transformers import SamProcessor

    ref_pixels = SamProcessor.from_pretrained(str(sam.metadata.source))(images=rgb, return_tensors="np")
    np.testing.assert_array_equal(pixels, ref_pixels["pixel_values"])  # the same pre-processing, bit for bit
    for kind, prompts in _prompts(*bgr.shape[:2]).items():
        for multimask in (True, False):
            got = sam.segment(embedding, multimask=multimask, **prompts)
            masks, iou = reference(rgb, prompts, multimask)
            _assert_parity(got, masks, iou, f"{name}/{kind}/multimask={multimask}")


def test_reference_parity_mask_input_refines_a_prompt(sam: Any, reference: Any, asset: Any) -> None:
    """Random weights: a previous result's low-resolution logits as ``mask_input`` (transformers' input_masks)."""
    bgr = _image(asset, "chelsea")
    h, w = bgr.shape[:2]
    first = sam.segment(bgr, points=[[w * 0.5, h * 0.5]], labels=[1])
    previous = first.low_res_logits[0, int(first.best_index[0])]
    prompts = {"points": [[w * 0.5, h * 0.5], [w * 0.2, h * 0.8]], "labels": [1, 0]}
    got = sam.segment(bgr, mask_input=previous, multimask=False, **prompts)
    masks, iou = reference(bgr[:, :, ::-1].copy(), prompts, False, mask_input=previous)
    _assert_parity(got, masks, iou, "mask_input")
    assert not np.allclose(got.iou, sam.segment(bgr, multimask=False, **prompts).iou)  # the mask did count


def test_exported_onnx_package_equals_the_folder(sam: Any, sam_folder: Path, asset: Any, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    exported = AutoModel.from_pretrained(export_folder(sam_folder, tmp_path / "onnx"))
    assert exported.metadata.backend == "onnx" and exported.metadata.task == "promptable-segmentation"
    for name in ("astronaut", "page"):
        bgr = _image(asset, name)
        for kind, prompts in _prompts(*bgr.shape[:2]).items():
            a, b = sam.segment(bgr, **prompts), exported.segment(bgr, **prompts)
            _assert_parity(b, a.dense_masks(), a.iou, f"onnx {name}/{kind}")
            np.testing.assert_allclose(b.low_res_logits, a.low_res_logits, atol=1e-4)


def test_embedding_cache_never_re_encodes_an_image(sam: Any, asset: Any) -> None:
    bgr = _image(asset, "astronaut")
    calls = []
    run = sam.encoder.run
    sam.encoder.run = lambda *a, **k: calls.append(1) or run(*a, **k)
    try:
        sam.embedding_cache.clear()
        first = sam.embed(bgr)
        again = sam.embed(bgr.copy())  # same pixels, another array
        sam.segment(bgr, points=[[10, 10]])
        sam(bgr, boxes=[0, 0, 100, 100])
        assert again is first and len(calls) == 1
        sam.embed(bgr[:, :, ::-1].copy(), color_format="rgb")  # the same image given as RGB: same content
        assert len(calls) == 1
        changed = bgr.copy()
        changed[0, 0, 0] ^= 1
        sam.embed(changed)
        assert len(calls) == 2
        for i in range(sam.embedding_cache.max_items + 1):  # bounded: the oldest goes first
            sam.embed(np.full((32, 48, 3), i, np.uint8))
        assert len(sam.embedding_cache) == sam.embedding_cache.max_items
        sam.embed(bgr)
        assert len(calls) == 2 + sam.embedding_cache.max_items + 2  # astronaut was evicted, encoded again
    finally:
        sam.encoder.run = run


def test_model_call_and_result_forms(sam: Any, asset: Any) -> None:
    bgr = _image(asset, "chelsea")
    h, w = bgr.shape[:2]
    called = sam(bgr, points=[[w / 2, h / 2]], labels=[1])
    direct = sam.segment(bgr, points=[[w / 2, h / 2]], labels=[1])
    assert isinstance(called, PromptSegmentation) and called == direct
    assert called.masks.shape == (1, 3, h, w) and called.masks.dtype == bool and called.iou.shape == (1, 3)
    assert called.low_res_logits.shape == (1, 3, 32, 32)
    rle = sam.segment(bgr, points=[[w / 2, h / 2]], labels=[1], mask_format="rle", keep_logits=False)
    assert isinstance(rle.masks[0][0], RLEMask) and rle.low_res_logits is None
    assert np.array_equal(rle.dense_masks(), called.masks)
    assert PromptSegmentation.from_dict(called.to_dict()) == called
    best = called.best()
    assert best.masks.shape == (1, 1, h, w) and best.iou[0, 0] == called.iou.max()
    assert isinstance(sam.embed(bgr), ImageEmbedding)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({}, "needs a prompt"),
        ({"points": [[10, 10]], "labels": [1, 0]}, "one integer per point"),
        ({"points": [[10, 10]], "labels": [2]}, "1 (foreground) or 0"),
        ({"points": [[10, 10]], "labels": ["x"]}, "labels must be integers"),
        ({"points": [[600, 10]]}, "outside the 451×300 image"),
        ({"boxes": [[-5, 0, 20, 20]]}, "outside"),
        ({"boxes": [[50, 50, 20, 20]]}, "x2 >= x1"),
        ({"labels": [1]}, "without points"),
        ({"points": [[1, 1]], "mask_input": np.zeros((7, 7))}, "low-resolution logits"),
        ({"points": [[[1, 1]], [[2, 2]]], "boxes": [[0, 0, 9, 9]] * 3}, "2 point prompts for 3 boxes"),
    ],
)
def test_bad_prompts_say_what_is_wrong(sam: Any, asset: Any, prompts: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        sam.segment(_image(asset, "chelsea"), **prompts)


def test_an_embedding_from_another_model_is_refused(sam: Any, sam_folder: Path, asset: Any) -> None:
    other = AutoModel.from_pretrained(sam_folder, embedding_cache_size=0)
    foreign = ImageEmbedding(sam.embed(_image(asset, "chelsea")).tensors, (300, 451), (85, 128), "k", "elsewhere")
    with pytest.raises(InvalidParameterError, match="computed by 'elsewhere'"):
        other.segment(foreign, points=[[10, 10]])
    assert len(other.embedding_cache) == 0  # embedding_cache_size=0 keeps nothing

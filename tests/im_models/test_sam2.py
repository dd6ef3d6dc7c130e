"""SAM 2 (image mode) promptable segmentation on a tiny randomly initialised ``transformers`` Sam2Model (random
weights: no SAM 2 weights can be downloaded here), against the reference pipeline: ``Sam2Processor`` +
``Sam2Model`` + ``post_process_masks``, on the real test images.

``Sam2ImageProcessor`` needs torchvision (not installed), so the reference ``Sam2Processor`` is given transformers'
Pillow image-processing backend with the folder's ``preprocessor_config.json`` (square resize, bilinear, rescale,
normalise), and ``post_process_masks`` is its one line: ``F.interpolate(bilinear, align_corners=False) > 0``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")

from im_core import AutoModel, PromptSegmentation

IMAGES = ("astronaut", "chelsea", "page")
pytestmark = pytest.mark.weights  # the pinned real images


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testlib.hf_models import tiny_sam2

    return tiny_sam2(tmp_path_factory.mktemp("hf") / "tiny-sam2")


def _processor(folder: Path) -> Any:
    """``Sam2Processor`` over a Pillow image processor configured like the folder's ``Sam2ImageProcessor``."""
    import torch
    from transformers import Sam2Processor
    from transformers.image_processing_backends import PilBackend
    from transformers.image_utils import PILImageResampling

    cfg = json.loads((folder / "preprocessor_config.json").read_text())

    class PilSam2ImageProcessor(PilBackend):  # type: ignore[misc]
        resample = PILImageResampling.BILINEAR
        model_input_names = ["pixel_values"]

        def preprocess(self, images: Any, segmentation_maps: Any = None, return_tensors: Any = None, **kw: Any) -> Any:
            out = super().preprocess(images, return_tensors=return_tensors, **kw)
            out["original_sizes"] = torch.tensor([images.shape[:2]])
            return out

    image_processor = PilSam2ImageProcessor(
        size=cfg["size"],
        image_mean=cfg["image_mean"],
        image_std=cfg["image_std"],
        rescale_factor=cfg["rescale_factor"],
        do_resize=True,
        do_rescale=True,
        do_normalize=True,
        do_convert_rgb=True,
        resample=PILImageResampling.BILINEAR,
    )
    return Sam2Processor(image_processor=image_processor)


@pytest.fixture(scope="module")
def reference(sam2_folder: Path) -> Any:
    """``(rgb, prompts, multimask) -> (pixel_values, masks (P, M, H, W) bool, iou (P, M))`` through transformers."""
    import torch
    import torch.nn.functional as F
    from transformers import Sam2Model

    model = Sam2Model.from_pretrained(str(sam2_folder)).eval()
    processor = _processor(sam2_folder)
    encoded: dict[bytes, Any] = {}

    def run(rgb: np.ndarray, prompts: dict[str, Any], multimask: bool = True) -> Any:
        kwargs: dict[str, Any] = {}
        if "points" in prompts:
            kwargs["input_points"] = [[[p] for p in prompts["points"]]] if "boxes" in prompts else [[prompts["points"]]]
            kwargs["input_labels"] = [[[v] for v in prompts["labels"]]] if "boxes" in prompts else [[prompts["labels"]]]
        if "boxes" in prompts:
            kwargs["input_boxes"] = [prompts["boxes"]]
        inputs = processor(images=rgb, return_tensors="pt", **kwargs)
        pixels = inputs.pop("pixel_values")
        key = pixels.numpy().tobytes()
        with torch.no_grad():
            if key not in encoded:
                encoded[key] = model.get_image_embeddings(pixels)
            prompts_in = {k: v for k, v in inputs.items() if k.startswith("input_")}
            out = model(image_embeddings=encoded[key], **prompts_in, multimask_output=multimask)
        size = tuple(int(v) for v in inputs["original_sizes"][0])
        masks = F.interpolate(out.pred_masks[0], size, mode="bilinear", align_corners=False) > 0
        return pixels.numpy(), masks.numpy(), out.iou_scores[0].numpy()

    return run


@pytest.fixture(scope="module")
def sam2(sam2_folder: Path) -> Any:
    return AutoModel.from_pretrained(sam2_folder)


def _image(asset: Any, name: str) -> np.ndarray:
    import cv2

    return cv2.imread(str(asset(f"images/{name}.png")), cv2.IMREAD_COLOR)  # BGR (H, W, 3)


def _prompts(height: int, width: int) -> dict[str, dict[str, Any]]:
    return {
        "one point": {"points": [[width * 0.4, height * 0.5]], "labels": [1]},
        "two points": {"points": [[width * 0.4, height * 0.5], [width * 0.7, height * 0.2]], "labels": [1, 0]},
        "box": {"boxes": [[width * 0.1, height * 0.2, width * 0.6, height * 0.9]]},
        "two boxes": {"boxes": [[width * 0.1, height * 0.2, width * 0.6, height * 0.9], [0, 0, width / 2, height / 3]]},
        "point and box": {
            "points": [[width * 0.4, height * 0.5]],
            "labels": [1],
            "boxes": [[width * 0.1, height * 0.2, width * 0.6, height * 0.9]],
        },
    }


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _assert_parity(got: PromptSegmentation, masks: np.ndarray, iou: np.ndarray, what: str) -> float:
    """Asserts the masks and IoU agree; returns the masks' foreground fraction."""
    dense = got.dense_masks()
    assert dense.shape == masks.shape, what
    worst = min(
        _mask_iou(a, b) for a, b in zip(dense.reshape(-1, *dense.shape[2:]), masks.reshape(-1, *dense.shape[2:]))
    )
    assert worst >= 0.99, f"{what}: mask IoU {worst:.4f}"
    np.testing.assert_allclose(got.iou, iou, atol=1e-4, err_msg=what)
    return float(dense.mean())


@pytest.mark.parametrize("name", IMAGES)
def test_reference_parity_points_boxes_multimask(sam2: Any, reference: Any, asset: Any, name: str) -> None:
    """Random weights: im's masks (original size) and IoU predictions equal Sam2Processor + Sam2Model +
    post_process_masks for points, boxes, point + box, two boxes, with and without multimask (the single mask
    through SAM 2's stability fallback)."""
    bgr = _image(asset, name)
    rgb = bgr[:, :, ::-1].copy()
    embedding = sam2.embed(bgr)
    pixels, _ = sam2.preprocess(rgb)
    fractions = []
    for kind, prompts in _prompts(*bgr.shape[:2]).items():
        for multimask in (True, False):
            ref_pixels, masks, iou = reference(rgb, prompts, multimask)
            np.testing.assert_array_equal(pixels, ref_pixels)  # the same pre-processing, bit for bit
            got = sam2.segment(embedding, multimask=multimask, **prompts)
            fractions.append(_assert_parity(got, masks, iou, f"{name}/{kind}/multimask={multimask}"))
    mixed = [0.02 < f < 0.98 for f in fractions]
    assert sum(mixed) >= 0.7 * len(mixed), f"mostly degenerate masks prove nothing: {fractions}"


def test_single_mask_falls_back_to_the_best_multimask_output_when_unstable(sam2: Any, asset: Any) -> None:
    """Both branches of the stability fallback: with the tiny model's unstable mask 0 every single-mask answer is
    the best multimask output (the parity test checks that against transformers); with the threshold lowered to
    0, mask 0 is always kept and it is none of the multimask outputs."""
    bgr = _image(asset, "astronaut")
    h, w = bgr.shape[:2]
    points = np.asarray([[w * x, h * y] for x in (0.1, 0.5, 0.9) for y in (0.1, 0.5, 0.9)])[:, None]
    labels = np.ones((len(points), 1), int)
    every = sam2.segment(bgr, points=points, labels=labels, multimask=True)
    best = every.low_res_logits[np.arange(len(points)), every.iou.argmax(1)]
    fallback = sam2.segment(bgr, points=points, labels=labels, multimask=False)
    np.testing.assert_array_equal(fallback.low_res_logits[:, 0], best)
    thresh = sam2.stability_thresh
    try:
        sam2.stability_thresh = 0.0
        kept = sam2.segment(bgr, points=points, labels=labels, multimask=False).low_res_logits[:, 0]
    finally:
        sam2.stability_thresh = thresh
    assert not any(np.allclose(kept[i], m) for i in range(len(points)) for m in every.low_res_logits[i])


def test_exported_onnx_package_equals_the_folder(sam2: Any, sam2_folder: Path, asset: Any, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    exported = AutoModel.from_pretrained(export_folder(sam2_folder, tmp_path / "onnx"))
    assert exported.metadata.backend == "onnx" and exported.metadata.task == "promptable-segmentation"
    assert exported.dynamic and exported.stability_thresh == sam2.stability_thresh
    for name in ("astronaut", "page"):
        bgr = _image(asset, name)
        for kind, prompts in _prompts(*bgr.shape[:2]).items():
            for multimask in (True, False):
                a = sam2.segment(bgr, multimask=multimask, **prompts)
                b = exported.segment(bgr, multimask=multimask, **prompts)
                _assert_parity(b, a.dense_masks(), a.iou, f"onnx {name}/{kind}/{multimask}")
                np.testing.assert_allclose(b.low_res_logits, a.low_res_logits, atol=1e-4)


def test_embedding_cache_never_re_encodes_an_image(sam2: Any, asset: Any) -> None:
    bgr = _image(asset, "astronaut")
    calls = []
    run = sam2.encoder.run
    sam2.encoder.run = lambda *a, **k: calls.append(1) or run(*a, **k)
    try:
        sam2.embedding_cache.clear()
        first = sam2.embed(bgr)
        again = sam2.embed(bgr.copy())
        sam2.segment(bgr, points=[[10, 10]])
        sam2(bgr, boxes=[0, 0, 100, 100])
        assert again is first and len(calls) == 1
        assert set(first.tensors) == {"image_embeddings", "high_res_feats_0", "high_res_feats_1"}
        changed = bgr.copy()
        changed[0, 0, 0] ^= 1
        sam2.embed(changed)
        assert len(calls) == 2
    finally:
        sam2.encoder.run = run


def test_mask_input_refines_a_prompt(sam2: Any, asset: Any) -> None:
    bgr = _image(asset, "chelsea")
    h, w = bgr.shape[:2]
    first = sam2.segment(bgr, points=[[w * 0.5, h * 0.5]], labels=[1])
    assert first.low_res_logits.shape == (1, 3, 32, 32) and first.masks.shape == (1, 3, h, w)
    previous = first.low_res_logits[0, int(first.best_index[0])]
    again = sam2.segment(bgr, points=[[w * 0.5, h * 0.5]], labels=[1], mask_input=previous)
    assert not np.allclose(again.iou, first.iou)

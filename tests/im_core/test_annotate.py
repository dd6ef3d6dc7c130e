"""What ``im predict --save`` draws (:func:`im_core._annotate.annotate`), for every result type, on a plain gray
canvas where every drawn pixel shows. (``--json`` writes ``result.to_dict()``, tested with the result types.)"""

from __future__ import annotations

import numpy as np
import pytest

from im_core import Classification, Detections, Embeddings, Gaze, RLEMask, TextLine, TextRecognition
from im_core._annotate import COCO_SKELETON, annotate

pytest.importorskip("cv2")

H, W = 240, 320


@pytest.fixture
def canvas() -> np.ndarray:
    return np.full((H, W, 3), 128, np.uint8)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(a != b, axis=2)


def test_boxes_labels_and_masks(canvas):
    mask = np.zeros((2, H, W), bool)
    mask[0, 60:100, 60:120] = True
    mask[1, 150:200, 200:300] = True
    det = Detections(
        [[50, 50, 130, 110], [190, 140, 310, 210]], [0.9, 0.6], [0, 3], ["cat", "a", "b", "dog"], masks=mask
    )
    out = annotate(canvas, det)
    assert out.shape == canvas.shape and out.dtype == np.uint8 and np.all(canvas == 128)  # a copy, input untouched
    changed = _changed(out, canvas)
    assert changed[60:100, 60:120].all() and changed[150:200, 200:300][5:-5, 5:-5].all()  # masks blended in
    assert changed[50:111, 50].all() and changed[110, 50:131].all()  # box edges
    assert changed[35:50, 50:100].any()  # the label above the first box
    assert not changed[5:30, 150:180].any() and not changed[220:, :40].any()  # nothing elsewhere
    assert not np.array_equal(out[80, 80], out[170, 250])  # one colour per class
    rle = Detections(det.xyxy, det.confidence, det.class_id, det.class_names, masks=[RLEMask.encode(m) for m in mask])
    np.testing.assert_array_equal(annotate(canvas, rle), out)  # RLE masks draw the same


def test_keypoints_with_the_coco_skeleton(canvas):
    pts = np.stack([np.linspace(40, 280, 17), np.linspace(30, 210, 17)], axis=1)[None].astype(np.float32)
    conf = np.ones((1, 17), np.float32)
    conf[0, 16] = 0.1  # an unseen keypoint is not drawn, nor its bones
    det = Detections([[30, 20, 290, 220]], [0.8], [0], ["person"], keypoints=pts, keypoint_confidence=conf)
    changed = _changed(annotate(canvas, det), canvas)
    for j in range(16):
        x, y = pts[0, j].round().astype(int)
        assert changed[y, x]
    x, y = pts[0, 16].round().astype(int)
    assert not changed[y - 1 : y + 2, x - 1 : x + 2].all()
    a, b = (5, 11)  # a bone of COCO_SKELETON: its midpoint is drawn
    assert (a, b) in COCO_SKELETON
    mx, my = ((pts[0, a] + pts[0, b]) / 2).round().astype(int)
    assert changed[my - 1 : my + 2, mx - 1 : mx + 2].any()
    custom = annotate(canvas, det, skeleton=[(0, 16)])
    assert not np.array_equal(custom, annotate(canvas, det))


def test_polygons_text_lines_gaze_classification_and_embeddings(canvas):
    poly = np.array([[20, 40], [200, 50], [198, 80], [18, 70]], np.float32)
    text_det = Detections([[18, 40, 200, 80]], [0.9], [0], ["text"], data={"polygon": [poly]})
    changed = _changed(annotate(canvas, text_det), canvas)
    assert changed[55, 19] and not changed[42, 199]  # the polygon's edge, not the box's corner
    ocr = TextRecognition([TextLine("Hello", 0.99, poly)])
    assert _changed(annotate(canvas, ocr), canvas)[55, 19]
    faces = Detections([[100, 100, 160, 160]], [0.9], [0], ["face"])
    right = _changed(annotate(canvas, Gaze([0.6], [0.0], faces)), canvas)
    left = _changed(annotate(canvas, Gaze([-0.6], [0.0], faces)), canvas)
    assert right[128:133, 165:180].any() and not right[128:133, 80:95].any()  # yaw > 0 points to the image's right
    assert left[128:133, 80:95].any() and not left[128:133, 165:180].any()
    up = _changed(annotate(canvas, Gaze([0.0], [0.6], faces)), canvas)
    assert up[101:115, 128:133].any()  # pitch > 0 points up
    cls = Classification([0.1, 0.7, 0.2], ["a", "b", "c"])
    assert _changed(annotate(canvas, cls), canvas)[:40, :80].any()
    np.testing.assert_array_equal(annotate(canvas, Embeddings(np.ones((1, 4)))), canvas)


def test_semantic_segmentation_colour_per_class_background_clear(canvas):
    from im_core import SemanticSegmentation

    cm = np.zeros((H, W), np.int64)
    cm[:100, :150] = 1
    cm[150:, 200:] = 2
    out = annotate(canvas, SemanticSegmentation(cm, None, ["background", "road", "car"], background_class_id=0))
    changed = _changed(out, canvas)
    assert changed[:100, :150].all() and changed[150:, 200:].all()
    assert not changed[cm == 0].any()  # background pixels untouched
    assert not np.array_equal(out[50, 50], out[200, 250])  # one colour per class

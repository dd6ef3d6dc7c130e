"""im-models: model families written once against im_core's Session protocol, for every backend.

Families are found by ``AutoModel`` through the ``im.models`` entry point; they can also be imported from here.
Importing this package is light: a family module (and cv2) is imported only when its class is first used.
The shared building blocks for family authors are in :mod:`im_models.common`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from im_core.sdk import lazy_exports
from im_models._manifest import ENTRIES

# class name -> module, derived from the manifest so the two cannot disagree (the TYPE_CHECKING block below is
# checked against it by tests/packaging/test_public_surface.py)
_FAMILIES: dict[str, str] = {e.target.split(":")[1]: e.target.split(":")[0] for e in ENTRIES}

__all__ = sorted(_FAMILIES)


__getattr__, __dir__ = lazy_exports(globals(), _FAMILIES)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from im_models.classification._classifier import ImageClassifier, MultiLabelImageClassifier
    from im_models.depth._depth_anything import DepthAnything
    from im_models.detr._detection import DETRDetection
    from im_models.detr._keypoints import DETRKeypoints
    from im_models.detr._segmentation import DETRSegmentation
    from im_models.embeddings._clip import CLIPModel
    from im_models.embeddings._dinov2 import DINOv2Embedder, DINOv2Probe, DINOv2ProbeMultiLabel
    from im_models.embeddings._image import ImageEmbedder
    from im_models.faces._blazeface import BlazeFaceDetector
    from im_models.faces._centerface import CenterFaceDetector
    from im_models.gaze._l2cs import L2CSGaze
    from im_models.ocr._angle import TextAngleClassifier
    from im_models.ocr._detection import DBTextDetector
    from im_models.ocr._recognition import CTCTextRecognizer
    from im_models.open_vocab._grounding_dino import GroundingDINODetector
    from im_models.open_vocab._owlv2 import OWLv2Detector
    from im_models.segment_anything._sam import SAMModel
    from im_models.segment_anything._sam2 import SAM2Model
    from im_models.segmentation._segformer import SegFormerSegmentation
    from im_models.segmentation._semantic import (
        DeepLabV3PlusSegmentation,
        RFDETRSemanticSegmentation,
        YOLO26SemanticSegmentation,
    )
    from im_models.segmentation._yolact import YOLACTSegmentation
    from im_models.yolo._classification import YOLOClassification
    from im_models.yolo._detection import YOLODetection
    from im_models.yolo._end_to_end import YOLOEndToEndDetection
    from im_models.yolo._obb import YOLOOrientedDetection
    from im_models.yolo._pose import YOLOPose
    from im_models.yolo._segmentation import YOLOSegmentation
    from im_models.yolo._yolonas import YOLONASDetection
    from im_models.yolo._yolov5 import YOLOv5Detection, YOLOv5Segmentation

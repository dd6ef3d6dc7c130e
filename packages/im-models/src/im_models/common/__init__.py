"""Pre- and post-processing shared by every model family (numpy; OpenCV is imported inside the functions that use it).

Configuration
    :class:`InferenceConfig`, :class:`NetworkInput`, :class:`StaticCrop`, :func:`parse_inference_config`
    (Roboflow ``inference_config.json``), :func:`ultralytics_config` (bare Ultralytics exports).
Pre-processing
    :func:`prepare_batch` (images → NCHW batch + one :class:`ImageTransform` each; letterbox / stretch /
    center-crop / static crop / rectangular inference / mixed sizes), :func:`target_size`,
    :func:`input_spatial_dynamic`.
Post-processing
    :func:`nms` (exact greedy, vectorised), :func:`box_iou`, :func:`top_k_positions`, :func:`xywh_to_xyxy`,
    :func:`resolve_detection_params` / :class:`DetectionParams` / :func:`select_detections` (thresholds, class
    filter, pre-NMS top-k, NMS, ``max_detections``), :func:`class_thresholds`, :func:`class_filter_mask`,
    :func:`check_params`.
Masks
    :func:`instance_masks` (prototypes × coefficients, only inside each box, dense or RLE),
    :func:`rle_from_box_mask`, :func:`box_pixel_bounds`.
"""

from im_models.common._candidates import top_k_positions
from im_models.common._config import (
    RESIZE_MODES,
    InferenceConfig,
    NetworkInput,
    StaticCrop,
    parse_inference_config,
    ultralytics_config,
)
from im_models.common._masks import MaskFormat, box_pixel_bounds, instance_masks, rle_from_box_mask
from im_models.common._nms import box_iou, nms
from im_models.common._postprocess import (
    DETECTION_PARAMS,
    DetectionParams,
    check_params,
    class_filter_mask,
    class_thresholds,
    resolve_detection_params,
    select_detections,
    xywh_to_xyxy,
)
from im_models.common._preprocess import ImageTransform, input_spatial_dynamic, prepare_batch, target_size

__all__ = [
    "DETECTION_PARAMS",
    "RESIZE_MODES",
    "DetectionParams",
    "ImageTransform",
    "InferenceConfig",
    "MaskFormat",
    "NetworkInput",
    "StaticCrop",
    "box_iou",
    "box_pixel_bounds",
    "check_params",
    "class_filter_mask",
    "class_thresholds",
    "input_spatial_dynamic",
    "instance_masks",
    "nms",
    "parse_inference_config",
    "prepare_batch",
    "resolve_detection_params",
    "rle_from_box_mask",
    "select_detections",
    "target_size",
    "top_k_positions",
    "ultralytics_config",
    "xywh_to_xyxy",
]

"""Pre- and post-processing shared by every model family (numpy; OpenCV is imported inside the functions that use it).

Configuration
    :class:`InferenceConfig`, :class:`NetworkInput`, :class:`StaticCrop`, :func:`parse_inference_config`
    (Roboflow ``inference_config.json``), :func:`ultralytics_config` (bare Ultralytics exports).
Pre-processing
    :func:`prepare_batch` (images → NCHW batch + one :class:`ImageTransform` each; letterbox / stretch /
    center-crop / static crop / rectangular inference / mixed sizes), :func:`target_size`,
    :func:`canvas_size` (the canvas one image gets alone: a family's ``Model.canvas_key``),
    :func:`input_spatial_dynamic`.
Post-processing
    :func:`nms` (exact greedy, vectorised), :func:`box_iou`, :func:`rotated_nms` / :func:`probiou` /
    :func:`xywhr_to_corners` (oriented boxes, as Ultralytics suppresses them), :func:`top_k_positions`,
    :func:`xywh_to_xyxy`,
    :func:`resolve_detection_params` / :class:`DetectionParams` / :func:`select_detections` (thresholds, class
    filter, pre-NMS top-k, NMS, ``max_detections``), :func:`class_thresholds`, :func:`class_filter_mask`,
    :data:`DETECTION_PARAMS` (the call parameters every detector takes, for its ``Model.CALL_PARAMS``).
Arrays and activations
    :func:`to_numpy`, :func:`is_torch_tensor`, :func:`array_ops` (the same reductions on numpy or torch),
    :func:`sigmoid`, :func:`softmax`, :func:`as_probabilities`; candidate selection where the data lives:
    :func:`best_class`, :func:`filter_candidates`, :func:`top_pairs`, :func:`suppress`.
Packages
    :func:`load_detector_package` / :class:`DetectorPackage` (Roboflow layout or bare Ultralytics export → session,
    pre-processing config, class names), :func:`pre_process_images`, :func:`canvas_key_of`, :func:`run_session`,
    :class:`Prepared`, :func:`resolve_class_names`, :func:`class_count_error`, :func:`static_dim`,
    :func:`recommended_parameters`, :func:`substitute_fit_longer_edge`.
    (Which network file to load and the class names come from core: ``ctx.network_file()``,
    ``ctx.class_names(session)``.)
Package files
    :func:`parse_keypoints_metadata` (keypoint names and skeleton per object class),
    :func:`class_names_remapping` (``class_names_operations``), :func:`adjust_images` (the grayscale and contrast
    steps of ``image_pre_processing``).
Resizing
Crops
    :func:`crop_boxes` (boxes widened by a margin, e.g. faces), :func:`crop_quads`, :func:`order_quads`.
Hugging Face parity
    :func:`resize_like_pil` (resize as transformers' image processors do: Pillow, antialiased), :data:`PIL_RESAMPLE`;
    :func:`resize_like_torch` (maps resized as ``torch.nn.functional.interpolate``, bilinear or bicubic,
    ``align_corners=False``: the processors' post-processing); :func:`hf_image_processor_config` (a folder's
    image-processor settings, in either file layout).
Masks
    :func:`instance_masks` (prototypes × coefficients, only inside each box, dense or RLE),
    :func:`rle_from_box_mask`, :func:`box_pixel_bounds`; :func:`full_masks` (per-detection mask logits over the
    whole input, RF-DETR) and :func:`maps_to_original` (logit maps → original pixels).
"""

from im_models.common._activations import as_probabilities, sigmoid, softmax
from im_models.common._adjust import adjust_images
from im_models.common._arrays import array_ops, is_torch_tensor, to_numpy
from im_models.common._candidates import best_class, filter_candidates, top_k_positions, top_pairs
from im_models.common._config import (
    RESIZE_MODES,
    InferenceConfig,
    NetworkInput,
    StaticCrop,
    class_names_remapping,
    parse_inference_config,
    parse_keypoints_metadata,
    ultralytics_config,
)
from im_models.common._crops import crop_boxes, crop_quads, order_quads
from im_models.common._detector_package import (
    DetectorPackage,
    Prepared,
    canvas_key_of,
    class_count_error,
    load_detector_package,
    pre_process_images,
    resolve_class_names,
    run_session,
    static_dim,
    substitute_fit_longer_edge,
)
from im_models.common._hf_config import hf_image_processor_config
from im_models.common._masks import (
    MaskFormat,
    box_pixel_bounds,
    full_masks,
    instance_masks,
    maps_to_original,
    rle_from_box_mask,
)
from im_models.common._model_file import recommended_parameters
from im_models.common._nms import box_iou, nms
from im_models.common._pil_resize import PIL_RESAMPLE, resize_like_pil
from im_models.common._postprocess import (
    DETECTION_PARAMS,
    DetectionParams,
    class_filter_mask,
    class_thresholds,
    resolve_detection_params,
    select_detections,
    suppress,
    xywh_to_xyxy,
)
from im_models.common._preprocess import (
    ImageTransform,
    canvas_size,
    input_spatial_dynamic,
    prepare_batch,
    target_size,
)
from im_models.common._rotated import probiou, rotated_nms, xywhr_to_corners
from im_models.common._torch_resize import TorchResizeMode, resize_like_torch

__all__ = [
    "DETECTION_PARAMS",
    "PIL_RESAMPLE",
    "DetectionParams",
    "DetectorPackage",
    "ImageTransform",
    "InferenceConfig",
    "MaskFormat",
    "NetworkInput",
    "Prepared",
    "RESIZE_MODES",
    "StaticCrop",
    "TorchResizeMode",
    "adjust_images",
    "array_ops",
    "as_probabilities",
    "best_class",
    "box_iou",
    "box_pixel_bounds",
    "canvas_key_of",
    "canvas_size",
    "class_count_error",
    "class_filter_mask",
    "class_names_remapping",
    "class_thresholds",
    "crop_boxes",
    "crop_quads",
    "filter_candidates",
    "input_spatial_dynamic",
    "full_masks",
    "hf_image_processor_config",
    "instance_masks",
    "is_torch_tensor",
    "load_detector_package",
    "maps_to_original",
    "nms",
    "order_quads",
    "parse_inference_config",
    "parse_keypoints_metadata",
    "pre_process_images",
    "probiou",
    "prepare_batch",
    "recommended_parameters",
    "resolve_class_names",
    "resolve_detection_params",
    "resize_like_pil",
    "resize_like_torch",
    "rle_from_box_mask",
    "rotated_nms",
    "run_session",
    "select_detections",
    "sigmoid",
    "softmax",
    "static_dim",
    "substitute_fit_longer_edge",
    "suppress",
    "target_size",
    "to_numpy",
    "top_k_positions",
    "top_pairs",
    "ultralytics_config",
    "xywh_to_xyxy",
    "xywhr_to_corners",
]

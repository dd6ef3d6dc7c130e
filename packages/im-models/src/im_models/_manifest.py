"""Entry-point manifest of the built-in model families: strings only, nothing is imported here.

Each entry maps ``(architectures, task)`` to the family class that implements it once, for every backend.
"""

from im_core import ModelEntry, ModelsManifest

_ULTRALYTICS = ("yolov8", "yolo11", "yolov11", "yolo12", "yolov12", "ultralytics")
_YOLO_FEATURES = frozenset({"nms_fused", "ultralytics"})
# RF-DETR packages describe their architecture in model features (inference-models' registry accepts these)
_RFDETR = ("rfdetr", "rf-detr")
_RFDETR_FEATURES = frozenset({"resolution", "patch_size", "num_windows", "dec_layers", "num_queries", "num_select"})

ENTRIES = (
    # YOLO family, Ultralytics export layout (issue: model families I). Features: "ultralytics" = export metadata
    # sniffed from a bare file; "nms_fused" = NMS inside the graph / end-to-end head.
    ModelEntry(_ULTRALYTICS, "object-detection", "im_models.yolo._detection:YOLODetection", features=_YOLO_FEATURES),
    ModelEntry(
        _ULTRALYTICS,
        "instance-segmentation",
        "im_models.yolo._segmentation:YOLOSegmentation",
        features=_YOLO_FEATURES,
    ),
    ModelEntry(_ULTRALYTICS, "keypoint-detection", "im_models.yolo._pose:YOLOPose", features=_YOLO_FEATURES),
    ModelEntry(
        _ULTRALYTICS, "classification", "im_models.yolo._classification:YOLOClassification", features=_YOLO_FEATURES
    ),
    # Ultralytics -obb exports (YOLOv8/11 OBB, YOLO26 OBB): rotated boxes; the output layout picks the decoder
    ModelEntry(
        (*_ULTRALYTICS, "yolo26"),
        "oriented-object-detection",
        "im_models.yolo._obb:YOLOOrientedDetection",
        features=_YOLO_FEATURES,
    ),
    # YOLOv9 exports carry the v8 (anchor-free, DFL) head: the Ultralytics families read them
    ModelEntry(("yolov9",), "object-detection", "im_models.yolo._detection:YOLODetection", features=_YOLO_FEATURES),
    ModelEntry(("yolov5",), "object-detection", "im_models.yolo._yolov5:YOLOv5Detection", features=_YOLO_FEATURES),
    # YOLOv5-seg and YOLOv7-seg: rows with objectness, then mask coefficients; prototypes as the v8 layout
    ModelEntry(
        ("yolov5", "yolov7"),
        "instance-segmentation",
        "im_models.yolo._yolov5:YOLOv5Segmentation",
        features=_YOLO_FEATURES,
    ),
    ModelEntry(
        ("yolov10", "yolo26"),
        "object-detection",
        "im_models.yolo._end_to_end:YOLOEndToEndDetection",
        features=_YOLO_FEATURES,
    ),
    ModelEntry(("detr",), "object-detection", "im_models.detr._detection:DETRDetection"),
    ModelEntry(_RFDETR, "object-detection", "im_models.detr._detection:DETRDetection", features=_RFDETR_FEATURES),
    ModelEntry(
        _RFDETR, "instance-segmentation", "im_models.detr._segmentation:DETRSegmentation", features=_RFDETR_FEATURES
    ),
    ModelEntry(_RFDETR, "keypoint-detection", "im_models.detr._keypoints:DETRKeypoints", features=_RFDETR_FEATURES),
    ModelEntry(
        _RFDETR,
        "semantic-segmentation",
        "im_models.segmentation._semantic:RFDETRSemanticSegmentation",
        features=_RFDETR_FEATURES,
    ),
    ModelEntry(
        ("deep-lab-v3-plus", "deeplabv3plus"),
        "semantic-segmentation",
        "im_models.segmentation._semantic:DeepLabV3PlusSegmentation",
    ),
    ModelEntry(
        ("yolonas", "yolo-nas"),
        "object-detection",
        "im_models.yolo._yolonas:YOLONASDetection",
        features=frozenset({"nms_fused"}),
    ),
    ModelEntry(("yolo26",), "semantic-segmentation", "im_models.segmentation._semantic:YOLO26SemanticSegmentation"),
    ModelEntry(("yolact",), "instance-segmentation", "im_models.segmentation._yolact:YOLACTSegmentation"),
    # YOLO26 / YOLOv10 segmentation and pose: the Ultralytics families, which decode end-to-end rows or one-to-many
    # columns as the output's layout says
    ModelEntry(
        ("yolov10", "yolo26"),
        "instance-segmentation",
        "im_models.yolo._segmentation:YOLOSegmentation",
        features=_YOLO_FEATURES,
    ),
    ModelEntry(("yolov10", "yolo26"), "keypoint-detection", "im_models.yolo._pose:YOLOPose", features=_YOLO_FEATURES),
    # Model families II: faces, OCR, classification, embeddings, gaze
    ModelEntry(
        ("mediapipe-face-detector", "blazeface"), "object-detection", "im_models.faces._blazeface:BlazeFaceDetector"
    ),
    ModelEntry(("centerface",), "object-detection", "im_models.faces._centerface:CenterFaceDetector"),
    ModelEntry(("pp-ocr-det", "db-text-detector"), "text-detection", "im_models.ocr._detection:DBTextDetector"),
    ModelEntry(
        ("pp-ocr-rec", "ctc-text-recognizer"), "text-recognition", "im_models.ocr._recognition:CTCTextRecognizer"
    ),
    ModelEntry(("pp-ocr-cls", "text-angle-classifier"), "classification", "im_models.ocr._angle:TextAngleClassifier"),
    ModelEntry(
        ("image-classifier", "resnet", "mobilenet", "pp-lcnet", "vit"),
        "classification",
        "im_models.classification._classifier:ImageClassifier",
    ),
    ModelEntry(
        ("image-classifier", "resnet", "mobilenet", "pp-lcnet", "vit"),
        "multi-label-classification",
        "im_models.classification._classifier:MultiLabelImageClassifier",
    ),
    ModelEntry(
        ("image-embedder", "mobilenetv2-backbone", "resnet-backbone"),
        "embedding",
        "im_models.embeddings._image:ImageEmbedder",
    ),
    ModelEntry(("clip",), "embedding", "im_models.embeddings._clip:CLIPModel"),
    ModelEntry(("sam",), "promptable-segmentation", "im_models.segment_anything._sam:SAMModel"),
    ModelEntry(("sam2",), "promptable-segmentation", "im_models.segment_anything._sam2:SAM2Model"),
    ModelEntry(("owlv2",), "open-vocabulary-object-detection", "im_models.open_vocab._owlv2:OWLv2Detector"),
    ModelEntry(
        ("grounding-dino",),
        "open-vocabulary-object-detection",
        "im_models.open_vocab._grounding_dino:GroundingDINODetector",
    ),
    ModelEntry(("dinov2", "dinov3"), "embedding", "im_models.embeddings._dinov2:DINOv2Embedder"),
    ModelEntry(("dinov2-probe", "dinov3-probe"), "classification", "im_models.embeddings._dinov2:DINOv2Probe"),
    ModelEntry(
        ("dinov2-probe", "dinov3-probe"),
        "multi-label-classification",
        "im_models.embeddings._dinov2:DINOv2ProbeMultiLabel",
    ),
    ModelEntry(("l2cs-net", "l2cs"), "gaze-estimation", "im_models.gaze._l2cs:L2CSGaze"),
    # Hugging Face folders (transformers backend) and the packages `im export` writes from them
    ModelEntry(
        ("depth-anything", "depth-anything-v2", "depth-anything-v3"),
        "depth-estimation",
        "im_models.depth._depth_anything:DepthAnything",
    ),
    ModelEntry(("segformer",), "semantic-segmentation", "im_models.segmentation._segformer:SegFormerSegmentation"),
    # The same families under the architecture and task names of Roboflow's registry (inference-models): the
    # results are im's own (Detections with data["polygon"], TextRecognition, Gaze), the task name is theirs.
    ModelEntry(("pp-ocrv6-det",), "object-detection", "im_models.ocr._detection:DBTextDetector"),
    ModelEntry(("pp-ocrv6-det",), "text-detection", "im_models.ocr._detection:DBTextDetector"),
    ModelEntry(("pp-ocrv6-rec",), "text-only-ocr", "im_models.ocr._recognition:CTCTextRecognizer"),
    ModelEntry(("pp-ocrv6-rec",), "text-recognition", "im_models.ocr._recognition:CTCTextRecognizer"),
    ModelEntry(("l2cs-net",), "gaze-detection", "im_models.gaze._l2cs:L2CSGaze"),
    # dinov3_probe ONNX packages (weights.onnx: backbone + linear layer → logits, inference_config.json with a
    # softmax post-processing, class_names.txt) are image classifiers
    ModelEntry(("dinov3_probe",), "classification", "im_models.classification._classifier:ImageClassifier"),
    ModelEntry(
        ("dinov3_probe",),
        "multi-label-classification",
        "im_models.classification._classifier:MultiLabelImageClassifier",
    ),
)

MANIFEST = ModelsManifest(
    entries=ENTRIES,
    distribution="im-models",
    sniffers=("im_models.yolo._sniff:sniff_ultralytics", "im_models.hf._sniff:sniff_hf_config"),
)

"""Entry-point manifest of the built-in pipelines (strings only; nothing is imported here)."""

from im_core import PipelineEntry, PipelinesManifest

#: the models Roboflow's registry names for its PP-OCRv6 pipeline (inference-models' ``pp-ocrv6`` defaults)
OCR_DEFAULT_MODELS = ("pp-ocrv6-det/small", "pp-ocrv6-rec/small")

MANIFEST = PipelinesManifest(
    entries=(
        PipelineEntry(
            name="ocr",
            target="im_pipelines._builtin:OCRPipeline",
            default_models=OCR_DEFAULT_MODELS,
            description="text detection → angle classification (optional) → text recognition",
        ),
        PipelineEntry(  # the pipeline id inference-models users know
            name="pp-ocrv6",
            target="im_pipelines._builtin:OCRPipeline",
            default_models=OCR_DEFAULT_MODELS,
            description="alias of 'ocr' (inference-models' pipeline id)",
        ),
        PipelineEntry(
            name="face-gaze",
            target="im_pipelines._builtin:FaceGazePipeline",
            description="face detection → gaze (yaw, pitch) of each face",
        ),
        PipelineEntry(
            name="detect-and-segment",
            target="im_pipelines._segment:DetectAndSegmentPipeline",
            description="any object detector's boxes → a SAM mask per box (Detections with masks)",
        ),
        PipelineEntry(
            name="open-vocabulary-detect-and-segment",
            target="im_pipelines._segment:OpenVocabularyDetectAndSegmentPipeline",
            description="text queries → open-vocabulary detector (OWLv2, Grounding DINO) → a SAM mask per box",
        ),
        PipelineEntry(
            name="detect-and-classify",
            target="im_pipelines._classify:DetectAndClassifyPipeline",
            description="object detection → a class for each box's crop (CLIP zero-shot labels, or a classifier)",
        ),
    ),
    distribution="im-pipelines",
)

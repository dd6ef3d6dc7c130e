"""Entry-point manifest of the built-in pipelines (strings only; nothing is imported here)."""

from im_core import PipelineEntry, PipelinesManifest

MANIFEST = PipelinesManifest(
    entries=(
        PipelineEntry(
            name="ocr",
            target="im_pipelines._builtin:OCRPipeline",
            description="text detection → angle classification (optional) → text recognition",
        ),
        PipelineEntry(
            name="face-gaze",
            target="im_pipelines._builtin:FaceGazePipeline",
            description="face detection → gaze (yaw, pitch) of each face",
        ),
    ),
    distribution="im-pipelines",
)

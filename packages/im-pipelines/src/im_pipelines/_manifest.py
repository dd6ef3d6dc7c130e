"""Entry-point manifest of the built-in pipelines (none yet: AutoModelPipeline is a later issue)."""

from im_core import PipelinesManifest

MANIFEST = PipelinesManifest(entries=(), distribution="im-pipelines")

"""Open-vocabulary object detection: OWLv2 and Grounding DINO, with text queries given per call
(``model(image, classes=["a cat", "remote control"])``) and :class:`~im_core.Detections` named by the queries.

The families are loaded through ``AutoModel`` (entries in :mod:`im_models._manifest`); nothing here is imported
with ``im_models``.
"""

"""Open-vocabulary object detection: the classes are text queries given with each call.

A family of this task takes ``classes=["a cat", "remote control"]`` in every call and returns
:class:`~im_core.Detections` whose ``class_names`` are those queries and whose ``class_id`` is the index of the
matching query::

    model = AutoModel.from_pretrained("path/to/owlv2")
    detections = model(image, classes=["a cat", "remote control"], confidence=0.2)
"""

from __future__ import annotations

from im_core._results import Detections
from im_core._tasks import Model

__all__ = ["OpenVocabularyDetectionModel"]


class OpenVocabularyDetectionModel(Model[Detections]):
    """Base of the open-vocabulary detectors (OWLv2, Grounding DINO): ``model(image, classes=[...])``.

    ``model.class_names`` is empty: a call's classes are its own, and each result's ``class_names`` holds them.
    """

    task = "open-vocabulary-object-detection"

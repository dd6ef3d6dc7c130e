"""CTC text recogniser (PaddleOCR ``rec``) and, with a detector dependency, an end-to-end page reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_core import Image, LoadedModelInfo, PackageContext, Session, TextLine, TextRecognition, TextRecognitionModel
from im_core.errors import DependencyModelError
from im_models.common import crop_quads, model_file, to_numpy
from im_models.ocr._config import settings
from im_models.ocr._ctc import CTCAlphabet, greedy_decode, load_alphabet
from im_models.ocr._lines import batch_width, line_batch

__all__ = ["CTCTextRecognizer"]

_DEFAULTS: dict[str, Any] = {
    "image_height": 48,  # network input height (read from the graph when fixed)
    "base_width": 320,  # narrowest canvas a batch is padded to (PaddleOCR's rec_image_shape width)
    "max_width": 3200,  # widest canvas; longer lines are squeezed into it
    "recognition_batch_size": 8,  # crops per network call, grouped by aspect ratio (not from_pretrained's batch_size)
    "confidence": 0.5,  # lines decoded with a lower mean confidence are dropped (PaddleOCR's drop_score)
}
_RENAMED = {"batch_size": "recognition_batch_size"}  # older ocr_config.json key


@dataclass
class _Prepared:
    """Text-line crops (BGR) and where they came from.

    Attributes:
        crops: the crops to read, one per text line.
        owner: int (K,) index of the input image each crop belongs to.
        polygons: float32 (K, 4, 2) outline of each crop in its image's pixels.
        n_images: number of input images.
        texts / confidence: filled by ``forward``: K strings and float32 (K,) mean character confidence.
    """

    crops: list[np.ndarray]
    owner: np.ndarray
    polygons: np.ndarray
    n_images: int
    texts: list[str] = field(default_factory=list)
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _whole_image_polygon(image: Image) -> np.ndarray:
    w, h = float(image.width), float(image.height)
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


class CTCTextRecognizer(TextRecognitionModel):
    """Reads text with a CTC recogniser (input (N, 3, 48, W) BGR in [-1, 1], output (N, T, C) class scores).

    Without dependencies, each input image is one text line (a crop) and gives a :class:`TextRecognition` with
    at most one line (none when nothing legible is found, e.g. a blank or 1-px-wide crop). With a
    ``text_detector`` dependency (a :class:`~im_models.ocr._detection.DBTextDetector`) and optionally an
    ``angle_classifier`` (:class:`~im_models.ocr._angle.TextAngleClassifier`), each input is a page: lines are
    detected, cut out with a perspective warp (tall crops turned 90°), turned 180° where the classifier says so,
    read, and returned in reading order with their polygons.

    Crops are batched by aspect ratio: sorted by width/height, grouped ``recognition_batch_size`` at a time, each
    group padded on the right to its widest member (at least ``base_width``), so short lines are not padded to the
    longest one.
    The character dictionary comes from a package file (``characters.txt``…) or the model's ``character``
    metadata; decoding is greedy (best path) and a line's confidence is its mean per-character probability.

    Call parameter: ``confidence`` (lines below it are dropped).
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset(_DEFAULTS)
    CALL_PARAMS = {"confidence": "post"}

    def __init__(
        self,
        session: Session,
        info: LoadedModelInfo,
        alphabet: CTCAlphabet,
        config: dict[str, Any],
        text_detector: Any = None,
        angle_classifier: Any = None,
    ) -> None:
        self.session = session
        self.metadata = info
        self.alphabet = alphabet
        self.text_detector = text_detector
        self.angle_classifier = angle_classifier
        self._input = session.inputs[0].name
        self._output = session.outputs[0].name
        shape = session.inputs[0].shape
        self._height = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else int(config["image_height"])
        fixed_width = shape[3] if len(shape) == 4 and isinstance(shape[3], int) else None
        self._fixed_width: int | None = fixed_width
        self._base_width = int(config["base_width"])
        self._max_width = int(config["max_width"])
        self._batch = max(1, int(config["recognition_batch_size"]))
        self._confidence = float(config["confidence"])

    @classmethod
    def from_package(cls, ctx: PackageContext) -> CTCTextRecognizer:
        config = settings(ctx, _DEFAULTS, _RENAMED)
        session = ctx.load_session(model_file(ctx))
        classes = session.outputs[0].shape[-1] if session.outputs and session.outputs[0].shape else None
        alphabet = load_alphabet(ctx, session, classes if isinstance(classes, int) else None)
        detector = ctx.dependencies.get("text_detector")
        classifier = ctx.dependencies.get("angle_classifier")
        if classifier is not None and detector is None:
            raise DependencyModelError(
                f"{ctx.model_id!r} has an 'angle_classifier' dependency but no 'text_detector' to find lines with."
            )
        return cls(session, ctx.info(), alphabet, config, detector, classifier)

    def with_reader(self, text_detector: Any, angle_classifier: Any = None) -> CTCTextRecognizer:
        """A page reader sharing this recogniser's session: lines found by ``text_detector`` (and turned upright by
        ``angle_classifier``, optional) are cut out and read (used by the ``ocr`` pipeline)."""
        import copy

        reader = copy.copy(self)
        reader.text_detector = text_detector
        reader.angle_classifier = angle_classifier
        return reader

    # -- recognition of crops -------------------------------------------------------------------------------------

    def recognize_crops(self, crops: Sequence[np.ndarray]) -> tuple[list[str], np.ndarray]:
        """Read text-line crops (HWC uint8, BGR).

        Returns:
            ``(texts, confidence)``: one string per crop and float32 (N,) mean character probabilities.
        """
        n = len(crops)
        texts: list[str] = [""] * n
        confidence = np.zeros(n, np.float32)
        if n == 0:
            return texts, confidence
        shapes = np.array([c.shape[:2] for c in crops], np.float64)
        ratios = shapes[:, 1] / np.maximum(shapes[:, 0], 1.0)
        order = np.argsort(ratios, kind="stable")
        for start in range(0, n, self._batch):
            chunk = order[start : start + self._batch]
            width = self._fixed_width or min(
                batch_width(ratios[chunk], self._height, self._base_width), self._max_width
            )
            tensor = line_batch([crops[i] for i in chunk], self._height, width)
            scores = self.session.run({self._input: tensor}, [self._output])[self._output]
            chunk_texts, chunk_conf = greedy_decode(to_numpy(scores), self.alphabet)
            for i, text in zip(chunk.tolist(), chunk_texts):
                texts[i] = text.strip()
            confidence[chunk] = chunk_conf
        return texts, confidence

    # -- Model stages ---------------------------------------------------------------------------------------------

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        if self.text_detector is None:
            crops = [im.to("bgr") for im in images]
            polygons = np.stack([_whole_image_polygon(im) for im in images])
            return _Prepared(crops, np.arange(len(images)), polygons, len(images))
        detections = self.text_detector.run_images(images)
        crops: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        polygons: list[np.ndarray] = []
        for i, (im, det) in enumerate(zip(images, detections)):
            quads = np.asarray(det.data["polygon"], np.float32).reshape(-1, 4, 2)
            cut = crop_quads(im.pixels, quads)  # warp the original pixels, fix channel order on the small crops
            crops += cut if im.color == "bgr" else [c[..., ::-1] for c in cut]
            owners.append(np.full(len(quads), i, np.int64))
            polygons.append(quads)
        if self.angle_classifier is not None and crops:
            flip = self.angle_classifier.upside_down(crops)
            crops = [c[::-1, ::-1] if f else c for c, f in zip(crops, flip.tolist())]
        return _Prepared(crops, np.concatenate(owners), np.concatenate(polygons), len(images))

    def forward(self, prepared: _Prepared) -> _Prepared:
        prepared.texts, prepared.confidence = self.recognize_crops(prepared.crops)
        return prepared

    def post_process(self, raw: _Prepared, prepared: _Prepared, **params: Any) -> list[TextRecognition]:
        threshold = float(params.get("confidence", self._confidence))
        keep = (raw.confidence >= threshold) & np.array([bool(t) for t in raw.texts], bool).reshape(-1)
        results = [TextRecognition() for _ in range(raw.n_images)]
        for k in np.flatnonzero(keep).tolist():  # crops are already in reading order per image
            line = TextLine(raw.texts[k], float(raw.confidence[k]), raw.polygons[k])
            results[int(raw.owner[k])].lines.append(line)
        return results

"""CTC text recogniser (PaddleOCR ``rec``): reads the text lines it is given (finding them on a page is the ``ocr``
pipeline's job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from im_core import Image, LoadedModelInfo, PackageContext, Session, TextLine, TextRecognition, TextRecognitionModel
from im_core.errors import DependencyModelError, InvalidParameterError
from im_models.common import crop_quads, to_numpy
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
#: dependencies this family used to run inside its pre-processing; the ``ocr`` pipeline chains them now
_PIPELINE_ROLES = ("text_detector", "angle_classifier")
_PIPELINE_HINT = (
    "Read pages with the 'ocr' pipeline, which detects the lines, turns them upright and has them read: "
    "AutoModelPipeline.from_pretrained('ocr', models_parameters=[text_detector, text_recognizer, angle_classifier]) "
    "(im_pipelines), or OCRPipeline.from_models([...]) with loaded models."
)


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


def _as_array(value: Any) -> np.ndarray | None:
    try:
        return np.asarray(value, np.float32)
    except (TypeError, ValueError):  # ragged nesting, or not numbers
        return None


def _quads(value: Any, where: str) -> np.ndarray:
    """``value`` as float32 (N, 4, 2) quadrilaterals (an empty value: none)."""
    quads = _as_array(value)
    if quads is not None and quads.size == 0:
        return np.zeros((0, 4, 2), np.float32)
    if quads is None or quads.ndim != 3 or quads.shape[1:] != (4, 2):
        shape = "unreadable" if quads is None else f"shape {list(quads.shape)}"
        raise InvalidParameterError(
            f"polygons{where} must be (N, 4, 2) quadrilaterals (corners top-left, top-right, bottom-right, "
            f"bottom-left, in image pixels), got {shape}."
        )
    return quads


def _polygons_per_image(polygons: Any, n_images: int) -> list[np.ndarray]:
    """The ``polygons`` call parameter as one float32 (N_i, 4, 2) array per image: for one image an (N, 4, 2)
    array (or nested lists), for several a sequence with one such entry per image."""
    single = _as_array(polygons)
    if n_images == 1 and single is not None and (single.ndim == 3 or single.size == 0):
        return [_quads(single, "")]
    sequence = isinstance(polygons, (list, tuple, np.ndarray))
    one_image = single is not None and single.ndim == 3  # the quadrilaterals of one image, for several images
    if not sequence or len(polygons) != n_images or one_image:
        if one_image:
            given = "the (N, 4, 2) quadrilaterals of one image"
        else:
            given = f"{len(polygons)} entries" if sequence else f"a {type(polygons).__name__}"
        raise InvalidParameterError(
            f"polygons must hold one (N, 4, 2) array of quadrilaterals per image: {n_images} image(s) were given "
            f"and {given}."
        )
    return [_quads(p, f"[{i}]") for i, p in enumerate(polygons)]


class CTCTextRecognizer(TextRecognitionModel):
    """Reads text lines with a CTC recogniser (input (N, 3, 48, W) BGR in [-1, 1], output (N, T, C) class scores).

    Each input image is one text line (a crop) and gives a :class:`TextRecognition` with at most one line (none
    when nothing legible is found, e.g. a blank or 1-px-wide crop). With the ``polygons`` call parameter, the lines
    are quadrilaterals of each image instead: each is cut out with a perspective warp (tall crops turned 90°) and
    read, and the result lists the lines read, in the order given, with their polygons. Finding the lines on a page
    (and turning upside-down ones upright) is the ``ocr`` pipeline's job (``im_pipelines.OCRPipeline``).

    Crops are batched by aspect ratio: sorted by width/height, grouped ``recognition_batch_size`` at a time, each
    group padded on the right to its widest member (at least ``base_width``), so short lines are not padded to the
    longest one. The character dictionary comes from a package file (``characters.txt``…) or the model's
    ``character`` metadata; decoding is greedy (best path) and a line's confidence is its mean per-character
    probability.

    Call parameters: ``confidence`` (lines below it are dropped); ``polygons``: for one image, float (N, 4, 2)
    quadrilaterals (corners top-left, top-right, bottom-right, bottom-left, in image pixels); for a list of
    images, a list with one such array per image.
    """

    #: keyword arguments of ``from_pretrained`` this family reads when it is built
    LOAD_OPTIONS = frozenset(_DEFAULTS)
    CALL_PARAMS = {"polygons": "pre", "confidence": "post"}

    def __init__(self, session: Session, info: LoadedModelInfo, alphabet: CTCAlphabet, config: dict[str, Any]) -> None:
        self.session = session
        self.metadata = info
        self.alphabet = alphabet
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
        chained = sorted(set(ctx.dependencies) & set(_PIPELINE_ROLES))
        if chained:
            raise DependencyModelError(
                f"{ctx.model_id!r} declares the dependencies {chained}, but the CTC text recogniser reads the text "
                f"lines it is given; it no longer runs a detector itself. {_PIPELINE_HINT}"
            )
        config = settings(ctx, _DEFAULTS, _RENAMED)
        session = ctx.load_session(ctx.network_file())
        classes = session.outputs[0].shape[-1] if session.outputs and session.outputs[0].shape else None
        alphabet = load_alphabet(ctx, session, classes if isinstance(classes, int) else None)
        return cls(session, ctx.info(), alphabet, config)

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
        # Batches never change answers: each crop gets the canvas width it gets alone (the base width, or wider
        # for a long line, up to the maximum), and only crops of the same width share a batch. Padding a crop to
        # the widest line of its chunk (PaddleOCR's way) would make its text depend on the other crops.
        if self._fixed_width:
            widths = np.full(n, self._fixed_width, np.int64)
        else:
            widths = np.array(
                [
                    min(batch_width(ratios[i : i + 1], self._height, self._base_width), self._max_width)
                    for i in range(n)
                ],
                np.int64,
            )
        order = np.lexsort((ratios, widths))  # by width, then aspect ratio: groups are contiguous
        for width in np.unique(widths).tolist():
            group = order[widths[order] == width]
            for start in range(0, len(group), self._batch):
                chunk = group[start : start + self._batch]
                tensor = line_batch([crops[i] for i in chunk], self._height, int(width))
                scores = self.session.run({self._input: tensor}, [self._output])[self._output]
                chunk_texts, chunk_conf = greedy_decode(to_numpy(scores), self.alphabet)
                for i, text in zip(chunk.tolist(), chunk_texts):
                    texts[i] = text.strip()
                confidence[chunk] = chunk_conf
        return texts, confidence

    # -- Model stages ---------------------------------------------------------------------------------------------

    def canvas_key(self, image: Image, **params: Any) -> None:
        # ``polygons`` is given per image, so the images stay one batch; the crops are batched in ``forward``
        return None

    def pre_process(self, images: list[Image], **params: Any) -> _Prepared:
        polygons = params.get("polygons")
        if polygons is None:
            crops = [im.to("bgr") for im in images]
            quads = np.stack([_whole_image_polygon(im) for im in images])
            return _Prepared(crops, np.arange(len(images)), quads, len(images))
        crops = []
        owners: list[np.ndarray] = []
        per_image = _polygons_per_image(polygons, len(images))
        for i, (im, quads) in enumerate(zip(images, per_image)):
            cut = crop_quads(im.pixels, quads)  # warp the original pixels, fix channel order on the small crops
            crops += cut if im.color == "bgr" else [c[..., ::-1] for c in cut]
            owners.append(np.full(len(quads), i, np.int64))
        return _Prepared(crops, np.concatenate(owners), np.concatenate(per_image), len(images))

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

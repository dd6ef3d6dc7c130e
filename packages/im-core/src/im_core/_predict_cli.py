"""``im predict`` and ``im pipeline``: run a model (or a pipeline) over files, folders, globs and videos.

Output streams, so that results can be piped: with ``--json`` stdout carries exactly one JSON object per image (or
video frame) and nothing else; everything meant for people (the model, the results as text, the speed of each image,
the progress bar, warnings and logs) goes to stderr. Without ``--json`` the results as text go to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from im_core._images import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "pipeline_command",
    "predict_command",
    "resolve_inputs",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm", ".pnm"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
_SAVE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

Handler = Callable[[argparse.Namespace], int]
Speed = dict[str, float]


# -- inputs: files, folders, globs, videos -----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: str
    video: bool


@dataclass
class Item:
    """One image to run: a file, or a frame of a video (``frame`` set); ``error`` when it could not be read."""

    source: str
    frame: int | None = None
    image: Image | None = None
    error: str | None = None


def resolve_inputs(specs: Sequence[str]) -> list[Source]:
    """Files, folders (their images and videos, sorted, not recursive) and glob patterns (``**`` recurses) → sources.

    Raises:
        ModelInputError: an input that is a URL, matches nothing, or a folder without images.
    """
    from im_core._images import _is_url
    from im_core.errors import ModelInputError

    out: list[Source] = []
    for spec in specs:
        path = Path(spec)
        if _is_url(spec) and not path.exists():
            raise ModelInputError(
                f"{spec!r} is a URL; im does not fetch images over the network. Download it first "
                f"(e.g. curl -o image.jpg '{spec}') and pass the file."
            )
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _kind(p) is not None)
            if not found:
                raise ModelInputError(
                    f"Folder {spec!r} holds no images or videos (suffixes: {', '.join(sorted(IMAGE_SUFFIXES))}, "
                    f"{', '.join(sorted(VIDEO_SUFFIXES))})."
                )
            out += [Source(str(p), _kind(p) == "video") for p in found]
        elif path.is_file():
            out.append(Source(spec, path.suffix.lower() in VIDEO_SUFFIXES))
        elif glob.has_magic(spec):
            matches = sorted(m for m in glob.glob(spec, recursive=True) if os.path.isfile(m))
            matches = [m for m in matches if _kind(Path(m)) is not None]
            if not matches:
                raise ModelInputError(f"The pattern {spec!r} matches no image or video file.")
            out += [Source(m, _kind(Path(m)) == "video") for m in matches]
        else:
            raise ModelInputError(f"Input {spec!r} is not a file, a folder or a glob pattern that matches files.")
    return out


def opencv(purpose: str) -> Any:
    """The ``cv2`` module, or :class:`~im_core.errors.MissingDependencyError` saying what needs it."""
    try:
        import cv2
    except ImportError as exc:
        from im_core.errors import MissingDependencyError

        raise MissingDependencyError(
            f"{purpose} needs OpenCV: pip install opencv-python-headless (im-models installs it)."
        ) from exc
    return cv2


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def _count(sources: Sequence[Source], stride: int) -> int | None:
    """How many items the sources give (video frame counts as their containers declare them), or None."""
    total = 0
    for source in sources:
        if not source.video:
            total += 1
            continue
        cv2 = opencv("reading videos")
        cap = cv2.VideoCapture(source.path)
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if frames <= 0:
            return None
        total += (frames + stride - 1) // stride
    return total


def iter_items(sources: Sequence[Source], stride: int) -> Iterator[Item]:
    """The images of ``sources``, decoded (EXIF orientation applied); every ``stride``-th frame of a video."""
    from im_core._images import to_images
    from im_core.errors import ImError

    for source in sources:
        if not source.video:
            try:
                yield Item(source.path, image=to_images(source.path)[0])
            except ImError as exc:
                yield Item(source.path, error=str(exc))
            continue
        cv2 = opencv("reading videos")
        cap = cv2.VideoCapture(source.path)
        if not cap.isOpened():
            yield Item(source.path, error=f"Video {source.path!r} could not be opened (not a supported format).")
            continue
        try:
            index = 0
            while cap.grab():
                if index % stride == 0:
                    ok, frame = cap.retrieve()
                    if ok and frame is not None:
                        yield Item(source.path, frame=index, image=Image(frame, "bgr"))
                index += 1
        finally:
            cap.release()


# -- JSON: one object per image ----------------------------------------------------------------------------------


@dataclass
class Runner:
    """What ``im predict`` and ``im pipeline`` share: read items, run, print, save, time."""

    run: Callable[[Image], tuple[Any, Speed]]
    as_json: bool = False
    save: Path | None = None
    skeleton: Any = None
    totals: dict[str, float] = field(default_factory=dict)
    count: int = 0
    failed: int = 0
    _saved_names: set[str] = field(default_factory=set)

    def go(self, sources: Sequence[Source], stride: int) -> int:
        from im_core._cache._download import progress_enabled
        from im_core._config import settings

        if self.save is not None:
            self.save.mkdir(parents=True, exist_ok=True)
        items = iter_items(sources, stride)
        show = progress_enabled(None, settings().progress)
        if not show:
            for item in items:
                self.one(item, lambda text: print(text, file=sys.stderr, flush=True))
        else:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.text import Text

            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=True,
                # stdout piped: it must carry only the JSON lines, never the bar's console (stderr)
                redirect_stdout=sys.stdout.isatty(),
            ) as bar:
                task = bar.add_task("predict", total=_count(sources, stride))
                for item in items:
                    self.one(item, lambda text: bar.console.print(Text(text), highlight=False))  # text, not markup
                    bar.advance(task)
        self.summary()
        return 1 if self.failed else 0

    def one(self, item: Item, note: Callable[[str], None]) -> None:
        label = item.source if item.frame is None else f"{item.source} frame {item.frame}"
        head: dict[str, Any] = {"source": item.source}
        if item.frame is not None:
            head["frame"] = item.frame
        if item.image is None:
            self.failed += 1
            note(f"error: {label}: {item.error}")
            if self.as_json:
                print(json.dumps({**head, "error": item.error}), flush=True)
            return
        image = item.image
        from im_core.errors import ImError

        try:
            result, speed = self.run(image)
        except ImError as exc:
            self.failed += 1
            note(f"error: {label}: {exc}")
            if self.as_json:
                print(json.dumps({**head, "error": str(exc)}), flush=True)
            return
        self.count += 1
        for key, ms in speed.items():
            self.totals[key] = self.totals.get(key, 0.0) + ms
        size = f"{image.width}x{image.height}"
        note(f"{label}: {size} {_summary(result)}, {_speed_text(speed)}")
        if self.as_json:
            record = {**head, "width": image.width, "height": image.height, "speed_ms": speed}
            record["result"] = result.to_dict()
            print(json.dumps(record), flush=True)
        else:
            from im_core._auto_cli import format_result

            print(f"{label}:\n{format_result(result)}", flush=True)
        if self.save is not None:
            self._save(self.save, item, image, result)

    def _save(self, folder: Path, item: Item, image: Image, result: Any) -> None:
        from im_core._annotate import annotate

        cv2 = opencv("--save (drawing annotated images)")
        source = Path(item.source)
        if item.frame is not None:
            name = f"{source.stem}_{item.frame:06d}.jpg"
        else:
            suffix = source.suffix.lower() if source.suffix.lower() in _SAVE_SUFFIXES else ".png"
            name = source.stem + suffix
        stem, suffix = os.path.splitext(name)
        n = 1
        while name in self._saved_names:  # two inputs with the same name (from different folders)
            n += 1
            name = f"{stem}_{n}{suffix}"
        self._saved_names.add(name)
        drawn = annotate(image.to("bgr"), result, skeleton=self.skeleton)
        if not cv2.imwrite(str(folder / name), drawn):
            from im_core.errors import ModelInputError

            raise ModelInputError(f"Could not write the annotated image {folder / name} (--save).")

    def summary(self) -> None:
        if self.count:
            mean = {k: v / self.count for k, v in self.totals.items()}
            print(f"Speed: {_speed_text(mean)} per image on average ({self.count} images)", file=sys.stderr)
        if self.save is not None and self.count:
            print(f"Annotated images saved to {self.save}", file=sys.stderr)
        if self.failed:
            print(f"{self.failed} input(s) failed (see above)", file=sys.stderr)


def _speed_text(speed: Speed) -> str:
    words = {"pre": "pre-process", "infer": "inference", "post": "post-process", "total": "total"}
    return ", ".join(f"{ms:.1f} ms {words.get(k, k)}" for k, ms in speed.items())


def _summary(result: Any) -> str:
    """``2 face, 1 person`` for detections; the top class, the line count, ... for the others."""
    from im_core._results import Classification, Detections, Embeddings, Gaze, TextRecognition
    from im_core._results_semantic import SemanticSegmentation

    if isinstance(result, Detections):
        if not len(result):
            return "no detections"
        counts: dict[str, int] = {}
        for name in result.names:
            counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{n} {name}" for name, n in counts.items())
    if isinstance(result, Classification):
        return f"{result.class_name} {result.top_confidence:.2f}"
    if isinstance(result, TextRecognition):
        return f"{len(result.lines)} text line(s)"
    if isinstance(result, Gaze):
        return f"{len(result)} face(s)"
    if isinstance(result, Embeddings):
        return f"{result.vectors.shape[1]}-d embedding"
    if isinstance(result, SemanticSegmentation):
        names = [result.class_names[c] if c < len(result.class_names) else str(c) for c in result.present_class_ids]
        return "classes: " + (
            ", ".join(n for c, n in zip(result.present_class_ids, names) if c != result.background_class_id) or "none"
        )
    return type(result).__name__


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def timed_model(model: Any, params: dict[str, Any]) -> Callable[[Image], tuple[Any, Speed]]:
    """Run ``model``'s three stages on one image, timing each (ms). The parameters are checked once, here."""
    pre_params, post_params = model.split_params(params)
    clock = time.perf_counter

    def run(image: Image) -> tuple[Any, Speed]:
        t0 = clock()
        prepared = model.pre_process([image], **pre_params)
        t1 = clock()
        raw = model.forward(prepared)
        t2 = clock()
        result = model.post_process(raw, prepared, **post_params)[0]
        t3 = clock()
        return result, {"pre": _ms(t1 - t0), "infer": _ms(t2 - t1), "post": _ms(t3 - t2)}

    return run


# -- arguments ---------------------------------------------------------------------------------------------------


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="images, folders, glob patterns (quoted: 'photos/*.jpg') or videos"
    )
    parser.add_argument(
        "--save", metavar="DIR", type=Path, help="write annotated images (video frames: <name>_<frame>.jpg)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per image on stdout; all else on stderr")
    parser.add_argument("--stride", type=int, default=1, metavar="N", help="videos: run every N-th frame (default 1)")
    parser.add_argument("--confidence", type=float, help="confidence threshold of detections")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a call parameter (repeatable); VALUE is read as JSON when it parses (max_detections=10), else text",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="print the negotiation report")


def _call_params(args: argparse.Namespace) -> dict[str, Any]:
    from im_core.errors import InvalidParameterError

    params: dict[str, Any] = {}
    for item in args.param:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise InvalidParameterError(f"--param takes NAME=VALUE, got {item!r}.")
        try:
            params[name.strip()] = json.loads(raw)
        except ValueError:
            params[name.strip()] = raw
    if args.confidence is not None:
        params["confidence"] = args.confidence
    return params


def _check_stride(args: argparse.Namespace) -> None:
    if args.stride < 1:
        from im_core.errors import InvalidParameterError

        raise InvalidParameterError(f"--stride must be 1 or more, got {args.stride}.")


def predict_command(parser: argparse.ArgumentParser) -> Handler:
    from im_core._auto_cli import _filter_arguments, _filters, _provider_arguments, _provider_kwargs

    parser.add_argument("model_id_or_path")
    _output_arguments(parser)
    _provider_arguments(parser)
    _filter_arguments(parser)
    parser.add_argument("--architecture", help="for a bare model file without metadata: its architecture (yolov8, ...)")
    parser.add_argument("--task", help="for a bare model file: its task (object-detection, ...)")
    parser.add_argument("--class-names", help="class names: 'a,b,c' or @file.txt (one a line)")

    def run(args: argparse.Namespace) -> int:
        from im_core._auto import AutoModel

        _check_stride(args)
        sources = resolve_inputs(args.inputs)  # before loading anything: a typo fails at once
        overrides = {"architecture": args.architecture, "task": args.task}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        from im_core._class_names import class_names_argument

        names = class_names_argument(args.class_names)
        if names is not None:
            overrides["class_names"] = names
        with contextlib.redirect_stdout(sys.stderr):  # the negotiation table (--verbose) is for people: stderr
            model = AutoModel.from_pretrained(
                args.model_id_or_path, verbose=args.verbose, **_provider_kwargs(args), **_filters(args), **overrides
            )
        print(repr(model), file=sys.stderr)
        runner = Runner(timed_model(model, _call_params(args)), as_json=args.json, save=args.save)
        runner.skeleton = model.metadata.extra.get("skeleton")
        return runner.go(sources, args.stride)

    return run


def pipeline_command(parser: argparse.ArgumentParser) -> Handler:
    from im_core._auto_cli import _filter_arguments, _filters, _provider_arguments, _provider_kwargs

    parser.add_argument("pipeline_id", help="a registered pipeline (ocr, face-gaze, ...)")
    _output_arguments(parser)
    parser.add_argument(
        "--model", action="append", dest="models", metavar="MODEL",
        help="one per role, in the pipeline's order (repeatable): a model id or path, or a JSON object of "
        "from_pretrained arguments ('{\"model_id_or_path\": \"det.onnx\", \"architecture\": \"pp-ocr-det\", "
        "\"task\": \"text-detection\"}'); default: the pipeline's default models",
    )  # fmt: skip
    _provider_arguments(parser)
    _filter_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        _check_stride(args)
        sources = resolve_inputs(args.inputs)
        shared = {**_provider_kwargs(args), **_filters(args), "verbose": args.verbose}
        with contextlib.redirect_stdout(sys.stderr):  # the negotiation tables (--verbose) are for people: stderr
            pipeline = load_pipeline(args.pipeline_id, args.models, shared)
        print(repr(pipeline), file=sys.stderr)
        params = _call_params(args)
        clock = time.perf_counter

        def call(image: Image) -> tuple[Any, Speed]:
            t0 = clock()
            result = pipeline(image.pixels, color_format=image.color, **params)
            return result, {"total": _ms(clock() - t0)}

        return Runner(call, as_json=args.json, save=args.save).go(sources, args.stride)

    return run


def load_pipeline(pipeline_id: str, models: Sequence[str] | None, shared: dict[str, Any]) -> Any:
    """The pipeline registered as ``pipeline_id`` (entry-point group ``im.pipelines``) with its models loaded by
    :meth:`AutoModel.from_pretrained` (``shared`` arguments for each, a model's own JSON object wins)."""
    from im_core._auto import AutoModel
    from im_core._plugins import load_target, registry
    from im_core.errors import InvalidParameterError, RetrievalError

    entry = registry().pipeline(pipeline_id)
    pipeline_cls = load_target(entry.target)
    specs = list(models) if models else list(entry.default_models)
    if not specs:
        raise InvalidParameterError(
            f"The {pipeline_id!r} pipeline has no default models: pass --model once per role, in order: "
            f"{list(getattr(pipeline_cls, 'roles', ()))}."
        )
    loaded = []
    for spec in specs:
        kwargs = dict(shared)
        if spec.lstrip().startswith("{"):
            try:
                own = json.loads(spec)
            except ValueError as exc:
                raise InvalidParameterError(f"--model {spec!r} is not valid JSON: {exc}.") from exc
            if not isinstance(own, dict) or "model_id_or_path" not in own:
                raise InvalidParameterError(f"--model {spec!r}: a JSON object needs a 'model_id_or_path' key.")
            kwargs.update(own)
            spec = kwargs.pop("model_id_or_path")
        try:
            loaded.append(AutoModel.from_pretrained(spec, **kwargs))
        except RetrievalError as exc:
            if models:
                raise
            raise InvalidParameterError(
                f"The {pipeline_id!r} pipeline's default models {specs} could not be retrieved "
                f"({type(exc).__name__}: {exc.message.splitlines()[0]}). Fix: use a weights provider that has them, "
                f"or pass --model once per role, in order: {list(getattr(pipeline_cls, 'roles', ()))}."
            ) from exc
    return pipeline_cls.from_models(loaded)

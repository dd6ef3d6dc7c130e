"""Ray Data: a predictor class for ``Dataset.map_batches`` and a one-call helper.

::

    import ray, im_ray
    from im_core import ModelSpec

    ds = im_ray.read_images("s3://bucket/photos/")              # columns: bytes, path
    out = im_ray.predict_dataset(ds, ModelSpec("yolov8n-640"))  # one row per image, errors as rows
    out.write_parquet("/data/detections")

Each actor loads the model once (from a picklable :class:`~im_core.ModelSpec`, cached per process) and runs
``model.infer_batch(..., errors="return")``: every image gets the result it gets alone, and an image that fails
(corrupt file, unreadable path) becomes a row whose ``error`` column says why, never a dropped row or a failed job.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from im_core import ModelSpec, results_to_columns
from im_core.errors import InvalidParameterError

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

__all__ = ["IMAGE_EXTENSIONS", "Predictor", "predict_dataset", "read_images"]

#: file name suffixes :func:`read_images` keeps when it lists a folder (lower case, without the dot)
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "gif")
#: CPUs Ray reserves for each predictor actor by default: fractional, so reading and decoding tasks keep a CPU
#: (whole CPUs per actor on a small machine stall the pipeline without an error: ray-project/ray#44687)
DEFAULT_ACTOR_CPUS = 0.5


def _arrow_types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    f64, i64, s = pa.float64(), pa.int64(), pa.string()
    rle = pa.struct([("size", pa.list_(i64)), ("counts", pa.list_(i64))])
    return {
        "path": s,
        "n": i64,
        "xyxy": pa.list_(pa.list_(f64)),
        "confidence": pa.list_(f64),
        "class_id": pa.list_(i64),
        "class_name": pa.list_(s),
        "masks": pa.list_(rle),
        "error": s,
        "keypoints": pa.list_(pa.list_(pa.list_(f64))),
        "keypoint_confidence": pa.list_(pa.list_(f64)),
        "text": pa.list_(s),
        "yaw": pa.list_(f64),
        "pitch": pa.list_(f64),
        "embedding": pa.list_(f64),
    }


class Predictor:
    """A callable class for ``ray.data.Dataset.map_batches``: one output row per input row.

    ``ds.map_batches(Predictor, fn_constructor_kwargs={"spec": spec}, compute=ray.data.ActorPoolStrategy(...),
    num_cpus=0.5)`` (what :func:`predict_dataset` does). The model is loaded once per actor, when the actor starts.

    Input: a batch (``batch_format="numpy"``, ``"pandas"`` or ``"pyarrow"``) whose ``column`` holds each image as
    encoded bytes (``ray.data.read_binary_files``, :func:`read_images`) or as a path or URL string the worker can
    open. A ``path`` column, when present, names each row in the output; otherwise a string image is its own name.

    Output: a ``pyarrow.Table`` with the columns of :func:`im_core.results_to_columns` (``path``, ``n``, ``xyxy``,
    ``confidence``, ``class_id``, ``class_name``, ``masks``, ``error``, plus the task's extra columns, e.g.
    ``keypoints``), with fixed Arrow types so that every block, failed rows included, has the same schema; then the
    input's other columns (ids, labels) unchanged, except the image column, which is dropped. Boxes are pixels of
    the original image, ``xyxy`` as ``[x1, y1, x2, y2]``; masks are COCO uncompressed RLE.

    Args:
        spec: what to load (:class:`~im_core.ModelSpec`; a string is taken as ``ModelSpec(string)``).
        column: the input column holding the images (default ``"bytes"``, as ``read_binary_files`` names it).
        params: call parameters for every image (``{"confidence": 0.4}``; see the model's ``CALL_PARAMS``).
    """

    def __init__(self, spec: ModelSpec | str, *, column: str = "bytes", params: Mapping[str, Any] | None = None):
        import numpy as np

        self.spec = spec if isinstance(spec, ModelSpec) else ModelSpec(spec)
        self.column = column
        self.params = dict(params or {})
        self.model = self.spec.load()
        # one probe image gives the task's columns (keypoints, text, embedding...), so that a block of failed rows
        # has them too and every block shares one schema; it also warms the session up
        probe = self.model.infer_batch([np.zeros((64, 64, 3), np.uint8)], errors="return", **self.params)
        if isinstance(probe[0], Exception):
            raise probe[0]
        self.columns = list(results_to_columns(probe))

    def __call__(self, batch: Any) -> pa.Table:
        import pyarrow as pa

        table = _as_table(batch)
        if self.column not in table.column_names:
            raise InvalidParameterError(
                f"the batch has no column {self.column!r} (it has {table.column_names}); give the column holding "
                "the images as column=..., e.g. 'bytes' for ray.data.read_binary_files."
            )
        items = table.column(self.column).to_pylist()
        if "path" in table.column_names:
            paths = table.column("path").to_pylist()
        else:
            paths = [item if isinstance(item, str) else None for item in items]
        results = self.model.infer_batch(items, errors="return", **self.params)
        columns = results_to_columns(results, paths=paths)
        types = _arrow_types()
        out = {name: pa.array(columns.get(name, [None] * len(items)), type=types[name]) for name in self.columns}
        for name in table.column_names:  # the input's other columns, unchanged
            if name != self.column and name not in out:
                out[name] = table.column(name)
        return pa.table(out)


def _as_table(batch: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        return pa.table({k: pa.array(list(v)) for k, v in batch.items()})
    return pa.Table.from_pandas(batch, preserve_index=False)  # a pandas DataFrame


def _actors(concurrency: int | tuple[int, int] | None) -> tuple[int, int]:
    if concurrency is None:
        import ray

        cpus = float(ray.cluster_resources().get("CPU", 1.0)) if ray.is_initialized() else float(os.cpu_count() or 1)
        # half the CPUs for actors (each runs its own inference threads), at least one actor; the rest read
        size = max(1, int(cpus // 2))
        return 1, size
    low, high = (concurrency, concurrency) if isinstance(concurrency, int) else concurrency
    if low < 1 or high < low:
        raise InvalidParameterError(
            f"concurrency must be n >= 1 or (min, max) with 1 <= min <= max, got {concurrency}."
        )
    return low, high


def predict_dataset(
    ds: ray.data.Dataset,
    spec: ModelSpec | str,
    *,
    column: str = "bytes",
    params: Mapping[str, Any] | None = None,
    batch_size: int = 16,
    num_cpus: float = DEFAULT_ACTOR_CPUS,
    num_gpus: float = 0,
    concurrency: int | tuple[int, int] | None = None,
    **map_batches_kwargs: Any,
) -> ray.data.Dataset:
    """``ds`` with one prediction row per input row (lazy: Ray runs it when the dataset is consumed or written).

    Args:
        ds: a dataset whose ``column`` holds images as bytes or paths (:func:`read_images`).
        spec: what to load (:class:`~im_core.ModelSpec` or a model id).
        column: the image column (default ``"bytes"``).
        params: call parameters for every image (``{"confidence": 0.4}``).
        batch_size: rows per ``infer_batch`` call (default 16).
        num_cpus: CPUs Ray reserves per actor (default 0.5: fractional, so reading keeps CPUs; see
            ray-project/ray#44687).
        num_gpus: GPUs per actor (``1``, or ``0.5`` to put two actors on a GPU; Ray sets ``CUDA_VISIBLE_DEVICES``).
        concurrency: actors, ``n`` or ``(min, max)`` for an autoscaling pool (default: from 1 up to half the
            cluster's CPUs, at least 1). On GPUs give the number of GPUs.
        **map_batches_kwargs: passed to ``Dataset.map_batches`` as they are.

    Returns:
        The dataset of :class:`Predictor` rows: ``path``, ``n``, ``xyxy``, ``confidence``, ``class_id``,
        ``class_name``, ``masks``, ``error`` (+ the task's columns and the input's other columns).
    """
    import ray.data

    if batch_size < 1 or num_cpus < 0 or num_gpus < 0:
        raise InvalidParameterError(
            f"batch_size must be at least 1 and num_cpus, num_gpus at least 0, got {batch_size}, {num_cpus} and "
            f"{num_gpus}."
        )
    spec = spec if isinstance(spec, ModelSpec) else ModelSpec(spec)
    low, high = _actors(concurrency)
    return ds.map_batches(
        Predictor,
        fn_constructor_kwargs={"spec": spec, "column": column, "params": dict(params or {})},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        **map_batches_kwargs,
    )


def read_images(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    extensions: Sequence[str] | None = IMAGE_EXTENSIONS,
    **read_kwargs: Any,
) -> ray.data.Dataset:
    """A dataset of image files as encoded bytes: columns ``bytes`` and ``path``, one row per file.

    ``ray.data.read_binary_files`` with ``include_paths=True``, after expanding local glob patterns
    (``"photos/**/*.jpg"``); folders and remote URIs (``s3://...``) go to Ray as they are. Decoding happens in
    the predictor, one image at a time, so a corrupt file becomes an error row, not a failed read.

    Args:
        paths: files, folders, glob patterns or URIs.
        extensions: suffixes kept when Ray lists a folder (default :data:`IMAGE_EXTENSIONS`; None keeps every file).
        **read_kwargs: passed to ``ray.data.read_binary_files``.

    Raises:
        InvalidParameterError: a local glob pattern that matches nothing.
    """
    import ray.data

    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    expanded: list[str] = []
    for entry in (os.fspath(p) for p in given):
        if "://" not in entry and glob.has_magic(entry):
            found = sorted(glob.glob(entry, recursive=True))
            if not found:
                raise InvalidParameterError(f"the pattern {entry!r} matches no file; check the path and the pattern.")
            expanded += found
        else:
            expanded.append(entry)
    if extensions is not None:  # Ray compares suffixes case-insensitively
        read_kwargs.setdefault("file_extensions", [e.lstrip(".") for e in extensions])
    return ray.data.read_binary_files(expanded, include_paths=True, **read_kwargs)

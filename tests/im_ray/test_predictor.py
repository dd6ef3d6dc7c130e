"""im-ray's pieces that need no Ray cluster (default CI): the Ray Data predictor called on batches directly, the
read helper's glob check, the builders' argument checks, the CLI's registration, and `import im_ray` staying light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from im_core import ModelSpec, results_to_columns
from im_core.errors import InvalidParameterError

from .conftest import write_images

pytestmark = pytest.mark.weights

pa = pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def predictor(nudenet_path):
    from im_ray import Predictor

    return Predictor(ModelSpec(nudenet_path))


@pytest.fixture(scope="module")
def photos(asset, tmp_path_factory) -> list:
    return write_images(asset, tmp_path_factory.mktemp("photos"), n=6)


def test_one_row_per_input_row_with_errors_as_rows(predictor, photos) -> None:
    items = [p.read_bytes() for p in photos]
    items.insert(2, b"not an image")
    names = [str(p) for p in photos]
    names.insert(2, "corrupt.jpg")
    batch = {"bytes": np.array(items, dtype=object), "path": np.array(names), "id": np.arange(len(items))}
    out = predictor(batch)
    assert out.num_rows == len(items)
    assert out.column("path").to_pylist() == names
    assert out.column("id").to_pylist() == list(range(len(items)))  # other input columns pass through
    assert "bytes" not in out.column_names
    errors = out.column("error").to_pylist()
    assert errors[2].startswith("ModelInputError:") and "could not be decoded" in errors[2]
    assert out.column("n").to_pylist()[2] is None
    expected = results_to_columns(
        [predictor.model(data) for data in items[:2] + items[3:]], paths=names[:2] + names[3:]
    )
    got = out.filter(pa.compute.is_null(out.column("error"))).to_pydict()
    for name in ("path", "n", "class_id", "class_name"):
        assert got[name] == expected[name], name
    np.testing.assert_allclose(
        np.concatenate([np.asarray(x, float).reshape(-1, 4) for x in got["xyxy"]]),
        np.concatenate([np.asarray(x, float).reshape(-1, 4) for x in expected["xyxy"]]),
        atol=1e-4,
    )
    assert sum(expected["n"]) > 0  # the photographs hold detections: the comparison is not vacuous


def test_paths_as_input_and_a_fixed_schema_for_failed_batches(predictor, photos) -> None:
    paths = [str(photos[0]), "/no/such/file.jpg"]
    out = predictor(pa.table({"bytes": paths}))
    assert out.column("path").to_pylist() == paths
    assert out.column("error").to_pylist()[0] is None
    assert out.column("error").to_pylist()[1] is not None
    failed = predictor(pa.table({"bytes": [b"\x00\x01"]}))
    assert failed.schema == out.schema  # every block has one schema, even one where every row failed
    assert failed.schema.field("xyxy").type == pa.list_(pa.list_(pa.float64()))


def test_a_missing_column_says_which_to_give(predictor) -> None:
    with pytest.raises(InvalidParameterError, match=r"give the column holding the images as column=\.\.\."):
        predictor({"image": np.array([b"x"], dtype=object)})


def test_read_images_refuses_a_glob_that_matches_nothing(tmp_path) -> None:
    from im_ray import read_images

    with pytest.raises(InvalidParameterError, match="matches no file"):
        read_images(str(tmp_path / "*.jpg"))


def test_builders_check_their_arguments(nudenet_path) -> None:
    from im_ray import build_app, predict_dataset

    with pytest.raises(InvalidParameterError, match="at least one model"):
        build_app({})
    with pytest.raises(InvalidParameterError, match="max_batch_size"):
        build_app({"a": ModelSpec(nudenet_path)}, max_batch_size=0)
    with pytest.raises(InvalidParameterError, match="batch_size"):
        predict_dataset(None, ModelSpec(nudenet_path), batch_size=0)  # type: ignore[arg-type]


def test_the_cli_subcommand_is_registered(capsys) -> None:
    from im_core.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["ray-serve", "--help"])
    assert exit_.value.code == 0
    assert "--max-models-per-replica" in capsys.readouterr().out


def test_import_im_ray_imports_no_ray() -> None:
    code = "import sys, im_ray; im_ray.__all__; print([m for m in ('ray', 'pyarrow', 'fastapi') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Ray Data on a local cluster (opt-in: ``-m ray``): real photographs plus a corrupt file through
``im_ray.predict_dataset`` to Parquet, one row per file and the corrupt one as an error row."""

from __future__ import annotations

import numpy as np
import pytest

from im_core import ModelSpec

from .conftest import N_IMAGES, write_images

pytestmark = [pytest.mark.ray, pytest.mark.weights, pytest.mark.slow]


def test_parquet_holds_one_row_per_file_and_an_error_row(ray_cluster, asset, nudenet_path, tmp_path) -> None:
    import pyarrow.parquet as pq

    import im_ray
    from im_core import AutoModel

    photos = write_images(asset, tmp_path / "in", N_IMAGES)
    corrupt = tmp_path / "in" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    ds = im_ray.read_images(str(tmp_path / "in" / "*"))
    out = im_ray.predict_dataset(ds, ModelSpec(nudenet_path), batch_size=4, params={"confidence": 0.3})
    out.write_parquet(str(tmp_path / "out"))

    table = pq.read_table(tmp_path / "out").to_pydict()
    rows = {path.rsplit("/", 1)[-1]: i for i, path in enumerate(table["path"])}
    assert len(table["path"]) == N_IMAGES + 1
    assert sorted(rows) == sorted([p.name for p in photos] + [corrupt.name])  # every file, once
    bad = rows[corrupt.name]
    assert table["error"][bad].startswith("ModelInputError:") and table["n"][bad] is None
    model = AutoModel.from_pretrained(nudenet_path)
    total = 0
    for photo in photos:
        i = rows[photo.name]
        assert table["error"][i] is None, table["error"][i]
        alone = model(str(photo), confidence=0.3)  # what the model answers for this image alone
        assert table["n"][i] == len(alone)
        assert table["class_name"][i] == alone.names
        np.testing.assert_allclose(np.asarray(table["xyxy"][i]).reshape(-1, 4), alone.xyxy, atol=1e-3)
        np.testing.assert_allclose(table["confidence"][i], alone.confidence, atol=1e-5)
        total += len(alone)
    assert total > 0

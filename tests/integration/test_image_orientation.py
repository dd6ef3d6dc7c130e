"""A phone photo tagged with an EXIF orientation is seen upright, and its detections come back in that upright
frame (issue 12 item 3): the real nudenet detector on the pinned astronaut photograph, saved as JPEGs whose EXIF
says "rotate 90° clockwise" (6) or "counter-clockwise" (8), as a camera writes them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from im_core import AutoModel

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def detector(asset):
    return AutoModel.from_pretrained(asset("yolo/nudenet_320n.onnx"))


def _rotate_box(box: np.ndarray, orientation: int, width: int, height: int) -> np.ndarray:
    """A box of the stored (landscape) frame in the upright frame of ``orientation`` 6 (90° CW) or 8 (90° CCW)."""
    x1, y1, x2, y2 = box
    if orientation == 6:  # upright (x', y') = (height - y, x)
        return np.array([height - y2, x1, height - y1, x2])
    return np.array([y1, width - x2, y2, width - x1])  # 8: (x', y') = (y, width - x)


@pytest.mark.parametrize("orientation", [6, 8])
def test_detections_come_back_in_the_upright_frame(detector, asset, tmp_path, orientation):
    import cv2

    stored = PILImage.open(asset("images/astronaut.png")).convert("RGB")  # 512 x 512: crop to a landscape frame
    stored = stored.crop((0, 0, 512, 400))
    plain, tagged = tmp_path / "plain.jpg", tmp_path / f"o{orientation}.jpg"
    stored.save(plain, quality=95)
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    stored.save(tagged, exif=exif, quality=95)  # the same stored pixels, only the tag differs

    upright = detector(tagged)
    assert upright.xyxy.shape[0] >= 1
    # the same as running on what cv2.imread shows, and not what the stored pixels give
    same = detector(cv2.imread(str(tagged)))
    np.testing.assert_array_equal(upright.xyxy, same.xyxy)
    unrotated = detector(plain)
    face = upright[int(np.argmax(upright.confidence))]
    expected = _rotate_box(unrotated.xyxy[int(np.argmax(unrotated.confidence))], orientation, 512, 400)
    assert face.names == unrotated[int(np.argmax(unrotated.confidence))].names
    np.testing.assert_allclose(face.xyxy[0], expected, atol=6)  # a rotated image is letterboxed differently
    assert face.xyxy[0, 3] <= 512 and face.xyxy[0, 2] <= 400  # inside the portrait frame (400 wide, 512 tall)

"""The family contract of ``im_core.Model``: call parameters declared once (``CALL_PARAMS``), checked once before
pre-processing and split by stage; the shared name checker and its suggestions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from im_core import LoadedModelInfo, ObjectDetectionModel
from im_core.errors import InvalidParameterError, PluginError
from im_core.sdk import check_names


class _Recorder(ObjectDetectionModel):
    """Records what each stage receives."""

    CALL_PARAMS = {"image_size": "pre", "confidence": "post", "iou_threshold": "post"}

    def __init__(self) -> None:
        self.metadata = LoadedModelInfo(model_id="toy", architecture="toy", task=self.task)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    @classmethod
    def from_package(cls, ctx: Any) -> _Recorder:
        return cls()

    def pre_process(self, images: list[Any], **params: Any) -> list[Any]:
        self.seen.append(("pre", params))
        return images

    def forward(self, prepared: Any) -> Any:
        return prepared

    def post_process(self, raw: Any, prepared: Any, **params: Any) -> list[Any]:
        self.seen.append(("post", params))
        return [None] * len(prepared)


class _Undeclared(_Recorder):
    CALL_PARAMS = None  # a plugin written before CALL_PARAMS: every parameter reaches both stages, unchecked


IMAGE = np.zeros((8, 8, 3), np.uint8)


def test_each_stage_gets_only_its_own_parameters():
    model = _Recorder()
    model(IMAGE, confidence=0.5, image_size=320, iou_threshold=0.4)
    assert model.seen == [("pre", {"image_size": 320}), ("post", {"confidence": 0.5, "iou_threshold": 0.4})]
    model.seen.clear()
    model([IMAGE, IMAGE])
    assert model.seen == [("pre", {}), ("post", {})]
    assert model.split_params({"confidence": 0.1}) == ({}, {"confidence": 0.1})


def test_unknown_parameters_are_refused_before_pre_processing_with_a_suggestion():
    model = _Recorder()
    with pytest.raises(InvalidParameterError) as info:
        model(IMAGE, conf=0.5, iou=0.3, zzz=1)
    message = str(info.value)
    assert "_Recorder does not take parameter(s) 'conf' (did you mean 'confidence'?)" in message
    assert "'iou' (did you mean 'iou_threshold'?)" in message
    assert "'zzz'; it accepts: confidence, image_size, iou_threshold." in message
    assert model.seen == []  # nothing ran


def test_undeclared_call_parameters_reach_both_stages_unchecked():
    model = _Undeclared()
    model(IMAGE, anything=1)
    assert model.seen == [("pre", {"anything": 1}), ("post", {"anything": 1})]


def test_a_stage_other_than_pre_or_post_is_a_plugin_error_at_class_definition():
    with pytest.raises(PluginError, match=r"CALL_PARAMS maps each call parameter to 'pre' or 'post'.*'both'"):

        class _Broken(_Recorder):
            CALL_PARAMS = {"confidence": "both"}


def test_check_names_suggests_close_names_and_lists_only_the_accepted_ones():
    check_names({}, (), "x")
    check_names({"a": 1}, ("a", "b"), "x")
    check_names(["a"], ("a",), "x")  # any iterable of names
    with pytest.raises(
        InvalidParameterError,
        match=r"^Loader takes no option\(s\) 'devcie' \(did you mean 'device'\?\); it accepts: none\.\n",
    ) as info:
        check_names({"devcie": "cpu"}, (), "Loader takes no option(s)", also_known=("device", "backend"))
    assert "backend" not in str(info.value)
    with pytest.raises(InvalidParameterError, match=r"'qqq'; it accepts: alpha, beta\. Hint\.\n"):
        check_names(["qqq"], ("beta", "alpha"), "Nope:", " Hint.")
    with pytest.raises(
        InvalidParameterError, match=r"'detection' \(did you mean 'text-detection' or 'object-detection'"
    ):
        check_names(["detection"], ("classification", "object-detection", "text-detection"), "Task")
    with pytest.raises(InvalidParameterError, match=r"'objectdetection' \(did you mean 'object-detection'\?\)"):
        check_names(["objectdetection"], ("object-detection", "text-detection", "keypoint-detection"), "Task")

"""Negotiation rules mirrored from the reference (roboflow/inference ``inference_models``, issue 15 items 1 and 2):
NMS-fused packages (``nms_fusion_preferences``), the smaller static batch, fp16 on MPS. Each docstring names the
reference unit test it mirrors (``tests/unit_tests/models/auto_loaders/test_auto_negotiation.py`` or
``test_ranking.py``). Fake backends as in test_negotiation.py; the rules run in the real negotiation."""

from __future__ import annotations

from typing import Any

import pytest

from im_core import BatchSpec, ModelMetadata, ModelPackage
from im_core._negotiation import negotiate_packages
from im_core.errors import InvalidParameterError

from .test_negotiation import CPU, FakeBackend, _registry

FUSED = {"max_detections": 300, "confidence_threshold": 0.25, "iou_threshold": 0.7, "class_agnostic": False}


def _pkg(pid: str, fused: dict[str, Any] | None = None, **kw: Any) -> ModelPackage:
    return ModelPackage(
        package_id=pid,
        backend=kw.pop("backend", "onnx"),
        quantization=kw.pop("quant", "fp32"),
        batch=kw.pop("batch", BatchSpec.static(1)),
        features={} if fused is None else {"nms_fused": fused},
    )


def _meta(*packages: ModelPackage) -> ModelMetadata:
    return ModelMetadata(model_id="m/1", architecture="yolov8", task="object-detection", packages=packages)


def _ranked(meta: ModelMetadata, **kw: Any) -> list[str]:
    return [v.package_id for v in negotiate_packages(meta, plugins=CPU, **kw).ranked]


def _reason(meta: ModelMetadata, pid: str, **kw: Any) -> str:
    report = negotiate_packages(meta, plugins=CPU, **kw)
    return next(v.reason for v in report.verdicts if v.package_id == pid) or ""


def test_package_without_fused_nms_is_never_eliminated() -> None:
    """Mirrors test_filter_model_packages_based_on_model_features_when_package_should_not_be_eliminated_as_no_nms_fused_
    features_registered."""
    meta = _meta(_pkg("plain"))
    for prefs in (None, False, True, {"iou_threshold": 0.5}):
        assert _ranked(meta, nms_fusion_preferences=prefs) == ["plain"]


def test_by_default_the_nms_im_runs_is_preferred_and_false_rejects_fused() -> None:
    """Mirrors test_filter_model_packages_based_on_model_features_when_package_should_be_eliminated_as_nms_fused_
    features_registered_but_no_preferences and ..._but_nms_not_preferred. im's default differs on purpose: fused
    packages are ranked after every package whose NMS im runs (so iou_threshold works) instead of being dropped, so a
    model that only has a fused package still loads; ``False`` rejects them as the reference's default does."""
    fused_onnx, plain_torch = _pkg("fused", FUSED), _pkg("plain", backend="torch")
    assert _ranked(_meta(fused_onnx, plain_torch)) == ["plain", "fused"]
    assert _ranked(_meta(fused_onnx)) == ["fused"]
    assert _ranked(_meta(fused_onnx, plain_torch), nms_fusion_preferences=False) == ["plain"]
    assert "iou_threshold" in _reason(_meta(fused_onnx), "fused", nms_fusion_preferences=False)


def test_malformed_fused_feature_is_rejected_when_preferences_are_given() -> None:
    """Mirrors test_filter_model_packages_based_on_model_features_when_package_should_be_eliminated_as_malformed_nms_
    fused_features_registered."""
    meta = _meta(_pkg("bad", {"max_detections": 300}))
    assert "malformed" in _reason(meta, "bad", nms_fusion_preferences=True)


def test_true_means_the_reference_defaults() -> None:
    """Mirrors get_default_nms_settings as applied by the filter: True accepts exactly 300 / 0.25 / 0.7 / per class."""
    meta = _meta(_pkg("ok", FUSED), _pkg("other", {**FUSED, "iou_threshold": 0.5}))
    assert _ranked(meta, nms_fusion_preferences=True) == ["ok"]


@pytest.mark.parametrize(
    ("key", "preference", "accepted"),
    [
        ("max_detections", 100, False),  # ..._eliminated_based_on_max_nms_detections_equal_comparison
        ("max_detections", (100, 200), False),  # ..._eliminated_based_on_max_nms_detections_range_comparison
        ("max_detections", (100, 400), True),  # ..._accepted_based_on_max_nms_detections_range_comparison
        ("max_detections", 300, True),  # ..._accepted_based_on_max_nms_detections_equal_comparison
        ("confidence_threshold", 0.5, False),  # ..._eliminated_based_on_confidence_equal_comparison
        ("confidence_threshold", (0.3, 0.5), False),  # ..._eliminated_based_on_confidence_range_comparison
        ("confidence_threshold", (0.2, 0.5), True),  # ..._accepted_based_on_confidence_range_comparison
        ("confidence_threshold", 0.25, True),  # ..._accepted_based_on_confidence_equal_comparison
        ("iou_threshold", 0.5, False),  # ..._eliminated_based_on_iou_equal_comparison
        ("iou_threshold", (0.4, 0.6), False),  # ..._eliminated_based_on_iou_range_comparison
        ("iou_threshold", (0.6, 0.8), True),  # ..._accepted_based_on_iou_range_comparison
        ("iou_threshold", 0.7, True),  # ..._accepted_based_on_iou_equal_comparison
        ("class_agnostic", True, False),  # ..._eliminated_based_on_class_agnostic
        ("class_agnostic", False, True),  # ..._not_should_be_eliminated_based_on_class_agnostic
    ],
)
def test_preferences_filter_fused_packages(key: str, preference: Any, accepted: bool) -> None:
    """Mirrors the reference's test_filter_model_packages_based_on_model_features_when_package_should_be_{eliminated,
    accepted}_based_on_{max_nms_detections,confidence,iou}_{equal,range}_comparison and ..._class_agnostic (named
    per case)."""
    meta = _meta(_pkg("fused", FUSED))
    assert _ranked(meta, nms_fusion_preferences={key: preference}) == (["fused"] if accepted else [])


def test_fused_packages_rank_by_closeness_to_the_preference() -> None:
    """Mirrors ranking.py's retrieve_fused_nms_rank / score_distance_from_mean: within a range, the baked value nearest
    its middle wins; an exact scalar match scores 1."""
    near = _pkg("near", {**FUSED, "iou_threshold": 0.6})
    edge = _pkg("edge", {**FUSED, "iou_threshold": 0.45})
    assert _ranked(_meta(edge, near), nms_fusion_preferences={"iou_threshold": (0.4, 0.8)}) == ["near", "edge"]


def test_bad_preferences_are_invalid_parameters() -> None:
    with pytest.raises(InvalidParameterError, match="unknown key"):
        negotiate_packages(_meta(_pkg("a")), plugins=CPU, nms_fusion_preferences={"iou": 0.5})
    with pytest.raises(InvalidParameterError, match="class_agnostic"):
        negotiate_packages(_meta(_pkg("a")), plugins=CPU, nms_fusion_preferences={"class_agnostic": 1})
    with pytest.raises(InvalidParameterError, match="dict"):
        negotiate_packages(_meta(_pkg("a")), plugins=CPU, nms_fusion_preferences="yes")


def test_smaller_static_batch_first() -> None:
    """Mirrors test_rank_model_packages_when_static_batch_size_should_be_prioritised_correctly (test_ranking.py): a
    bigger static batch pads single images."""
    meta = _meta(_pkg("b8", batch=BatchSpec.static(8)), _pkg("b1", batch=BatchSpec.static(1)))
    assert _ranked(meta) == ["b1", "b8"]


def test_fp16_is_allowed_by_default_on_mps() -> None:
    """Mirrors test_determine_default_allowed_quantization_for_mps_device: on a non-CPU device fp16 is among the
    defaults (and ranks first there, as on CUDA)."""
    reg = _registry(onnx=FakeBackend("onnx", ("cpu", "mps")), torch=FakeBackend("torch", ("cpu", "mps")))
    meta = _meta(_pkg("half", quant="fp16", backend="torch"), _pkg("full", quant="fp32", backend="torch"))
    report = negotiate_packages(meta, device="mps", plugins=reg)
    assert [v.package_id for v in report.ranked] == ["half", "full"]
    cpu = negotiate_packages(meta, device="cpu", plugins=reg)
    assert [v.package_id for v in cpu.ranked] == ["full"]  # mirrors ..._for_cpu_device: no fp16 on a CPU

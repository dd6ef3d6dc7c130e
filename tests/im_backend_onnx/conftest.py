"""Builders of small ONNX graphs (with the ``onnx`` dev dependency) for the ONNX backend tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from im_core.testing import REFERENCE_BIAS, REFERENCE_INPUT_SHAPE, REFERENCE_WEIGHT


def build_reference_onnx(
    path: Path, *, batch: int | str = "batch", opset: int = 17, metadata: dict[str, str] | None = None
) -> Path:
    """The conformance reference network as ONNX: ReduceMean over H, W then Gemm; ``batch`` int = static."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, *REFERENCE_INPUT_SHAPE])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 4])
    pooled = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [batch, 3])
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["pooled", "W", "B"], ["logits"], transB=1),
    ]
    init = [numpy_helper.from_array(REFERENCE_WEIGHT, "W"), numpy_helper.from_array(REFERENCE_BIAS, "B")]
    graph = helper.make_graph(nodes, "reference", [images], [logits, pooled], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def build_fp16_identity(path: Path) -> Path:
    """``y = Identity(x)``, x and y float16 of shape (batch, 2): an fp16 graph."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "fp16", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture
def reference_onnx(tmp_path: Path) -> Callable[..., Path]:
    """``reference_onnx("dynamic" | "static1", **kw)`` → path of the reference network as ONNX."""

    def make(variant: str = "dynamic", **kwargs: object) -> Path:
        batch = "batch" if variant == "dynamic" else 1
        return build_reference_onnx(tmp_path / f"reference_{variant}.onnx", batch=batch, **kwargs)  # type: ignore[arg-type]

    return make

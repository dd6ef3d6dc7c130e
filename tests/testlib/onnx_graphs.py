"""Tiny ONNX graphs for model-family tests (needs the ``onnx`` dev dependency)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def constant_onnx(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_shape=("batch", 3, "height", "width"),
    metadata: dict[str, str] | None = None,
) -> Path:
    """An ONNX graph with input ``images`` whose outputs are the given constants (batch 1), with optional
    ``metadata_props``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), f"{name}_c"))
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "constant", [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))], outs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path

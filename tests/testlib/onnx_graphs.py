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


def _layout_head(outputs: dict[str, np.ndarray]):
    """A torch module whose forward(images) returns the given arrays (batch axis included), in order."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i, value in enumerate(outputs.values()):
                self.register_buffer(f"out{i}", torch.from_numpy(np.ascontiguousarray(value)))

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
            z = images.mean() * 0
            res = []
            for i in range(len(outputs)):
                buf = getattr(self, f"out{i}")
                res.append(buf + z if buf.is_floating_point() else buf + z.to(buf.dtype))
            return tuple(res)

    return Head().eval()


def torch_layout_onnx(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_shape: tuple[int, int, int, int] = (1, 3, 32, 32),
) -> Path:
    """A small torch module that emits the given raw outputs (a published head's layout: float or integer arrays,
    batch axis included) from an image input, exported to ONNX with ``torch.onnx.export`` (input ``images``,
    outputs named and ordered as given). The outputs do not depend on the pixels: the decoders are checked against
    hand-computed expectations on exactly these values."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _layout_head(outputs),
            (torch.zeros(input_shape),),
            str(path),
            input_names=["images"],
            output_names=list(outputs),
            opset_version=17,
            dynamo=False,
        )
    return path


def torch_layout_torchscript(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_shape: tuple[int, int, int, int] = (1, 3, 32, 32),
) -> Path:
    """The module of :func:`torch_layout_onnx`, traced and saved as TorchScript (outputs in the given order)."""
    import torch

    torch.jit.trace(_layout_head(outputs), (torch.zeros(input_shape),)).save(str(path))
    return path

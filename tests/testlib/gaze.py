"""L2CS-Net test networks with RANDOM weights (no gaze weights can be obtained here), exported to ONNX; shared by the
gaze family tests and the ``face-gaze`` pipeline tests."""

from __future__ import annotations

from pathlib import Path


def export(module: object, path: Path, names: tuple[str, str] = ("out0", "out1"), size: int = 448) -> Path:
    """``module`` as an ONNX file with one ``input`` (N, 3, size, size) and two outputs, dynamic batch."""
    import warnings

    import torch

    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice is attributed to this file
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            torch.zeros(1, 3, size, size),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=list(names),
            dynamic_axes={"input": {0: "batch"}, names[0]: {0: "batch"}, names[1]: {0: "batch"}},
        )
    return path


def small_network(folder: Path) -> tuple[object, Path]:
    """A small L2CS ResNet (one Bottleneck per stage, 16-channel stem, real heads), seed 0, with spread logits so
    the expected angle is far from the uniform −2°; returns the module and its ``weights.onnx`` in ``folder``."""
    import torch

    from im_models.gaze._l2cs_torch import build_l2cs_network

    torch.manual_seed(0)
    net = build_l2cs_network(layers=(1, 1, 1, 1), width=16)
    with torch.no_grad():
        net.fc_yaw_gaze.weight.mul_(40.0)
        net.fc_pitch_gaze.weight.mul_(40.0)
    return net, export(net, folder / "weights.onnx")

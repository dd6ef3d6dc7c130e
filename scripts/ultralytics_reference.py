"""Generate the Ultralytics parity fixtures: tiny random-init models exported by ``ultralytics`` itself, and
Ultralytics' own ``predict`` results on those exported files.

Run it in a separate environment (``ultralytics`` pulls ``opencv-python``, which clashes with the workspace's
``opencv-python-headless``; it is not a dependency of any im package)::

    uv venv /tmp/ulenv --python 3.11
    uv pip install --python /tmp/ulenv/bin/python ultralytics onnx onnxruntime torch torchvision
    YOLO_OFFLINE=1 /tmp/ulenv/bin/python scripts/ultralytics_reference.py \
        --images .cache/test-assets/images --out tests/im_models/fixtures/ultralytics

Nothing is downloaded: every model is built from the yaml that ships inside the ``ultralytics`` package (random
init, seeded), at a tiny width so that the files stay small, then exported to ONNX (with and without NMS in the
graph, and YOLO26 with its end-to-end and its one-to-many head) and TorchScript. The class head's biases are reset
(random init starts them at about -8, where no box would pass a threshold) so that there are confident, overlapping
candidates and the NMS has work to do.

Outputs under ``--out``: the exported files, ``predictions.npz`` (per file and image: ``boxes`` xyxy, ``conf``,
``cls``, plus ``xywhr`` / ``corners`` for OBB, ``keypoints`` (N, K, 3) for pose, packed ``masks`` at the original
image size (``retina_masks=True``) for segmentation, ``probs`` for classification), ``fixtures.json`` (what each
file is and the predict arguments) and the versions of everything involved.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

IMGSZ = 128
SCALE = [0.33, 0.0625, 64]  # depth, width, max channels: 8 channels everywhere, ~100-200 kB per export
PREDICT = {"conf": 0.25, "iou": 0.7, "max_det": 100, "imgsz": IMGSZ, "verbose": False}
IMAGES = ("astronaut.png", "chelsea.png")

# name -> (yaml inside ultralytics/cfg/models, overrides of the yaml, exports: (suffix, format, export kwargs))
SPECS: dict[str, tuple[str, dict[str, Any], list[tuple[str, str, dict[str, Any]]]]] = {
    "yolov8-obb": (
        "v8/yolov8-obb.yaml",
        {"nc": 3, "reg_max": 4},
        [("onnx", "onnx", {}), ("nms.onnx", "onnx", {"nms": True}), ("torchscript", "torchscript", {})],
    ),
    "yolo26-obb": ("26/yolo26-obb.yaml", {"nc": 3}, [("e2e.onnx", "onnx", {"nms": False}), ("onnx", "onnx", {})]),
    "yolov8-seg": (
        "v8/yolov8-seg.yaml",
        {"nc": 3, "reg_max": 4},
        [("onnx", "onnx", {}), ("nms.onnx", "onnx", {"nms": True})],
    ),
    "yolo26-seg": ("26/yolo26-seg.yaml", {"nc": 3}, [("e2e.onnx", "onnx", {"nms": False})]),
    "yolov8-pose": ("v8/yolov8-pose.yaml", {"nc": 1, "reg_max": 4, "kpt_shape": [5, 3]}, [("onnx", "onnx", {})]),
    "yolo26-pose": ("26/yolo26-pose.yaml", {"nc": 1, "kpt_shape": [5, 3]}, [("e2e.onnx", "onnx", {"nms": False})]),
    "yolo26": ("26/yolo26.yaml", {"nc": 3}, [("e2e.onnx", "onnx", {"nms": False}), ("onnx", "onnx", {})]),
}


def _build(name: str, yaml_rel: str, overrides: dict[str, Any], tmp: Path) -> Any:
    import torch
    import ultralytics
    import yaml
    from ultralytics import YOLO

    src = Path(ultralytics.__file__).parent / "cfg" / "models" / yaml_rel
    cfg = yaml.safe_load(src.read_text())
    cfg.update(overrides)
    cfg["scales"] = {"n": SCALE}
    path = tmp / f"{name}n.yaml"  # the "n" selects the scale
    path.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    model = YOLO(str(path), task=None)
    _spread(model.model)
    model.model.names = {i: f"c{i}" for i in range(len(model.model.names))}
    return model


def _spread(net: Any) -> None:
    """Random init gives near-constant outputs (every score ~0.58, the same angle): re-draw the trainable convs
    with a larger gain, then scale the last conv of the class and extra (angle / keypoint / mask-coefficient) heads
    so that their outputs spread with a standard deviation of ~1.5 around 0 on a sample input."""
    import math

    import torch

    gen = torch.Generator().manual_seed(1)
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d) and mod.weight.requires_grad:  # the DFL's fixed conv stays as it is
            fan = mod.weight[0].numel()
            mod.weight.data = torch.randn(mod.weight.shape, generator=gen) * math.sqrt(3.0 / fan)
    head = net.model[-1]
    last = [
        seq[-1]
        for branch in ("cv3", "cv4", "one2one_cv3", "one2one_cv4")
        for seq in (getattr(head, branch, None) or [])
        if isinstance(seq, torch.nn.Sequential) and isinstance(seq[-1], torch.nn.Conv2d)
    ]
    seen: dict[int, torch.Tensor] = {}
    hooks = [c.register_forward_hook(lambda m, i, o: seen.__setitem__(id(m), o.detach())) for c in last]
    net.eval()
    with torch.no_grad():
        net(torch.rand(2, 3, IMGSZ, IMGSZ, generator=gen))
    for h in hooks:
        h.remove()
    for conv in last:
        out = seen[id(conv)]
        mean = out.mean(dim=(0, 2, 3))
        k = 1.5 / out.std().clamp_min(1e-6)
        conv.weight.data *= k
        bias = conv.bias.data if conv.bias is not None else torch.zeros_like(mean)
        conv.bias = torch.nn.Parameter((bias - mean) * k)


def _pack(masks: np.ndarray) -> np.ndarray:
    return np.packbits(masks.astype(bool), axis=-1)


def _predict(file: Path, task: str, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from ultralytics import YOLO

    model = YOLO(str(file), task=task)
    out: dict[str, np.ndarray] = {}
    for img_name, bgr in images.items():
        r = model.predict(bgr, retina_masks=True, **PREDICT)[0]
        key = f"{file.name}|{img_name}"
        if task == "classify":
            out[f"{key}|probs"] = r.probs.data.cpu().numpy().astype(np.float32)
            continue
        if task == "obb":
            o = r.obb
            out[f"{key}|xywhr"] = o.xywhr.cpu().numpy().astype(np.float32)
            out[f"{key}|corners"] = o.xyxyxyxy.cpu().numpy().astype(np.float32)
            out[f"{key}|conf"] = o.conf.cpu().numpy().astype(np.float32)
            out[f"{key}|cls"] = o.cls.cpu().numpy().astype(np.int64)
            continue
        b = r.boxes
        out[f"{key}|boxes"] = b.xyxy.cpu().numpy().astype(np.float32)
        out[f"{key}|conf"] = b.conf.cpu().numpy().astype(np.float32)
        out[f"{key}|cls"] = b.cls.cpu().numpy().astype(np.int64)
        if r.keypoints is not None:
            out[f"{key}|keypoints"] = r.keypoints.data.cpu().numpy().astype(np.float32)
        if r.masks is not None:
            out[f"{key}|masks"] = _pack(r.masks.data.cpu().numpy() > 0.5)
    return out


def _rotated_nms_reference(out: Path) -> None:
    """Random rotated boxes (some degenerate, angles beyond [-pi/4, 3pi/4)) and what Ultralytics' OBB NMS keeps:
    ``TorchNMS.fast_nms`` with ``batch_probiou``, class-aware through its centre offset as ``non_max_suppression``
    does it, and class-agnostic; plus ``batch_probiou`` and ``xywhr2xyxyxyxy`` on a subset."""
    import torch
    from ultralytics.utils.metrics import batch_probiou
    from ultralytics.utils.nms import TorchNMS
    from ultralytics.utils.ops import xywhr2xyxyxyxy

    rng = np.random.default_rng(0)
    n = 2000
    b = np.concatenate(
        [rng.uniform(0, 200, (n, 2)), rng.uniform(1, 60, (n, 2)), rng.uniform(-1.0, 3.0, (n, 1))], axis=1
    ).astype(np.float32)
    b[:5, 2] = 0.0  # degenerate
    scores = rng.random(n).astype(np.float32)
    cls = rng.integers(0, 3, n)
    t = torch.from_numpy(b)
    s = torch.from_numpy(scores)
    off = torch.from_numpy(cls[:, None].astype(np.float32)) * 7680  # non_max_suppression's max_wh
    aware = torch.cat((t[:, :2] + off, t[:, 2:4], t[:, 4:]), dim=-1)
    ref = {"xywhr": b, "scores": scores, "cls": cls}
    for thr in (0.3, 0.7):
        ref[f"keep_aware_{thr}"] = TorchNMS.fast_nms(aware, s, thr, iou_func=batch_probiou).numpy()
        ref[f"keep_agnostic_{thr}"] = TorchNMS.fast_nms(t, s, thr, iou_func=batch_probiou).numpy()
    ref["probiou_200"] = batch_probiou(t[:200], t[:200]).numpy()
    ref["corners"] = xywhr2xyxyxyxy(t).numpy()
    np.savez_compressed(out / "rotated_nms.npz", **ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=Path(".cache/test-assets/images"))
    ap.add_argument("--out", type=Path, default=Path("tests/im_models/fixtures/ultralytics"))
    args = ap.parse_args()

    import cv2
    import onnx
    import onnxruntime
    import torch
    import ultralytics

    args.out.mkdir(parents=True, exist_ok=True)
    images = {n: cv2.imread(str(args.images / n)) for n in IMAGES}  # BGR, as Ultralytics reads files
    predictions: dict[str, np.ndarray] = {}
    files: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (yaml_rel, overrides, exports) in SPECS.items():
            model = _build(name, yaml_rel, overrides, Path(tmp))
            task = model.task
            for suffix, fmt, kwargs in exports:
                extra = {"simplify": False} if fmt == "onnx" else {}
                exported = Path(model.export(format=fmt, imgsz=IMGSZ, **extra, **kwargs))
                dest = args.out / f"{name}.{suffix}"
                dest.write_bytes(exported.read_bytes())
                exported.unlink()
                files[dest.name] = {"model": name, "task": task, "format": fmt, "export": kwargs}
                predictions.update(_predict(dest, task, images))
    np.savez_compressed(args.out / "predictions.npz", **predictions)
    _rotated_nms_reference(args.out)
    meta = {
        "generator": "scripts/ultralytics_reference.py",
        "versions": {
            "ultralytics": ultralytics.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "imgsz": IMGSZ,
        "scale": SCALE,
        "predict": PREDICT,
        "images": list(IMAGES),
        "files": files,
    }
    (args.out / "fixtures.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {len(files)} exports and {len(predictions)} arrays, {total / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()

"""Ray Data (``im_ray.predict_dataset``) against the plain in-process loop over the same image files (issue 13).

The images: ``--images`` JPEG files (default 1,000) made from the pinned photographs (astronaut, chelsea, camera,
page) by resizing to five sizes, flipping, cropping and changing brightness, written to a temp folder. The model: the
pinned nudenet YOLO (320n ONNX), on the CPU.

Each round runs, alternating which goes first: the plain loop (``model(path)`` for every file, in this process) and
the Ray pipeline (``read_images(folder)`` → ``predict_dataset`` → ``write_parquet``, timed from building the dataset to
the last file written). Every Ray run is checked: one row per input file, each path once, no error row, and the
detection count of every image equal to the loop's. ``ray.init`` is timed once, apart.

Run: ``uv run python benchmarks/bench_ray.py [--images 1000] [--rounds 2] [--batch-size 16] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

# workers run this interpreter, not `uv run` (which re-creates the environment per worker); read at `import ray`
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / ".cache" / "test-assets"
SIZES = [(320, 320), (640, 480), (480, 640), (512, 512), (300, 500)]


def make_images(folder: Path, n: int) -> list[Path]:
    import cv2
    import numpy as np

    photos = []
    for name in ("astronaut", "chelsea", "camera", "page"):
        image = cv2.imread(str(ASSETS / "images" / f"{name}.png"), cv2.IMREAD_COLOR)
        photos.append(image)
    paths = []
    for k in range(n):
        image = photos[k % len(photos)]
        h, w = image.shape[:2]
        crop = (k // len(photos)) % 4  # 0: whole, 1-3: a crop of 90, 80, 70 %
        if crop:
            f = 1 - 0.1 * crop
            image = image[: int(h * f), w - int(w * f) :]
        image = cv2.resize(image, SIZES[k % len(SIZES)])
        if (k // 16) % 2:
            image = cv2.flip(image, 1)
        gain = 0.8 + 0.05 * (k % 9)
        image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        path = folder / f"img{k:05d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import pyarrow.parquet as pq
    import ray

    import im_ray
    from im_core import AutoModel, ModelSpec

    weights = ASSETS / "yolo" / "nudenet_320n.onnx"
    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        folder = work / "images"
        folder.mkdir()
        paths = make_images(folder, args.images)
        model = AutoModel.from_pretrained(weights)
        spec = ModelSpec(weights)
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, _temp_dir=str(work / "ray"))
        init_s = time.perf_counter() - start
        print(f"{len(paths)} images; ray.init {init_s:.1f} s; CPUs {os.cpu_count()}", flush=True)

        expected: dict[str, int] = {}
        rows: list[dict] = []
        for r in range(args.rounds):
            order = ("loop", "ray") if r % 2 == 0 else ("ray", "loop")
            for side in order:
                if side == "loop":
                    start = time.perf_counter()
                    counts = {str(p): len(model(str(p))) for p in paths}
                    seconds = time.perf_counter() - start
                    expected = expected or counts
                    assert counts == expected
                else:
                    out = work / f"out{r}"
                    start = time.perf_counter()
                    ds = im_ray.read_images(str(folder))
                    im_ray.predict_dataset(ds, spec, batch_size=args.batch_size).write_parquet(str(out))
                    seconds = time.perf_counter() - start
                    table = pq.read_table(out, columns=["path", "n", "error"]).to_pydict()
                    shutil.rmtree(out)
                    assert len(table["path"]) == len(paths), (len(table["path"]), len(paths))
                    assert sorted(table["path"]) == sorted(str(p) for p in paths)  # every input row, once
                    assert all(e is None for e in table["error"])
                    if expected:
                        assert dict(zip(table["path"], table["n"])) == expected
                row = {"round": r, "side": side, "seconds": seconds, "images_per_s": len(paths) / seconds}
                rows.append(row)
                print(f"round {r} {side:4s}: {seconds:6.1f} s, {row['images_per_s']:6.1f} images/s", flush=True)
        for side in ("loop", "ray"):
            best = max(x["images_per_s"] for x in rows if x["side"] == side)
            print(f"best {side}: {best:.1f} images/s")
        ratio = max(x["images_per_s"] for x in rows if x["side"] == "ray") / max(
            x["images_per_s"] for x in rows if x["side"] == "loop"
        )
        print(f"ray / loop (best of each): {ratio:.2f}x; every input row present in every Ray run")
        if args.json:
            args.json.write_text(json.dumps({"images": len(paths), "ray_init_s": init_s, "rows": rows}, indent=1))
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

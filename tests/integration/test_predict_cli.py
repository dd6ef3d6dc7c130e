"""``im predict`` / ``im pipeline`` as real subprocesses (``python -m im_core.cli``) on the pinned photographs with
real weights: JSON lines on stdout equal to the in-process results, everything else on stderr, annotated images
written at the input's size, folders, globs and videos, bare files with ``--architecture/--task/--class-names``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from im_core import AutoModel, Detections, Gaze, TextRecognition

pytestmark = pytest.mark.weights

PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "page.png")


def im(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``im ...`` in a fresh interpreter; IM_HOME comes from the test's hermetic environment."""
    return subprocess.run(
        [sys.executable, "-m", "im_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]  # every stdout line is one JSON object


@pytest.fixture(scope="module")
def nudenet(asset) -> Path:
    return asset("yolo/nudenet_320n.onnx")


@pytest.fixture(scope="module")
def photos(asset, tmp_path_factory) -> Path:
    """A folder holding the pinned photographs."""
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(asset(f"images/{name}"), folder / name)
    return folder


def _same_detections(record: dict, expected) -> None:
    """The JSON line holds ``result.to_dict()``: it reads back into a result equal (exactly) to the in-process one."""
    assert record["result"]["type"] == "detections" and record["result"]["n"] == len(expected)
    assert Detections.from_dict(record["result"]) == expected


def test_predict_folder_json_lines_equal_the_in_process_results_and_annotated_images(nudenet, photos, tmp_path):
    out = tmp_path / "out"
    run = im("predict", str(nudenet), str(photos), "--save", str(out), "--json")
    assert run.returncode == 0, run.stderr
    records = lines(run.stdout)
    assert [Path(r["source"]).name for r in records] == list(PHOTOS)  # sorted folder order
    model = AutoModel.from_pretrained(nudenet)
    for record in records:
        source = Path(record["source"])
        expected = model(source)
        _same_detections(record, expected)
        pixels = cv2.imread(str(source))
        assert (record["height"], record["width"]) == pixels.shape[:2]
        assert set(record["speed_ms"]) == {"pre", "infer", "post"}
        assert all(v >= 0 for v in record["speed_ms"].values())
        saved = cv2.imread(str(out / source.name))
        assert saved.shape == pixels.shape  # the input's size
        changed = np.any(saved != pixels, axis=2)
        if len(expected):
            for x1, y1, x2, y2 in expected.xyxy.round().astype(int):
                assert changed[y1 : y2 + 1, x1].mean() > 0.9 and changed[y2, x1 : x2 + 1].mean() > 0.9  # the box
            ys, xs = np.nonzero(changed)
            x1, y1, x2, y2 = expected.xyxy.min(0)[0], expected.xyxy.min(0)[1], *expected.xyxy.max(0)[2:]
            # nothing drawn elsewhere (line width, anti-aliasing and a label wider than a small box: a few pixels)
            assert xs.min() >= x1 - 8 and xs.max() <= x2 + 8 and ys.max() <= y2 + 8
            assert ys.min() < y1  # the label sits above the box
        else:
            assert not changed.any()  # nothing found, nothing drawn
    assert any(r["result"]["n"] for r in records)
    # people-facing text is on stderr: the model, a speed line per image, the summary
    assert "<YOLODetection" in run.stderr and "Speed:" in run.stderr
    assert run.stderr.count("ms pre-process") == len(PHOTOS) + 1


def test_without_json_results_go_to_stdout_and_the_model_to_stderr(nudenet, asset):
    run = im("predict", str(nudenet), str(asset("images/astronaut.png")), "--confidence", "0.5")
    assert run.returncode == 0, run.stderr
    assert "FACE_FEMALE" in run.stdout and "box=(" in run.stdout
    assert "<YOLODetection" not in run.stdout and "<YOLODetection" in run.stderr


def test_im_log_level_shows_im_logs_on_stderr(nudenet, asset):
    photo = str(asset("images/chelsea.png"))
    quiet = im("predict", str(nudenet), photo, "--json")
    loud = im("predict", str(nudenet), photo, "--json", env={"IM_LOG_LEVEL": "DEBUG"})
    assert quiet.returncode == loud.returncode == 0
    assert "INFO im: Negotiation for" in loud.stderr and "SELECTED on cpu" in loud.stderr
    assert "im: " not in quiet.stderr.replace("<YOLODetection", "")
    assert lines(loud.stdout)[0]["result"] == lines(quiet.stdout)[0]["result"]  # logs never reach stdout


def test_glob_patterns_and_missing_inputs(nudenet, photos, tmp_path):
    run = im("predict", str(nudenet), str(photos / "c*.png"), "--json", "--verbose")
    assert run.returncode == 0, run.stderr
    assert [Path(r["source"]).name for r in lines(run.stdout)] == ["camera.png", "chelsea.png"]
    assert "Negotiation for" in run.stderr  # --verbose: the negotiation table, on stderr with the other notes
    run = im("predict", str(nudenet), f"{photos.name}/**/*.png", "--json", cwd=photos.parent)  # recursive
    assert len(lines(run.stdout)) == len(PHOTOS)
    for bad, message in [
        (str(photos / "nothing*.png"), "matches no image"),
        (str(photos / "missing.png"), "is not a file, a folder or a glob"),
        ("https://example.com/cat.jpg", "does not fetch"),
        (str(tmp_path), "holds no images or videos"),
    ]:
        run = im("predict", str(nudenet), bad, "--json")
        assert run.returncode == 2 and message in run.stderr and run.stdout == "", (bad, run.stderr)


def test_a_broken_file_in_a_folder_is_reported_in_its_own_line(nudenet, asset, tmp_path):
    shutil.copy(asset("images/astronaut.png"), tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    run = im("predict", str(nudenet), str(tmp_path), "--json")
    assert run.returncode == 1
    first, second = lines(run.stdout)
    assert first["result"]["n"] and "could not be decoded" in second["error"]
    assert "error:" in run.stderr and "1 input(s) failed" in run.stderr


def test_video_frames_with_a_stride(nudenet, asset, tmp_path):
    frame = cv2.resize(cv2.imread(str(asset("images/astronaut.png"))), (320, 320))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 320))
    for i in range(7):
        writer.write(np.roll(frame, 8 * i, axis=1))  # the face moves right
    writer.release()
    out = tmp_path / "out"
    run = im("predict", str(nudenet), str(video), "--stride", "3", "--json", "--save", str(out))
    assert run.returncode == 0, run.stderr
    records = lines(run.stdout)
    assert [r["frame"] for r in records] == [0, 3, 6]
    assert all(r["source"] == str(video) and (r["width"], r["height"]) == (320, 320) for r in records)
    faces = [r["result"]["xyxy"][0][0] for r in records]
    assert faces[0] < faces[1] < faces[2]  # the frames are the ones asked for
    assert sorted(p.name for p in out.iterdir()) == ["clip_000000.jpg", "clip_000003.jpg", "clip_000006.jpg"]
    assert cv2.imread(str(out / "clip_000003.jpg")).shape == (320, 320, 3)
    assert im("predict", str(nudenet), str(video), "--stride", "0").returncode == 2


def test_on_a_terminal_the_progress_bar_goes_to_stderr_and_stdout_keeps_only_json(nudenet, photos):
    import pty
    import threading

    master, slave = pty.openpty()  # stderr is a terminal, stdout a pipe: `im predict ... --json | jq`
    proc = subprocess.Popen(
        [sys.executable, "-m", "im_core.cli", "predict", str(nudenet), str(photos), "--json"],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = proc.communicate(timeout=240)
    reader.join(timeout=30)
    os.close(master)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, terminal
    assert len(lines(stdout)) == len(PHOTOS)  # nothing but JSON on stdout
    assert f"{len(PHOTOS)}/{len(PHOTOS)}" in terminal and "predict" in terminal  # the bar, on stderr
    assert "ms pre-process" in terminal and "[progress" not in terminal


def test_a_bare_file_with_architecture_task_and_class_names(asset, tmp_path):
    face = asset("face/blazeface_front_128.onnx")
    photo = asset("images/astronaut.png")
    run = im("predict", str(face), str(photo), "--json")
    assert run.returncode == 2 and "architecture" in run.stderr and "Traceback" not in run.stderr
    names = tmp_path / "names.txt"
    names.write_text("visage\n")
    out = tmp_path / "out"
    args = ["--architecture", "blazeface", "--task", "object-detection", "--class-names", f"@{names}"]
    run = im("predict", str(face), str(photo), *args, "--json", "--save", str(out))
    assert run.returncode == 0, run.stderr
    (record,) = lines(run.stdout)
    expected = AutoModel.from_pretrained(
        face, architecture="blazeface", task="object-detection", class_names=["visage"]
    )(photo)
    _same_detections(record, expected)
    assert record["result"]["class_name"][0] == "visage" and expected.keypoints.shape[1] == 6
    saved, pixels = cv2.imread(str(out / "astronaut.png")), cv2.imread(str(photo))
    for x, y in expected.keypoints[0].round().astype(int):  # a dot on every keypoint
        assert np.any(saved[y, x] != pixels[y, x])
    run = im("predict", str(face), str(photo), *args[:4], "--class-names", "@/no/such/names.txt")
    assert run.returncode == 2 and "cannot read '/no/such/names.txt'" in run.stderr and "Traceback" not in run.stderr


def test_pipeline_ocr_reads_the_page_as_in_process(asset, tmp_path):
    from im_pipelines import AutoModelPipeline

    det = {"model_id_or_path": str(asset("ocr/PP-OCRv6_det_tiny.onnx")), "architecture": "pp-ocr-det",
           "task": "text-detection"}  # fmt: skip
    rec = {"model_id_or_path": str(asset("ocr/PP-OCRv6_rec_tiny.onnx")), "architecture": "pp-ocr-rec",
           "task": "text-recognition"}  # fmt: skip
    page = asset("images/page.png")
    out = tmp_path / "out"
    run = im("pipeline", "ocr", str(page), "--model", json.dumps(det), "--model", json.dumps(rec), "--json",
             "--save", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = lines(run.stdout)
    expected = AutoModelPipeline.from_pretrained("ocr", models_parameters=[det, rec])(page)
    assert record["result"]["type"] == "text_recognition" and record["result"]["text"] == expected.text
    assert TextRecognition.from_dict(record["result"]) == expected
    assert "Region-based segmentation" in expected.text
    for line, want in zip(record["result"]["lines"], expected.lines):
        np.testing.assert_array_equal(np.float32(line["polygon"]), want.polygon)
    assert "<OCRPipeline" in run.stderr and "ms total" in run.stderr
    saved, pixels = cv2.imread(str(out / "page.png")), cv2.imread(str(page))
    assert saved.shape == pixels.shape and np.any(saved != pixels)
    run = im("pipeline", "ocr", str(page))
    assert run.returncode == 2 and "pass --model once per role" in run.stderr
    run = im("pipeline", "orc", str(page))
    assert run.returncode == 2 and "ocr" in run.stderr


def test_pipeline_face_gaze_draws_an_arrow_per_face(asset, tmp_path):
    """Real BlazeFace weights; an L2CS gaze network with RANDOM weights (no gaze weights can be had here)."""
    pytest.importorskip("torch")
    from im_pipelines import AutoModelPipeline
    from testlib.gaze import small_network

    _net, gaze_file = small_network(tmp_path)
    face = {"model_id_or_path": str(asset("face/blazeface_front_128.onnx")), "architecture": "blazeface",
            "task": "object-detection"}  # fmt: skip
    gaze = {"model_id_or_path": str(gaze_file), "architecture": "l2cs-net", "task": "gaze-estimation"}
    photo = asset("images/astronaut.png")
    out = tmp_path / "out"
    run = im("pipeline", "face-gaze", str(photo), "--model", json.dumps(face), "--model", json.dumps(gaze),
             "--json", "--save", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr
    (record,) = lines(run.stdout)
    expected = AutoModelPipeline.from_pretrained("face-gaze", models_parameters=[face, gaze])(photo)
    assert record["result"]["type"] == "gaze" and len(record["result"]["yaw"]) == len(expected) == 1
    assert np.float32(record["result"]["yaw"][0]) == expected.yaw[0]
    assert np.float32(record["result"]["pitch"][0]) == expected.pitch[0]
    np.testing.assert_array_equal(np.float32(record["result"]["faces"]["xyxy"][0]), expected.faces.xyxy[0])
    assert Gaze.from_dict(record["result"]) == expected
    saved, pixels = cv2.imread(str(out / "astronaut.png")), cv2.imread(str(photo))
    x1, y1, x2, y2 = expected.faces.xyxy[0].round().astype(int)
    changed = np.any(saved != pixels, axis=2)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    assert changed[cy - 2 : cy + 3, cx - 2 : cx + 3].any()  # the arrow starts at the face's centre
    red = (saved[..., 2] > 200) & (saved[..., 0] < 60) & (saved[..., 1] < 60) & changed
    assert red.sum() > 20  # the arrow is red

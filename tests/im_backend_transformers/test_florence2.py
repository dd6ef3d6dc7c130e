"""Florence-2 through im (``AutoModel`` → the ``transformers`` backend → :class:`GenerativeSession` → im's parser)
against the reference pipeline (``Florence2Processor`` + ``model.generate`` + ``post_process_generation``), on a
tiny randomly initialised Florence-2 (fixed seed) and real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, Detections, TextGeneration
from im_core.errors import InvalidParameterError, ModelLoadingError, NoCompatiblePackageError

N = 16  # new tokens per answer: the tiny model rarely ends early, so every answer is this long
TASKS = [
    ("<CAPTION>", None),
    ("<DETAILED_CAPTION>", None),
    ("<OCR>", None),
    ("<OD>", None),
    ("<OCR_WITH_REGION>", None),
    ("<CAPTION_TO_PHRASE_GROUNDING>", "a cat on a mat"),
]


@pytest.fixture(scope="module")
def model(florence_folder: Path):
    # one torch thread: on a shared 2-core machine, generation's many tiny ops crawl when threads contend
    return AutoModel.from_pretrained(florence_folder, session_options={"num_threads": 1})


@pytest.fixture(scope="module")
def reference(florence_folder: Path):
    from transformers import AutoProcessor, Florence2ForConditionalGeneration

    return (
        AutoProcessor.from_pretrained(str(florence_folder)),
        Florence2ForConditionalGeneration.from_pretrained(str(florence_folder)).eval(),
    )


def _reference(reference, image, task: str, text: str | None):
    import torch

    processor, net = reference
    inputs = processor(text=task + (text or ""), images=image, return_tensors="pt")
    with torch.inference_mode():
        generated = net.generate(**inputs, do_sample=False, max_new_tokens=N)
    decoded = processor.batch_decode(generated, skip_special_tokens=False)[0]
    parsed = processor.post_process_generation(decoded, task=task, image_size=image.size)[task]
    return generated[0, 1:].numpy(), parsed


def test_folder_negotiates_the_transformers_backend(model) -> None:
    from im_backend_transformers._florence2 import Florence2

    assert isinstance(model, Florence2)
    m = model.metadata
    assert (m.architecture, m.task, m.backend) == ("florence-2", "vision-language", "transformers")


def test_reference_parity_every_task_on_real_images(model, reference, real_images) -> None:
    """Random weights: the same token ids, the same text and the same boxes (within 0.5 px) and labels as
    Florence2Processor + generate + post_process_generation, for the six tasks on three photos of three sizes."""
    boxes_seen = 0
    for image in real_images:
        pixels = np.asarray(image)
        for task, text in TASKS:
            ids, want = _reference(reference, image, task, text)
            got = model(pixels, color_format="rgb", task=task, text=text, max_new_tokens=N)
            if isinstance(got, TextGeneration):  # Detections carry no token ids: their boxes and labels are compared
                np.testing.assert_array_equal(got.token_ids, ids)
                assert got.text == want and got.finish_reason == ("eos" if ids[-1] == 2 else "length")
                continue
            assert isinstance(got, Detections)
            labels = want["labels"]
            assert got.names == labels
            if task == "<OCR_WITH_REGION>":
                want_quads = np.asarray(want["quad_boxes"], np.float32).reshape(-1, 4, 2)
                np.testing.assert_allclose(got.data["polygon"], want_quads, atol=0.5)
                if len(want_quads):
                    np.testing.assert_allclose(got.xyxy[:, :2], want_quads.min(axis=1), atol=0.5)
            else:
                np.testing.assert_allclose(got.xyxy, np.asarray(want["bboxes"], np.float32).reshape(-1, 4), atol=0.5)
            boxes_seen += len(got)
    assert boxes_seen > 0  # the random model does write <loc_N> tokens: the box paths were exercised


def _random_answer(rng: np.random.Generator) -> str:
    words = ["cat", "a red car", "the image", "it", "Hello World", "café au lait", " dog ", "2", "<od>", "</s>", "<s>"]
    pieces = []
    for _ in range(int(rng.integers(0, 8))):
        if rng.random() < 0.5:
            pieces.append(words[int(rng.integers(len(words)))])
        pieces += [f"<loc_{int(v)}>" for v in rng.integers(0, 1000, size=int(rng.choice([1, 3, 4, 4, 8, 8, 12])))]
    return "</s>" + "".join(pieces) + "</s>"


@pytest.mark.parametrize("size", [(640, 480), (451, 300), (37, 1001)])
def test_reference_parity_parser_on_written_answers(reference, size: tuple[int, int]) -> None:
    """Random weights seldom write well-formed answers, so im's parser is also compared with the processor's
    post_process_generation on 300 written answers (objects, phrases, OCR lines, banned phrases, unicode)."""
    from im_backend_transformers._florence_parse import parse_generation

    processor, _ = reference
    rng = np.random.default_rng(sum(size))
    written = [
        "</s>cat<loc_10><loc_20><loc_300><loc_400>dog<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8></s>",
        "<s>the image<loc_0><loc_0><loc_999><loc_999>a cat<loc_500><loc_500><loc_600><loc_700></s>",
        "<s>HELLO<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8>wörld 2<loc_9><loc_8><loc_7><loc_6>"
        "<loc_5><loc_4><loc_3><loc_2></s>",
        "",
    ]
    answers = written + [_random_answer(rng) for _ in range(300)]
    tasks = [
        "<OD>",
        "<DENSE_REGION_CAPTION>",
        "<REGION_PROPOSAL>",
        "<CAPTION_TO_PHRASE_GROUNDING>",
        "<OCR_WITH_REGION>",
    ]
    config = processor.post_processor_config
    found = 0
    for text in answers:
        for task in [*tasks, "<CAPTION>"]:
            want = processor.post_process_generation(text, task=task, image_size=size)[task]
            got = parse_generation(text, task, size, config)
            if task == "<CAPTION>":
                assert got.text == want
                continue
            assert list(got.labels) == want["labels"], (text, task)
            key = "quad_boxes" if task == "<OCR_WITH_REGION>" else "bboxes"
            width = 8 if key == "quad_boxes" else 4
            want_xy = np.asarray(want[key], np.float32).reshape(-1, width)
            got_xy = got.quads.reshape(-1, 8) if key == "quad_boxes" else got.boxes
            np.testing.assert_allclose(got_xy, want_xy, atol=0.5, err_msg=f"{task} {text}")
            found += len(want_xy)
    assert found > 300


def test_seeded_sampling_is_reproducible_and_greedy_is_the_default(model, real_images) -> None:
    image = np.asarray(real_images[1])
    a = model.caption(image, color_format="rgb", max_new_tokens=N, do_sample=True, seed=7)
    b = model.caption(image, color_format="rgb", max_new_tokens=N, do_sample=True, seed=7)
    others = [model.caption(image, color_format="rgb", max_new_tokens=N, do_sample=True, seed=s) for s in (1, 2, 3)]
    assert a == b
    assert any(o.token_ids.tolist() != a.token_ids.tolist() for o in others)
    greedy = model.caption(image, color_format="rgb", max_new_tokens=N)
    assert greedy == model.caption(image, color_format="rgb", max_new_tokens=N, seed=7)  # seed without sampling


def test_streaming_yields_the_generated_text(model, real_images) -> None:
    session = model.session
    inputs = session.prepare(text="<OD>", images=real_images[0])
    (generated,) = session.generate(inputs, max_new_tokens=N)
    pieces = list(session.stream(inputs, max_new_tokens=N, skip_special_tokens=False))
    assert len(pieces) > 1
    assert "".join(pieces) == session.decode(generated.ids, skip_special_tokens=False)


def test_a_list_of_images_gets_what_each_gets_alone(model, real_images) -> None:
    images = [np.asarray(im) for im in real_images[:2]]
    together = model.detect(images, color_format="rgb", max_new_tokens=N)
    assert together == [model.detect(im, color_format="rgb", max_new_tokens=N) for im in images]


def test_bad_calls_are_refused(model, real_images) -> None:
    image = np.asarray(real_images[0])
    with pytest.raises(InvalidParameterError, match="<OD>"):
        model(image, task="<SEGMENT_EVERYTHING>")
    with pytest.raises(InvalidParameterError, match="needs text="):
        model(image, task="<CAPTION_TO_PHRASE_GROUNDING>")
    with pytest.raises(InvalidParameterError, match="takes no text="):
        model(image, task="<OD>", text="cat")
    with pytest.raises(InvalidParameterError, match="max_new_tokens"):
        model(image, max_new_tokens=0)
    with pytest.raises(InvalidParameterError, match="temperature"):
        model(image, do_sample=True, temperature=-1.0)


def test_pickle_only_folder_is_refused(florence_folder: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(florence_folder, folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(NoCompatiblePackageError, match="allow_pickle"):
        AutoModel.from_pretrained(folder)


def test_export_is_refused_with_the_reason(florence_folder: Path, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    with pytest.raises(ModelLoadingError, match="not export"):
        export_folder(florence_folder, tmp_path / "out")

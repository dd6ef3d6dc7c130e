"""SmolVLM (Idefics3 layout) through im (``AutoModel`` → the ``transformers`` backend → :class:`GenerativeSession`)
against the reference pipeline (the processor's chat template + ``model.generate`` + ``batch_decode``), on a tiny
randomly initialised model (fixed seed) and real photos."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel, TextGeneration
from im_core.errors import InvalidParameterError

N = 12
PROMPTS = ["What is in this picture?", "How many people are there? Answer in one word."]


@pytest.fixture(scope="module")
def model(smolvlm_folder: Path):
    # one torch thread: on a shared 2-core machine, generation's many tiny ops crawl when threads contend
    return AutoModel.from_pretrained(smolvlm_folder, session_options={"num_threads": 1})


@pytest.fixture(scope="module")
def reference(smolvlm_folder: Path):
    from transformers import AutoProcessor, Idefics3ForConditionalGeneration

    return (
        AutoProcessor.from_pretrained(str(smolvlm_folder)),
        Idefics3ForConditionalGeneration.from_pretrained(str(smolvlm_folder)).eval(),
    )


def _reference(reference, image, prompt: str, seed: int | None = None, **kwargs) -> tuple[np.ndarray, str]:
    import torch

    processor, net = reference
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=text, images=[image], return_tensors="pt")
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        generated = net.generate(**inputs, max_new_tokens=N, **kwargs)
    new = generated[:, inputs["input_ids"].shape[1] :]
    return new[0].numpy(), processor.batch_decode(new, skip_special_tokens=True)[0]


def test_folder_negotiates_the_transformers_backend(model) -> None:
    from im_backend_transformers._smolvlm import SmolVLM

    assert isinstance(model, SmolVLM)
    m = model.metadata
    assert (m.architecture, m.task, m.backend) == ("smolvlm", "vision-language", "transformers")


def test_reference_parity_greedy_answers_on_real_images(model, reference, real_images) -> None:
    """Random weights: the same token ids and the same text as apply_chat_template + processor + generate
    (do_sample=False) + batch_decode, for two prompts on three photos."""
    for image in real_images:
        for prompt in PROMPTS:
            ids, text = _reference(reference, image, prompt, do_sample=False)
            got = model.ask(np.asarray(image), prompt, color_format="rgb", max_new_tokens=N)
            assert isinstance(got, TextGeneration)
            np.testing.assert_array_equal(got.token_ids, ids)
            assert got.text == text and got.finish_reason == ("eos" if len(ids) < N else "length")
            assert got.prompt_tokens > len(prompt.split())


def test_reference_parity_seeded_sampling(model, reference, real_images) -> None:
    """Random weights: sampling with a seed gives what generate(do_sample=True) gives after torch.manual_seed, and
    the same answer every time; another seed another answer."""
    image = real_images[1]
    kwargs = {"do_sample": True, "temperature": 0.8, "top_k": 20, "top_p": 0.9}
    ids, text = _reference(reference, image, PROMPTS[0], seed=5, **kwargs)
    got = model.ask(np.asarray(image), PROMPTS[0], color_format="rgb", max_new_tokens=N, seed=5, **kwargs)
    np.testing.assert_array_equal(got.token_ids, ids)
    assert got.text == text
    again = model.ask(np.asarray(image), PROMPTS[0], color_format="rgb", max_new_tokens=N, seed=5, **kwargs)
    assert again == got
    other = [
        model.ask(np.asarray(image), PROMPTS[0], color_format="rgb", max_new_tokens=N, seed=s, **kwargs) for s in (6, 7)
    ]
    assert any(o.token_ids.tolist() != got.token_ids.tolist() for o in other)


def test_streaming_yields_the_same_text(model, real_images) -> None:
    image = np.asarray(real_images[0])
    whole = model.ask(image, PROMPTS[0], color_format="rgb", max_new_tokens=N)
    pieces = list(model.ask(image, PROMPTS[0], color_format="rgb", max_new_tokens=N, stream=True))
    assert len(pieces) > 1 and "".join(pieces) == whole.text
    sampled = model.ask(image, PROMPTS[0], color_format="rgb", max_new_tokens=N, do_sample=True, seed=3)
    streamed = model.ask(image, PROMPTS[0], color_format="rgb", max_new_tokens=N, do_sample=True, seed=3, stream=True)
    assert "".join(streamed) == sampled.text


def test_closing_a_stream_early_stops_generation(model, real_images) -> None:
    stream = model.ask(np.asarray(real_images[0]), PROMPTS[0], color_format="rgb", max_new_tokens=200, stream=True)
    first = next(stream)
    stream.close()
    assert isinstance(first, str) and first


def test_a_stop_string_ends_the_answer(model, real_images) -> None:
    image = np.asarray(real_images[2])
    whole = model.ask(image, PROMPTS[0], color_format="rgb", max_new_tokens=N)
    pieces = [model.session.decode(whole.token_ids[: i + 1]) for i in range(whole.num_tokens)]
    # the first token in the middle of the greedy answer that adds plain letters not written before it
    k, stop = next(
        (i, b[len(a) :])
        for i, (a, b) in enumerate(itertools.pairwise(pieces), 1)
        if i >= 3 and b.startswith(a) and b[len(a) :].strip().isalpha() and b[len(a) :] not in a
    )
    stopped = model.ask(image, PROMPTS[0], color_format="rgb", max_new_tokens=N, stop=[stop])
    assert stopped.finish_reason == "stop" and stop in stopped.text
    assert stopped.num_tokens == k + 1 < whole.num_tokens and stopped.text.endswith(stop)
    np.testing.assert_array_equal(stopped.token_ids, whole.token_ids[: stopped.num_tokens])


def test_a_list_of_images_gets_what_each_gets_alone(model, real_images) -> None:
    images = [np.asarray(im) for im in real_images]
    together = model(images, color_format="rgb", prompt=PROMPTS[1], max_new_tokens=N)
    assert together == [model(im, color_format="rgb", prompt=PROMPTS[1], max_new_tokens=N) for im in images]


def test_bad_calls_are_refused(model, real_images) -> None:
    image = np.asarray(real_images[0])
    with pytest.raises(InvalidParameterError, match="prompt"):
        model(image)
    with pytest.raises(InvalidParameterError, match="prompt"):
        model.ask(image, "   ")
    with pytest.raises(InvalidParameterError, match="max_new_token"):
        model.ask(image, "hi", max_new_token=3)
    with pytest.raises(InvalidParameterError, match="stop"):
        model.ask(image, "hi", stop=[""])
    with pytest.raises(InvalidParameterError, match="one image"):
        model.ask([image, image], "hi")


def test_a_stream_refuses_bad_arguments_before_generating(model, real_images) -> None:
    image = np.asarray(real_images[0])
    with pytest.raises(InvalidParameterError, match="top_p"):
        model.ask(image, "hi", stream=True, do_sample=True, top_p=2.0)
    with pytest.raises(InvalidParameterError, match="seed"):
        model.ask(image, "hi", stream=True, do_sample=True, seed="7")

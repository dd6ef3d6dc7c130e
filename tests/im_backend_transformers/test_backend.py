"""The ``transformers`` backend and ``im export``: a Hugging Face folder loads through ``AutoModel`` with no
arguments, and its exported ONNX / TorchScript packages give the same results (tiny random CLIP, fixed seed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from im_core import AutoModel
from im_core.errors import AllPackagesFailedError, InvalidParameterError, NoCompatiblePackageError
from testlib.hf_models import toy_tokenizer

IMAGES = [
    (np.random.default_rng(0).random((50, 60, 3)) * 255).astype(np.uint8),
    (np.random.default_rng(1).random((41, 23, 3)) * 255).astype(np.uint8),
]
TEXTS = ["a photo of a cat", "dog", "ünïcode, punctuation!"]


def _embeddings(model) -> tuple[np.ndarray, np.ndarray]:
    return model.embed_images(IMAGES).vectors, model.embed_texts(TEXTS).vectors


def test_folder_is_recognised_from_its_config_json(clip_folder: Path) -> None:
    model = AutoModel.from_pretrained(clip_folder, tokenizer=toy_tokenizer())
    assert (model.metadata.architecture, model.metadata.task, model.metadata.backend) == (
        "clip",
        "embedding",
        "transformers",
    )
    # the learned logit scale lives in the weights; the session carries it as metadata
    init = json.loads((clip_folder / "config.json").read_text())["logit_scale_init_value"]
    assert model.logit_scale == pytest.approx(float(np.exp(init)), rel=1e-6)


def test_towers_equal_transformers_own_forward(clip_folder: Path) -> None:
    import torch
    from transformers import CLIPModel

    model = AutoModel.from_pretrained(clip_folder, tokenizer=toy_tokenizer())
    reference = CLIPModel.from_pretrained(str(clip_folder)).eval()
    ids, mask = toy_tokenizer()(TEXTS)
    with torch.inference_mode():
        out = reference.get_text_features(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    want = getattr(out, "pooler_output", out).numpy()
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(model.embed_texts(TEXTS).vectors, want, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_exported_package_gives_the_folders_results(clip_folder: Path, tmp_path: Path, backend: str) -> None:
    from im_backend_transformers import export_folder

    out = export_folder(clip_folder, tmp_path / backend, backend=backend)
    suffix = {"onnx": ".onnx", "torch": ".torchscript"}[backend]
    assert {f"vision{suffix}", f"text{suffix}", "model_config.json", "config.json"} <= {p.name for p in out.iterdir()}
    exported = AutoModel.from_pretrained(out, tokenizer=toy_tokenizer())
    assert exported.metadata.backend == backend
    assert exported.logit_scale == pytest.approx(
        AutoModel.from_pretrained(clip_folder, tokenizer=toy_tokenizer()).logit_scale
    )
    original = AutoModel.from_pretrained(clip_folder, tokenizer=toy_tokenizer())
    for got, want in zip(_embeddings(exported), _embeddings(original)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_im_export_command(clip_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    run = subprocess.run(
        [sys.executable, "-m", "im_core.cli", "export", str(clip_folder), str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert (out / "vision.onnx").is_file() and (out / "text.onnx").is_file()
    assert "exported" in run.stdout


def test_export_refuses_a_non_empty_destination(clip_folder: Path, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="not empty"):
        export_folder(clip_folder, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_pickle_weights_are_refused_unless_allowed(clip_folder: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(clip_folder / "config.json", folder / "config.json")
    torch.save(load_file(str(clip_folder / "model.safetensors")), folder / "pytorch_model.bin")
    with pytest.raises(NoCompatiblePackageError, match="allow_pickle"):
        AutoModel.from_pretrained(folder, tokenizer=toy_tokenizer())
    model = AutoModel.from_pretrained(folder, tokenizer=toy_tokenizer(), session_options={"allow_pickle": True})
    original = AutoModel.from_pretrained(clip_folder, tokenizer=toy_tokenizer())
    np.testing.assert_allclose(_embeddings(model)[0], _embeddings(original)[0], atol=1e-6)


def test_a_model_type_without_a_family_lists_the_supported_ones(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    BertModel(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    ).save_pretrained(str(folder))
    with pytest.raises(NoCompatiblePackageError) as info:
        AutoModel.from_pretrained(folder)
    assert "'bert'" in str(info.value) and "clip/embedding" in str(info.value)


def test_missing_part_file_says_what_was_looked_for(clip_folder: Path, tmp_path: Path) -> None:
    from im_backend_transformers import export_folder

    out = export_folder(clip_folder, tmp_path / "pkg")
    (out / "text.onnx").unlink()
    with pytest.raises(AllPackagesFailedError, match=r"'text' network.*text\.onnx"):
        AutoModel.from_pretrained(out, tokenizer=toy_tokenizer())


def test_importing_im_backend_transformers_and_im_models_stays_light() -> None:
    code = "import sys, im_models, im_backend_transformers, im_models.hf; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for heavy in ("torch", "transformers", "tokenizers", "onnxruntime", "cv2"):
        assert f"'{heavy}'" not in out, heavy

"""Generation behind a session: :class:`GenerativeSession` runs a ``transformers`` model's ``generate`` (KV cache,
greedy or sampling, ``max_new_tokens``, stop strings) and streams decoded text while it runs.

How it is loaded (the one way, for every generative family): a family calls ``ctx.load_part("generate")``; the
``transformers`` backend sees ``part="generate"`` (:data:`GENERATE_PART`) and returns a :class:`GenerativeSession`
around the folder's model (shared with every other session of the folder, :func:`im_backend_transformers.load_hf_model`)
and its processor (``AutoProcessor``), instead of a tensor-in / tensor-out :class:`im_core.Session`. Generation is
not a :class:`~im_backend_transformers.Part`: a loop over a growing KV cache with sampling and stopping rules is not one
traced graph, so these models are not exported (``im export`` refuses them and says why); they run on torch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from im_core import Device
from im_core.errors import CorruptedModelPackageError, InvalidParameterError, ModelLoadingError

__all__ = ["GENERATE_PART", "GenerativeSession", "Generated", "no_parts"]

#: the ``part`` a family asks the ``transformers`` backend for to get a :class:`GenerativeSession`
GENERATE_PART = "generate"
#: one seeded generation at a time: torch's random generator is process-wide
_SEED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Generated:
    """What one prompt generated.

    Attributes:
        ids: int64 (T,) the new tokens (the prompt excluded; the end-of-sequence token included when written).
        finish_reason: ``"eos"``, ``"length"`` (``max_new_tokens`` reached) or ``"stop"`` (a stop string written).
        prompt_tokens: tokens of the prompt (image tokens included).
    """

    ids: np.ndarray
    finish_reason: str
    prompt_tokens: int


def no_parts(model: Any) -> dict[str, Any]:
    """The recipe of a generative model: it has no exportable part (see the module docstring)."""
    name = type(model).__name__
    raise ModelLoadingError(
        f"{name} generates text with a KV cache in transformers' generate loop, which is not one traced graph: "
        "im does not export it. Fix: load the Hugging Face folder itself (AutoModel.from_pretrained(folder)); it "
        "runs on torch through the transformers backend."
    )


class GenerativeSession:
    """A loaded generative model and its processor, on one device.

    Attributes:
        model: the ``transformers`` model (eval mode; shared with the folder's other sessions).
        processor: the folder's ``AutoProcessor`` (image processor + tokenizer).
        device: where the model runs.
        metadata: ``{"part": "generate", "model_type": ...}``.
    """

    def __init__(self, model: Any, processor: Any, device: Device, metadata: Mapping[str, str]) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.metadata = dict(metadata)
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
        eos = model.generation_config.eos_token_id
        self.eos_ids = frozenset([] if eos is None else [eos] if isinstance(eos, int) else list(eos))

    @classmethod
    def load(cls, folder: Path, model: Any, device: Device) -> GenerativeSession:
        """The session of ``folder`` around its already loaded ``model``.

        Raises:
            ModelLoadingError: the model cannot generate.
            CorruptedModelPackageError: the processor / tokenizer files are missing or broken.
        """
        from transformers import AutoProcessor

        if not (hasattr(model, "generate") and model.can_generate()):
            raise ModelLoadingError(f"{type(model).__name__} of {folder} does not generate text.")
        try:
            processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptedModelPackageError(
                f"transformers could not load the processor of {folder}: {type(exc).__name__}: {exc}. Fix: save the "
                "processor next to the model (processor.save_pretrained(folder)): its processor_config.json, "
                "preprocessor_config.json and tokenizer files."
            ) from exc
        return cls(model, processor, device, {"part": GENERATE_PART, "model_type": str(model.config.model_type)})

    # -- inputs ------------------------------------------------------------------------------------------------------

    def prepare(self, **processor_inputs: Any) -> dict[str, Any]:
        """The processor's tensors for ``processor_inputs`` (``text=``, ``images=``...), on the session's device."""
        import torch

        batch = self.processor(return_tensors="pt", **processor_inputs)
        dtype = next(self.model.parameters()).dtype
        device = torch.device(self.device.torch_string)
        return {
            k: v.to(device, dtype=dtype if v.is_floating_point() else None) if hasattr(v, "to") else v
            for k, v in batch.items()
        }

    # -- generation ---------------------------------------------------------------------------------------------

    def generate(
        self,
        inputs: Mapping[str, Any],
        *,
        max_new_tokens: int = 64,
        do_sample: bool = False,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Generated]:
        """Generate for each row of ``inputs`` (the processor's tensors, :meth:`prepare`).

        Greedy (``do_sample=False``, one beam) or sampling (``temperature``, ``top_p``, ``top_k``; ``None``: the
        model's generation config), with the KV cache, until the end-of-sequence token, ``max_new_tokens`` new tokens
        or one of the ``stop`` strings. ``seed`` makes sampling reproducible (torch's generator is forked, so the
        caller's random state is untouched).

        Returns:
            one :class:`Generated` per row.
        """
        kwargs = self._generate_kwargs(max_new_tokens, do_sample, temperature, top_p, top_k, stop)
        out = self._run(inputs, kwargs, seed)
        return self._split(inputs, out, max_new_tokens, stop)

    def stream(
        self,
        inputs: Mapping[str, Any],
        *,
        skip_special_tokens: bool = True,
        max_new_tokens: int = 64,
        do_sample: bool = False,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Pieces of the decoded answer of a one-row ``inputs``, yielded while the tokens are generated.

        Joined, the pieces are the text of :meth:`generate` with the same arguments decoded with
        ``skip_special_tokens`` (a piece is held back while it ends inside a multi-byte character). Generation runs
        in a background thread, started by the first ``next``; closing the iterator early stops it at the next
        token. Bad arguments raise here, before anything is generated.
        """
        rows = _rows(inputs)
        if rows != 1:
            raise InvalidParameterError(f"stream() generates for one prompt; got {rows} rows.")
        kwargs = self._generate_kwargs(max_new_tokens, do_sample, temperature, top_p, top_k, stop)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidParameterError(f"seed must be an int, got {seed!r}.")
        return self._pieces(inputs, kwargs, seed, skip_special_tokens)

    def _pieces(
        self, inputs: Mapping[str, Any], kwargs: dict[str, Any], seed: int | None, skip_special_tokens: bool
    ) -> Iterator[str]:
        import torch
        from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        tokens: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()

        class _Streamer(BaseStreamer):
            def __init__(self) -> None:
                self.prompt_seen = False

            def put(self, value: Any) -> None:
                if not self.prompt_seen:  # the first call carries the prompt (or the decoder's start token)
                    self.prompt_seen = True
                    return
                tokens.put([int(i) for i in value.reshape(-1).tolist()])

            def end(self) -> None:
                tokens.put(None)

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        failure: list[BaseException] = []

        def work() -> None:
            try:
                self._run(
                    inputs,
                    {**kwargs, "streamer": _Streamer(), "stopping_criteria": StoppingCriteriaList([_Cancel()])},
                    seed,
                )
            except BaseException as exc:  # handed to the consumer
                failure.append(exc)
                tokens.put(None)

        thread = threading.Thread(target=work, name="im-generate", daemon=True)
        thread.start()
        ids: list[int] = []
        sent = ""
        try:
            while True:
                item = tokens.get()
                if item is None:
                    break
                ids += item
                text = self.decode(ids, skip_special_tokens=skip_special_tokens)
                if text.startswith(sent) and not text.endswith("\ufffd") and len(text) > len(sent):
                    piece, sent = text[len(sent) :], text
                    yield piece
            thread.join()
            if failure:
                raise failure[0]
            text = self.decode(ids, skip_special_tokens=skip_special_tokens)
            if len(text) > len(sent) and text.startswith(sent):
                yield text[len(sent) :]
        finally:
            cancelled.set()

    def decode(self, ids: Sequence[int] | np.ndarray, *, skip_special_tokens: bool = True) -> str:
        """Text of token ``ids`` (the tokenizer's ``decode``)."""
        values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        return str(self.tokenizer.decode(values, skip_special_tokens=skip_special_tokens))

    # -- internals ----------------------------------------------------------------------------------------------

    def _generate_kwargs(
        self,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float | None,
        top_p: float | None,
        top_k: int | None,
        stop: Sequence[str],
    ) -> dict[str, Any]:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise InvalidParameterError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}.")
        if not isinstance(do_sample, bool):
            raise InvalidParameterError(f"do_sample must be True or False, got {do_sample!r}.")
        stops = [stop] if isinstance(stop, str) else list(stop or ())
        if not all(isinstance(s, str) and s for s in stops):
            raise InvalidParameterError(f"stop must be a string or a list of non-empty strings, got {stop!r}.")
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "num_beams": 1}
        if do_sample:
            for name, value, ok in (
                ("temperature", temperature, lambda v: v > 0),
                ("top_p", top_p, lambda v: 0 < v <= 1),
                ("top_k", top_k, lambda v: v >= 0 and float(v).is_integer()),
            ):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
                    raise InvalidParameterError(f"{name}={value!r} is out of range.")
                kwargs[name] = int(value) if name == "top_k" else float(value)
        if stops:
            kwargs["stop_strings"] = stops
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    def _run(self, inputs: Mapping[str, Any], kwargs: Mapping[str, Any], seed: int | None) -> Any:
        import torch

        if seed is None or not kwargs.get("do_sample"):
            with torch.inference_mode():
                return self.model.generate(**inputs, **kwargs)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidParameterError(f"seed must be an int, got {seed!r}.")
        devices = [torch.device(self.device.torch_string).index or 0] if self.device.kind == "cuda" else []
        with _SEED_LOCK, torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            return self.model.generate(**inputs, **kwargs)

    def _split(self, inputs: Mapping[str, Any], out: Any, max_new_tokens: int, stop: Sequence[str]) -> list[Generated]:
        """Per row: the new tokens up to and including the first end-of-sequence token, and why it ended."""
        sequences = out.cpu().numpy().astype(np.int64)
        prompt = int(inputs["input_ids"].shape[1])
        start = 1 if self.encoder_decoder else prompt  # an encoder-decoder output starts with the decoder's start token
        new = sequences[:, start:]
        is_eos = np.isin(new, np.fromiter(self.eos_ids, np.int64, len(self.eos_ids)))
        first = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1), new.shape[1])
        stops = [stop] if isinstance(stop, str) else list(stop or ())
        found: list[Generated] = []
        for row, end in zip(new, first.tolist()):
            ids = row[: end + 1] if end < new.shape[1] else row
            if end < new.shape[1]:
                reason = "eos"
            elif len(ids) < max_new_tokens or any(
                self.decode(ids, skip_special_tokens=False).endswith(s) for s in stops
            ):
                reason = "stop"  # stopped early without an end-of-sequence token: a stop string (or a custom rule)
            else:
                reason = "length"
            found.append(Generated(ids, reason, prompt))
        return found


def _rows(inputs: Mapping[str, Any]) -> int:
    ids = inputs.get("input_ids")
    if ids is None:
        raise InvalidParameterError("inputs need input_ids (use GenerativeSession.prepare).")
    return int(ids.shape[0])

"""A backend-independent conformance suite for :class:`im_core.Session` implementations.

Every backend builds the same small *reference network* in its own format and must pass the same checks:

- input ``images``: float32, shape ``(N, 3, 8, 8)``;
- output ``logits``: float32 ``(N, 4)`` = ``mean_hw(images) @ REFERENCE_WEIGHT.T + REFERENCE_BIAS``;
- output ``pooled``: float32 ``(N, 3)`` = ``mean_hw(images)`` (the spatial mean of each channel).

Two variants are loaded: ``"dynamic"`` (batch axis dynamic) and ``"static1"`` (batch fixed to 1).

Use it from pytest by subclassing :class:`SessionConformance` in a ``Test…`` class and implementing
:meth:`SessionConformance.make_session`; or call :func:`run_conformance` with a factory (e.g. in a script on a GPU box).
Outputs may be numpy arrays or torch tensors (GPU sessions); they are compared on the host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from im_core._device import Device
from im_core._protocols import BatchLimits, Session
from im_core.errors import ModelInputError

__all__ = [
    "REFERENCE_BIAS",
    "REFERENCE_INPUT_SHAPE",
    "REFERENCE_WEIGHT",
    "SessionConformance",
    "reference_forward",
    "reference_inputs",
    "reference_torch_module",
    "run_conformance",
    "to_numpy",
]

#: per-item input shape (C, H, W) of the reference network
REFERENCE_INPUT_SHAPE = (3, 8, 8)
#: (4, 3) weight of the reference network's linear head
REFERENCE_WEIGHT = np.array(
    [[0.5, -1.0, 0.25], [1.5, 0.0, -0.5], [-0.75, 0.125, 1.0], [0.2, 0.3, 0.4]], dtype=np.float32
)
#: (4,) bias of the linear head
REFERENCE_BIAS = np.array([0.1, -0.2, 0.3, 0.0], dtype=np.float32)
_THREAD_SAFETY = ("lock", "per-thread", "native")


def reference_inputs(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct float32 inputs of shape ``(n, 3, 8, 8)``, values in [-1, 1)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(n, *REFERENCE_INPUT_SHAPE)).astype(np.float32)


def reference_forward(images: np.ndarray) -> dict[str, np.ndarray]:
    """What every backend's reference network must return for ``images`` (N, 3, 8, 8)."""
    pooled = images.astype(np.float64).mean(axis=(2, 3))
    logits = pooled @ REFERENCE_WEIGHT.T.astype(np.float64) + REFERENCE_BIAS
    return {"logits": logits.astype(np.float32), "pooled": pooled.astype(np.float32)}


def reference_torch_module() -> Any:
    """The reference network as a ``torch.nn.Module`` whose ``forward(images)`` returns ``(logits, pooled)``.

    Imports torch (only when called). Backends export it to their format (ONNX, TorchScript, ``.pt2``).
    """
    import torch

    class _Reference(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(3, 4)
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(REFERENCE_WEIGHT))
                self.head.bias.copy_(torch.from_numpy(REFERENCE_BIAS))

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = images.mean(dim=(2, 3))
            return self.head(pooled), pooled

    return _Reference().eval()


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array or a (possibly CUDA) torch tensor."""
    if type(value).__module__.startswith("torch"):
        return (
            value.detach().float().cpu().numpy()
            if str(value.dtype) == "torch.bfloat16"
            else value.detach().cpu().numpy()
        )
    return np.asarray(value)


def _close(actual: dict[str, Any], expected: dict[str, np.ndarray], rtol: float, atol: float, what: str) -> None:
    assert set(actual) == set(expected), f"{what}: outputs {sorted(actual)} != {sorted(expected)}"
    for name, want in expected.items():
        got = to_numpy(actual[name])
        assert got.shape == want.shape, f"{what}: {name} shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol, err_msg=f"{what}: {name}")


# -- individual checks (usable without pytest) -----------------------------------------------------------------
def check_specs(session: Session, variant: str) -> None:
    """Names, shapes (dynamic dims ``None``) and numpy dtype names of inputs and outputs."""
    batch = None if variant == "dynamic" else 1
    assert [i.name for i in session.inputs] == ["images"], session.inputs
    (spec,) = session.inputs
    assert spec.shape[0] == batch, f"input batch dim {spec.shape[0]!r}, expected {batch!r}"
    assert tuple(spec.shape[1:]) == REFERENCE_INPUT_SHAPE, spec.shape
    assert spec.dtype == "float32", spec.dtype
    assert [o.name for o in session.outputs] == ["logits", "pooled"], session.outputs
    widths = {"logits": 4, "pooled": 3}
    for out in session.outputs:
        np.dtype(out.dtype)  # a real numpy dtype name
        assert out.dtype == "float32", out
        assert len(out.shape) == 2 and out.shape[1] == widths[out.name], out
        assert out.shape[0] in (batch, None), out  # a backend may not know the output batch dim statically
    assert all(d is None or isinstance(d, int) for s in (*session.inputs, *session.outputs) for d in s.shape)


def check_run(session: Session, rtol: float, atol: float) -> None:
    """``run`` returns every output, in order, with the declared dtype, matching the reference."""
    x = reference_inputs(session.batch_limits.min or 1, seed=1)
    out = session.run({"images": x})
    assert list(out) == [o.name for o in session.outputs], list(out)
    for spec in session.outputs:
        assert to_numpy(out[spec.name]).dtype == np.dtype(spec.dtype), (spec, to_numpy(out[spec.name]).dtype)
    _close(out, reference_forward(x), rtol, atol, "run")
    only = session.run({"images": x}, ["pooled"])
    assert list(only) == ["pooled"], list(only)


def check_batch_limits(session: Session, variant: str, dynamic: BatchLimits | None) -> None:
    limits = session.batch_limits
    assert isinstance(limits, BatchLimits), limits
    if variant == "static1":
        assert limits == BatchLimits.fixed(1), limits
    elif dynamic is not None:
        assert limits == dynamic, limits
    else:
        assert not limits.static and limits.min == 1, limits


def check_split(session: Session, n: int, rtol: float, atol: float) -> None:
    """Feeding ``n`` items at once equals feeding them one by one (and the reference)."""
    x = reference_inputs(n, seed=n)
    together = session.run({"images": x})
    singles = [session.run({"images": x[i : i + 1]}) for i in range(n)]
    for name in ("logits", "pooled"):
        one_by_one = np.concatenate([to_numpy(s[name]) for s in singles])
        got = to_numpy(together[name])
        assert got.shape[0] == n, got.shape
        np.testing.assert_allclose(got, one_by_one, rtol=rtol, atol=atol, err_msg=f"batch {n} vs singles: {name}")
    _close(together, reference_forward(x), rtol, atol, f"batch {n}")


def check_threads(session: Session, threads: int, calls: int, rtol: float, atol: float) -> None:
    """``threads`` threads calling one session give the same results as serial calls."""
    assert session.thread_safety in _THREAD_SAFETY, session.thread_safety
    batch = 1 if session.batch_limits.static else 3
    inputs = [reference_inputs(batch, seed=100 + i) for i in range(threads * calls)]
    serial = [session.run({"images": x}) for x in inputs]
    results: list[Any] = [None] * len(inputs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(t, len(inputs), threads):
                results[i] = session.run({"images": inputs[i]})
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    for i, (got, want) in enumerate(zip(results, serial)):
        _close(got, {k: to_numpy(v) for k, v in want.items()}, rtol, atol, f"thread call {i}")


def check_metadata(session: Session, expected: Mapping[str, str] | None) -> None:
    """``metadata`` is a mapping of strings to strings (``{}`` when the file has none) holding ``expected``."""
    meta = session.metadata
    assert isinstance(meta, Mapping), f"metadata is a {type(meta).__name__}, not a Mapping"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), meta
    for key, value in (expected or {}).items():
        assert meta.get(key) == value, f"metadata[{key!r}] is {meta.get(key)!r}, expected {value!r}"


def check_wrong_inputs(session: Session) -> None:
    """Wrong or missing input names raise ``ModelInputError`` (never a bare KeyError/ValueError)."""
    x = reference_inputs(1)
    for feeds in ({"image": x}, {}, {"images": x, "extra": x}):
        try:
            session.run(feeds)
        except ModelInputError:
            continue
        raise AssertionError(f"run({sorted(feeds)}) did not raise ModelInputError")


# -- pytest base class ---------------------------------------------------------------------------------------------
class SessionConformance:
    """Subclass as ``class TestMyBackendConformance(SessionConformance)`` and implement :meth:`make_session`.

    Class attributes a subclass may override:
        expected_device: the ``device`` sessions report (a :class:`im_core.Device`, or a string ``Device.parse``
            reads, e.g. ``"cuda:0"``).
        expected_backend: the ``backend`` name sessions report.
        dynamic_limits: exact ``BatchLimits`` of the dynamic variant (``None``: min 1, not static, any max).
        expected_metadata: entries the dynamic variant's ``metadata`` must hold (``None``: only its type is checked;
            embed them when building the reference file where the format can carry metadata).
        rtol / atol: tolerances against the float64 reference.
        threads / calls_per_thread: the concurrency test's size.
    """

    expected_device: str | Device = "cpu"
    expected_backend: str | None = None
    dynamic_limits: BatchLimits | None = None
    expected_metadata: Mapping[str, str] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    threads: int = 8
    calls_per_thread: int = 4

    def make_session(self, variant: str) -> Session:
        """Load the reference network; ``variant`` is ``"dynamic"`` or ``"static1"``."""
        raise NotImplementedError

    def test_conformance_specs(self) -> None:
        for variant in ("dynamic", "static1"):
            check_specs(self.make_session(variant), variant)

    def test_conformance_protocol_and_device(self) -> None:
        session = self.make_session("dynamic")
        assert isinstance(session, Session)
        assert isinstance(session.device, Device), f"session.device must be an im_core.Device: {session.device!r}"
        assert session.device == Device.parse(self.expected_device), session.device
        if self.expected_backend is not None:
            assert session.backend == self.expected_backend, session.backend
        assert session.thread_safety in _THREAD_SAFETY

    def test_conformance_batch_limits(self) -> None:
        for variant in ("dynamic", "static1"):
            check_batch_limits(self.make_session(variant), variant, self.dynamic_limits)

    def test_conformance_run(self) -> None:
        for variant in ("dynamic", "static1"):
            check_run(self.make_session(variant), self.rtol, self.atol)

    def test_conformance_static_batch_1_fed_5(self) -> None:
        check_split(self.make_session("static1"), 5, self.rtol, self.atol)

    def test_conformance_dynamic_batch_fed_37(self) -> None:
        check_split(self.make_session("dynamic"), 37, self.rtol, self.atol)

    def test_conformance_threads_match_serial(self) -> None:
        for variant in ("dynamic", "static1"):
            check_threads(self.make_session(variant), self.threads, self.calls_per_thread, self.rtol, self.atol)

    def test_conformance_metadata(self) -> None:
        check_metadata(self.make_session("dynamic"), self.expected_metadata)

    def test_conformance_wrong_input_names(self) -> None:
        check_wrong_inputs(self.make_session("dynamic"))


def run_conformance(
    make_session: Callable[[str], Session],
    *,
    device: str | Device = "cpu",
    dynamic_limits: BatchLimits | None = None,
    expected_metadata: Mapping[str, str] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> list[str]:
    """Run every check outside pytest; returns the names of the checks that passed (raises on the first failure)."""

    class _Run(SessionConformance):
        expected_device = device

        def make_session(self, variant: str) -> Session:
            return make_session(variant)

    suite = _Run()
    suite.dynamic_limits, suite.rtol, suite.atol = dynamic_limits, rtol, atol
    suite.expected_metadata = expected_metadata
    passed = []
    for name in sorted(n for n in dir(suite) if n.startswith("test_conformance_")):
        getattr(suite, name)()
        passed.append(name)
    return passed

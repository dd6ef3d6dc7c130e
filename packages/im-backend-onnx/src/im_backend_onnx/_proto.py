"""Just enough of the protobuf wire format to write a one-node ONNX model and read an ONNX file's header fields.

The backend must not depend on the ``onnx`` package: :func:`identity_model` encodes a tiny ``ModelProto`` (used to ask
ONNX Runtime which opsets it accepts) and :func:`read_model_header` reads top-level ``ModelProto`` fields (metadata
props, opset imports, IR version) without decoding the graph, so inspecting a 200 MB model costs one pass over bytes.

Field numbers are from ``onnx/onnx.proto3``.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OnnxHeader", "identity_model", "read_model_header"]

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
Buffer = bytes | mmap.mmap


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(value)


def _msg(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _key(number, _LEN) + _varint(len(data)) + data


def _float_tensor_info(name: str) -> bytes:
    dim = _msg(1, _int(1, 1))  # Dimension { dim_value: 1 }
    tensor = _int(1, 1) + _msg(2, dim)  # TypeProto.Tensor { elem_type: FLOAT, shape }
    return _msg(1, name) + _msg(2, _msg(1, tensor))  # ValueInfoProto { name, type { tensor_type } }


def identity_model(opset: int, *, ir_version: int = 8) -> bytes:
    """Serialized ``ModelProto``: ``y = Identity(x)``, x/y float32 of shape (1,), default domain at ``opset``."""
    node = _msg(1, "x") + _msg(2, "y") + _msg(4, "Identity")
    graph = _msg(1, node) + _msg(2, "probe") + _msg(11, _float_tensor_info("x")) + _msg(12, _float_tensor_info("y"))
    opset_id = _msg(1, "") + _int(2, opset)
    return _int(1, ir_version) + _msg(2, "im") + _msg(7, graph) + _msg(8, opset_id)


@dataclass
class OnnxHeader:
    """Top-level facts of an ONNX file.

    Attributes:
        ir_version: ONNX IR version.
        opsets: domain (``""`` = default ONNX domain) → opset version.
        metadata: ``metadata_props`` (Ultralytics exports keep task, names, imgsz, stride here).
        producer: producer name and version, e.g. ``"pytorch 2.5"``.
    """

    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    producer: str = ""


def _read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: Buffer, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(number, wire_type, a, b)``: ``a`` is the value of a varint, ``(a, b)`` the span of a length field."""
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield number, wire, value, 0
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > end:
                raise ValueError("truncated field")
            yield number, wire, pos, pos + size
            pos += size
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _text(buf: Buffer, a: int, b: int) -> str:
    return bytes(buf[a:b]).decode("utf-8", "replace")


def _parse_header(buf: Buffer) -> OnnxHeader:
    header = OnnxHeader()
    producer = ["", ""]
    for number, wire, a, b in _fields(buf, 0, len(buf)):
        if number == 1 and wire == _VARINT:
            header.ir_version = a
        elif number in (2, 3) and wire == _LEN:
            producer[number - 2] = _text(buf, a, b)
        elif number == 8 and wire == _LEN:
            domain, version = "", 1
            for n, w, x, y in _fields(buf, a, b):
                if n == 1 and w == _LEN:
                    domain = _text(buf, x, y)
                elif n == 2 and w == _VARINT:
                    version = x
            header.opsets[domain] = version
        elif number == 14 and wire == _LEN:
            kv = {n: _text(buf, x, y) for n, w, x, y in _fields(buf, a, b) if w == _LEN}
            header.metadata[kv.get(1, "")] = kv.get(2, "")
    header.producer = " ".join(p for p in producer if p)
    return header


def read_model_header(path: Path) -> OnnxHeader:
    """Read ``ir_version``, ``opset_import``, ``metadata_props`` and producer of an ONNX file (memory-mapped).

    Raises:
        ValueError: the file is empty or not a well-formed protobuf message.
    """
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            raise ValueError("empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _parse_header(mm)

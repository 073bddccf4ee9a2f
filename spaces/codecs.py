"""Payload codecs: how the split tensor is put on the wire (DESIGN.md section 8), over numpy or torch arrays.

``float32`` sends the tensor as it is, ``float16`` as half floats; ``int16`` and ``int8`` quantize it
affinely per tensor, ``q = clip(round(x / scale) + zero_point)``, and send the scale (float32) and the
zero point (int32) before the data. The range quantized always holds 0, so a zero (a ReLU's output, or
an element lost on the link) is decoded exactly. A payload of n elements takes
``n * bits / 8 + header_bytes`` bytes: ``predictor.latency.Link.payload_bytes`` is this definition.

Everything is written once over the array API (``array_api_compat``): numpy on an edge server, torch in
training, with the same results. ``roundtrip`` quantizes every sample of a batch with its own scale and
zero point, exactly as a deployed network at batch 1 sends it; ``quantize_ste`` is that round trip with
the identity as its gradient (straight-through), for training.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Final

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from spaces.errors import UserError
from spaces.registry import registrar

# the header of an integer payload: scale as float32, zero point as int32, little endian
HEADER: Final = struct.Struct("<fi")
FLOAT16_MAX: Final = 65504.0


class UnknownCodecError(UserError, ValueError):
    """A codec name or bit width that no codec has."""


@dataclass(frozen=True)
class Encoded:
    """A tensor as sent: ``data`` in the wire dtype, with the scale and zero point of an integer codec
    (1.0 and 0 for the float codecs)."""

    codec: str
    data: Any
    scale: float = 1.0
    zero_point: int = 0

    def to_bytes(self) -> bytes:
        """The payload on the wire: the header (integer codecs), then the elements, little endian, C order."""
        codec = get_codec(self.codec)
        header = HEADER.pack(self.scale, self.zero_point) if codec.header_bytes else b""
        data = np.asarray(self.data)
        return header + data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes(order="C")

    @classmethod
    def from_bytes(cls, codec: str | int, payload: bytes | bytearray | memoryview, shape: Sequence[int]) -> Encoded:
        """The inverse of ``to_bytes`` for a tensor of ``shape`` (numpy data)."""
        spec = get_codec(codec)
        expected = spec.payload_bytes(shape)
        if len(payload) != expected:
            raise ValueError(f"a {spec.name} payload of shape {list(shape)} is {expected} bytes, got {len(payload)}")
        scale, zero_point = HEADER.unpack_from(payload) if spec.header_bytes else (1.0, 0)
        data = np.frombuffer(payload, dtype=np.dtype(spec.wire_dtype).newbyteorder("<"), offset=spec.header_bytes)
        return cls(spec.name, data.reshape(tuple(shape)).astype(spec.wire_dtype), float(scale), int(zero_point))


class Codec:
    """One way of sending the split tensor: its bits per element, wire dtype and header."""

    name: ClassVar[str]
    bits: ClassVar[int]
    wire_dtype: ClassVar[str]
    header_bytes: ClassVar[int] = 0

    def payload_bytes(self, elements: Any) -> Any:
        """Bytes of a payload of ``elements`` elements (a number, an array of counts, or a shape tuple)."""
        if isinstance(elements, (tuple, list)):
            elements = math.prod(elements)
        return elements * self.bits / 8 + self.header_bytes

    def encode(self, x: Any) -> Encoded:
        """``x`` (any shape, one tensor) as sent."""
        raise NotImplementedError

    def decode(self, encoded: Encoded) -> Any:
        """The float32 tensor the receiver gets."""
        raise NotImplementedError

    def roundtrip(self, x: Any) -> Any:
        """decode(encode(x)) of every sample of the batch ``x`` (leading axis) on its own, in float32."""
        raise NotImplementedError

    def max_error(self, x: Any) -> float:
        """The largest |roundtrip(x) - x| this codec allows for the tensor ``x``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<codec {self.name}>"


CODECS: dict[str, Codec] = {}
_register = registrar(CODECS, "payload codec")

# what a link with q bits per element sends unless told otherwise
DEFAULT_CODECS: Final = {32: "float32", 16: "float16", 8: "int8"}


def register_codec(cls: type[Codec]) -> type[Codec]:
    _register(cls.name)(cls())
    return cls


def get_codec(name_or_bits: str | int | Codec) -> Codec:
    """A codec by name (``int8``) or by bits per element (32, 16, 8: float32, float16, int8)."""
    if isinstance(name_or_bits, Codec):
        return name_or_bits
    if isinstance(name_or_bits, int) and not isinstance(name_or_bits, bool):
        if name_or_bits not in DEFAULT_CODECS:
            raise UnknownCodecError(f"no codec sends {name_or_bits} bits per element; allowed: 8, 16 or 32")
        return CODECS[DEFAULT_CODECS[name_or_bits]]
    if name_or_bits not in CODECS:
        raise UnknownCodecError(f"unknown payload codec {name_or_bits!r}; allowed: {', '.join(CODECS)}")
    return CODECS[name_or_bits]


def _float32(xp: Any, x: Any) -> Any:
    return x if x.dtype == xp.float32 else xp.astype(x, xp.float32)


@register_codec
class Float32(Codec):
    """The tensor as computed: exact."""

    name, bits, wire_dtype = "float32", 32, "float32"

    def encode(self, x: Any) -> Encoded:
        return Encoded(self.name, _float32(array_namespace(x), x))

    def decode(self, encoded: Encoded) -> Any:
        return _float32(array_namespace(encoded.data), encoded.data)

    def roundtrip(self, x: Any) -> Any:
        return _float32(array_namespace(x), x)

    def max_error(self, x: Any) -> float:
        return 0.0


@register_codec
class Float16(Codec):
    """Half floats (values beyond float16's range are clipped to +-65504): relative error 2^-11."""

    name, bits, wire_dtype = "float16", 16, "float16"

    def _half(self, x: Any) -> Any:
        xp = array_namespace(x)
        return xp.astype(xp.clip(_float32(xp, x), -FLOAT16_MAX, FLOAT16_MAX), xp.float16)

    def encode(self, x: Any) -> Encoded:
        return Encoded(self.name, self._half(x))

    def decode(self, encoded: Encoded) -> Any:
        return _float32(array_namespace(encoded.data), encoded.data)

    def roundtrip(self, x: Any) -> Any:
        return self.decode(self.encode(x))

    def max_error(self, x: Any) -> float:
        xp = array_namespace(x)
        largest = float(xp.max(xp.abs(x))) if math.prod(x.shape) else 0.0
        # half a unit in the last place of the largest magnitude (the subnormal spacing near 0)
        return max(largest * 2.0**-11, 2.0**-25)


class Affine(Codec):
    """Affine integer quantization with a per-tensor scale and zero point (``qmin``..``qmax``)."""

    header_bytes = HEADER.size
    qmin: ClassVar[int]
    qmax: ClassVar[int]

    def parameters(self, x: Any, axes: tuple[int, ...] | None) -> tuple[Any, Any]:
        """Scale (float32) and zero point (float32 holding integers) of ``x`` reduced over ``axes``.

        The scale is rounded to float32 (what the header sends) before it is used, so sender and
        receiver, numpy and torch, compute with the same number.
        """
        xp = array_namespace(x)
        x = _float32(xp, x)
        zero = xp.zeros((), dtype=xp.float32, device=device_of(x))
        low = xp.minimum(xp.min(x, axis=axes, keepdims=axes is not None), zero)
        high = xp.maximum(xp.max(x, axis=axes, keepdims=axes is not None), zero)
        span = xp.astype(high, xp.float64) - xp.astype(low, xp.float64)
        scale = xp.astype(span / float(self.qmax - self.qmin), xp.float32)
        # an all-zero tensor: any scale decodes it; 1 keeps the division finite
        scale = xp.where(scale > 0, scale, xp.ones_like(scale))
        zero_point = xp.clip(float(self.qmin) - xp.round(low / scale), float(self.qmin), float(self.qmax))
        return scale, zero_point

    def quantize(self, x: Any, scale: Any, zero_point: Any) -> Any:
        xp = array_namespace(x)
        q = xp.round(_float32(xp, x) / scale) + zero_point
        return xp.astype(xp.clip(q, float(self.qmin), float(self.qmax)), getattr(xp, self.wire_dtype))

    def dequantize(self, q: Any, scale: Any, zero_point: Any) -> Any:
        xp = array_namespace(q)
        return (xp.astype(q, xp.float32) - zero_point) * scale

    def encode(self, x: Any) -> Encoded:
        scale, zero_point = self.parameters(x, None)
        return Encoded(self.name, self.quantize(x, scale, zero_point), float(scale), int(zero_point))

    def decode(self, encoded: Encoded) -> Any:
        xp, where = array_namespace(encoded.data), device_of(encoded.data)
        return self.dequantize(encoded.data, xp.asarray(encoded.scale, dtype=xp.float32, device=where),
                               xp.asarray(float(encoded.zero_point), dtype=xp.float32, device=where))

    def roundtrip(self, x: Any) -> Any:
        scale, zero_point = self.parameters(x, tuple(range(1, x.ndim)) if x.ndim > 1 else None)
        return self.dequantize(self.quantize(x, scale, zero_point), scale, zero_point)

    def max_error(self, x: Any) -> float:
        """Half a quantization step, plus float32 rounding of the decoded value."""
        xp = array_namespace(x)
        if not math.prod(x.shape):
            return 0.0
        largest = float(xp.max(xp.abs(x)))
        scale = float(self.parameters(x, None)[0])
        return scale / 2 + 4 * largest * 2.0**-24 + scale * 2.0**-20


@register_codec
class Int16(Affine):
    name, bits, wire_dtype = "int16", 16, "int16"
    qmin, qmax = -(2**15), 2**15 - 1


@register_codec
class Int8(Affine):
    name, bits, wire_dtype = "int8", 8, "int8"
    qmin, qmax = -(2**7), 2**7 - 1


@cache
def _straight_through() -> Any:
    import torch

    class StraightThrough(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor, codec: Codec) -> torch.Tensor:  # type: ignore[override]
            return codec.roundtrip(x).to(x.dtype)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
            return grad, None

    return StraightThrough


def quantize_ste(x: Any, codec: str | int | Codec) -> Any:
    """``codec.roundtrip(x)`` of a torch tensor whose gradient passes through unchanged (training)."""
    spec = get_codec(codec)
    if isinstance(spec, Float32):
        return x
    return _straight_through().apply(x, spec)

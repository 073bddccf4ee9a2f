"""Payload codecs: round-trip error, numpy against torch, the wire form, and the one payload size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from predictor.latency import Link
from spaces.codecs import CODECS, Encoded, UnknownCodecError, get_codec, quantize_ste


def activations(seed: int = 0, shape: tuple[int, ...] = (1, 24, 16, 16)) -> np.ndarray:
    """A split tensor as a ReLU network makes it: non-negative, many zeros, a long tail."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal(shape) * rng.exponential(2.0, shape), 0).astype(np.float32)


@pytest.mark.parametrize("name", list(CODECS))
@pytest.mark.parametrize("signed", [False, True])
def test_round_trip_stays_within_the_codec_error(name: str, signed: bool) -> None:
    codec = get_codec(name)
    x = activations(1)
    if signed:
        x = x - 1.5
    decoded = codec.decode(codec.encode(x))
    assert decoded.dtype == np.float32 and decoded.shape == x.shape
    error = float(np.abs(decoded - x).max())
    assert error <= codec.max_error(x)
    if name == "float32":
        assert np.array_equal(decoded, x)
    else:
        assert error > 0  # it really is quantized


def test_error_bounds_shrink_with_the_bits() -> None:
    x = activations(2)
    errors = {name: float(np.abs(get_codec(name).decode(get_codec(name).encode(x)) - x).max()) for name in CODECS}
    assert errors["float32"] == 0 < errors["float16"] < errors["int8"]
    assert errors["int16"] < errors["int8"] / 100
    scale = (x.max() - 0.0) / 255
    assert errors["int8"] <= scale / 2 * (1 + 1e-5)


def test_integer_codecs_send_the_wire_dtype_with_scale_and_zero_point() -> None:
    x = activations(3) - 0.25
    for name, dtype in (("int8", np.int8), ("int16", np.int16), ("float16", np.float16)):
        encoded = get_codec(name).encode(x)
        assert encoded.data.dtype == dtype
    encoded = get_codec("int8").encode(x)
    assert encoded.scale == pytest.approx((x.max() - x.min()) / 255, rel=1e-6)
    assert isinstance(encoded.zero_point, int) and -128 <= encoded.zero_point <= 127
    # zero is exactly representable: a ReLU zero (or a lost element) decodes to 0
    zeros = get_codec("int8").decode(get_codec("int8").encode(np.zeros((2, 3), np.float32)))
    assert np.array_equal(zeros, np.zeros((2, 3)))
    assert get_codec("int8").decode(get_codec("int8").encode(activations(4)))[activations(4) == 0].max() == 0


@pytest.mark.parametrize("name", list(CODECS))
def test_numpy_and_torch_give_the_same_bits(name: str) -> None:
    codec = get_codec(name)
    x = activations(5) - 0.5
    from_numpy = codec.encode(x)
    from_torch = codec.encode(torch.from_numpy(x))
    assert isinstance(from_torch.data, torch.Tensor)
    assert np.array_equal(from_numpy.data, from_torch.data.numpy())
    assert (from_numpy.scale, from_numpy.zero_point) == (from_torch.scale, from_torch.zero_point)
    assert np.array_equal(codec.decode(from_numpy), codec.decode(from_torch).numpy())


@pytest.mark.parametrize("name", list(CODECS))
def test_a_batch_round_trip_is_each_sample_sent_alone(name: str) -> None:
    codec = get_codec(name)
    batch = np.concatenate([activations(6, (1, 8, 4, 4)), 10 * activations(7, (1, 8, 4, 4))])
    together = codec.roundtrip(torch.from_numpy(batch)).numpy()
    for i in range(len(batch)):
        alone = codec.decode(codec.encode(batch[i : i + 1]))
        assert np.array_equal(together[i : i + 1], alone)


@pytest.mark.parametrize("name", list(CODECS))
def test_wire_bytes_are_the_payload_size_and_read_back(name: str) -> None:
    codec = get_codec(name)
    x = activations(8, (1, 4, 3, 5))
    encoded = codec.encode(x)
    wire = encoded.to_bytes()
    assert len(wire) == codec.payload_bytes(x.shape) == codec.payload_bytes(x.size)
    back = Encoded.from_bytes(name, wire, x.shape)
    assert np.array_equal(back.data, encoded.data)
    assert (back.scale, back.zero_point) == (encoded.scale, encoded.zero_point)
    assert np.array_equal(codec.decode(back), codec.decode(encoded))
    with pytest.raises(ValueError, match="bytes"):
        Encoded.from_bytes(name, wire[:-1], x.shape)


def test_link_payload_is_the_codec_payload() -> None:
    for bits, name in ((32, "float32"), (16, "float16"), (8, "int8")):
        link = Link(8, bits)
        assert link.codec == name
        assert link.payload_bytes(1000) == get_codec(name).payload_bytes(1000)
    assert Link(8, 8).payload_bytes(1000) == 1000 + 8  # scale and zero point travel with it
    assert Link(8, 32).payload_bytes(1000) == 4000
    assert Link(8, 16, "int16").payload_bytes(1000) == 2008
    assert Link(8, 8).transfer_ms(1000) == pytest.approx(1008 * 8 / 8e6 * 1e3)
    with pytest.raises(ValueError, match="sends 16 bits"):
        Link(8, 8, "int16")
    with pytest.raises(UnknownCodecError, match="allowed: float32"):
        get_codec("int4")
    with pytest.raises(UnknownCodecError, match="8, 16 or 32"):
        get_codec(12)


@pytest.mark.parametrize("name", list(CODECS))
def test_straight_through_forward_is_the_round_trip_and_backward_the_identity(name: str) -> None:
    x = torch.from_numpy(activations(9, (2, 4, 4, 4)) - 0.3).requires_grad_()
    y = quantize_ste(x, name)
    assert torch.equal(y.detach(), get_codec(name).roundtrip(x.detach()))
    weights = torch.randn(x.shape)
    (y * weights).sum().backward()
    assert x.grad is not None and torch.equal(x.grad, weights)

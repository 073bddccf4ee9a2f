"""The wire format of splitnas-edge: requests, replies and UDP datagrams.

A request carries a kind (``I`` inference, ``P`` throughput probe), a request id and the payload as its link's
codec writes it (``Encoded.to_bytes``). A reply carries the request id, a JSON list of what each part behind
the link did (its compute and decode milliseconds, the elements it lost) and the class scores (float32), or an
error message. Over TCP each message is a frame: its length (uint32, little endian) then its bytes. Over UDP
the payload's elements are cut into numbered datagrams, each with the codec's scale and zero point, so that
any subset of them decodes; an end marker (``seq == count``) closes a request.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from spaces.codecs import Encoded, get_codec

LENGTH: Final = struct.Struct("<I")
REQUEST: Final = struct.Struct("<cI")  # kind, request id
REPLY: Final = struct.Struct("<II")  # request id, length of the JSON that follows
DATAGRAM: Final = struct.Struct("<IIIIfi")  # request id, seq, count, element offset, scale, zero point
MAX_FRAME: Final = 256 * 1024 * 1024
DATAGRAM_BYTES: Final = 1400  # below a 1500-byte Ethernet MTU with IP and UDP headers
Kind = Literal["I", "P"]
TCP_FRAME_BYTES: Final = 1514  # a full Ethernet frame: its payload, 66 B of Ethernet, IPv4 and TCP (timestamps)
TCP_SEGMENT_BYTES: Final = 1448  # the TCP payload of such a frame
UDP_FRAME_HEADERS: Final = 8 + 20 + 14  # UDP, IPv4 and Ethernet headers around a datagram


def payload_mbps(line_mbps: float, transport: Literal["tcp", "udp"], bits: int = 32) -> float:
    """The payload throughput of a link whose Ethernet frames leave at ``line_mbps`` (what ``tc`` shapes).

    A splitnas link's ``bandwidth_mbps`` is what its payload gets (what iperf reports), not its line rate: over
    TCP 1448 of every 1514 bytes (-4.4 %), over UDP the elements of a datagram (after its header) of every
    datagram plus UDP, IP and Ethernet headers (-4.6 % at 32 bits).
    """
    if transport == "tcp":
        return line_mbps * TCP_SEGMENT_BYTES / TCP_FRAME_BYTES
    itemsize = max(bits // 8, 1)
    data = (DATAGRAM_BYTES - DATAGRAM.size) // itemsize * itemsize
    return line_mbps * data / (DATAGRAM.size + data + UDP_FRAME_HEADERS)


class FramingError(ConnectionError):
    """A peer that closed the connection mid-message or sent something that is not a splitnas-edge message."""


def send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(LENGTH.pack(len(data)) + data)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(min(n - len(chunks), 1 << 20))
        if not chunk:
            raise FramingError(f"the peer closed the connection after {len(chunks)} of {n} bytes")
        chunks += chunk
    return bytes(chunks)


def recv_frame(sock: socket.socket) -> bytes:
    (length,) = LENGTH.unpack(_recv_exactly(sock, LENGTH.size))
    if length > MAX_FRAME:
        raise FramingError(f"a frame of {length} bytes is over the {MAX_FRAME}-byte limit")
    return _recv_exactly(sock, length)


def pack_request(kind: Kind, request_id: int, payload: bytes) -> bytes:
    return REQUEST.pack(kind.encode(), request_id) + payload


def unpack_request(message: bytes) -> tuple[str, int, bytes]:
    if len(message) < REQUEST.size:
        raise FramingError(f"a request is at least {REQUEST.size} bytes, got {len(message)}")
    kind, request_id = REQUEST.unpack_from(message)
    return kind.decode("latin-1"), request_id, message[REQUEST.size:]


@dataclass
class Reply:
    """What came back for one request: each downstream part's timings, and the output or an error."""

    request_id: int
    parts: list[dict[str, Any]] = field(default_factory=list)
    output: np.ndarray | None = None
    error: str | None = None

    def to_bytes(self) -> bytes:
        data = b"" if self.output is None else np.ascontiguousarray(self.output, "<f4").tobytes()
        shape = [] if self.output is None else list(self.output.shape)
        meta = json.dumps({"parts": self.parts, "error": self.error, "shape": shape}).encode()
        return REPLY.pack(self.request_id, len(meta)) + meta + data

    @classmethod
    def from_bytes(cls, message: bytes) -> Reply:
        request_id, length = REPLY.unpack_from(message)
        meta = json.loads(message[REPLY.size:REPLY.size + length])
        data = message[REPLY.size + length:]
        output = np.frombuffer(data, "<f4").reshape(meta["shape"]) if meta["shape"] else None
        return cls(request_id, meta["parts"], output, meta["error"])


def datagrams(request_id: int, encoded: Encoded, max_bytes: int = DATAGRAM_BYTES) -> list[bytes]:
    """The payload cut into datagrams of whole elements, each decodable on its own, then the end marker."""
    data = np.ascontiguousarray(encoded.data).reshape(-1)
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    per = max(1, (max_bytes - DATAGRAM.size) // data.dtype.itemsize)
    count = -(-data.size // per)
    out = [DATAGRAM.pack(request_id, seq, count, seq * per, encoded.scale, encoded.zero_point)
           + data[seq * per:(seq + 1) * per].tobytes() for seq in range(count)]
    return [*out, DATAGRAM.pack(request_id, count, count, data.size, encoded.scale, encoded.zero_point)]


@dataclass
class Assembly:
    """One request's datagrams as they arrive; ``encoded()`` leaves the elements of lost ones at zero."""

    codec: str
    shape: tuple[int, ...]
    received: np.ndarray
    data: np.ndarray
    scale: float = 1.0
    zero_point: int = 0
    count: int | None = None
    done: bool = False

    @classmethod
    def start(cls, codec: str, shape: tuple[int, ...]) -> Assembly:
        size = int(np.prod(shape))
        return cls(codec, shape, np.zeros(size, bool), np.zeros(size, get_codec(codec).wire_dtype))

    def add(self, datagram: bytes) -> None:
        _, seq, count, offset, scale, zero_point = DATAGRAM.unpack_from(datagram)
        self.scale, self.zero_point, self.count = scale, zero_point, count
        if seq == count:
            self.done = True
            return
        values = np.frombuffer(datagram, np.dtype(self.data.dtype).newbyteorder("<"), offset=DATAGRAM.size)
        if offset + values.size > self.data.size:
            raise FramingError(f"a datagram of elements {offset} to {offset + values.size} is beyond the "
                               f"{self.data.size} of a {list(self.shape)} payload")
        self.data[offset:offset + values.size] = values
        self.received[offset:offset + values.size] = True

    def encoded(self) -> Encoded:
        """The payload as received; a lost element holds the zero point, which decodes to exactly 0."""
        data = np.where(self.received, self.data, np.asarray(self.zero_point).astype(self.data.dtype))
        return Encoded(self.codec, data.reshape(self.shape), self.scale, self.zero_point)


def request_id_of(datagram: bytes) -> int:
    if len(datagram) < DATAGRAM.size:
        raise FramingError(f"a datagram is at least {DATAGRAM.size} bytes, got {len(datagram)}")
    return int(DATAGRAM.unpack_from(datagram)[0])

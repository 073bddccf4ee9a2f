"""The links a payload can travel: a registry of transports, each a client (``connect``) and a server (``serve``).

``tcp`` is reliable: a lost packet is retransmitted by the kernel and costs time. ``udp`` is lossy: the payload
goes as numbered datagrams and the tail decodes whatever arrived, lost elements as zeros (DESIGN.md 8). The
client of either can drop each datagram (or nothing, over TCP) with probability ``loss`` before it is sent:
emulated loss, injected by the sender, since this kernel has no ``netem``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from edge.framing import (
    DATAGRAM,
    DATAGRAM_BYTES,
    Assembly,
    FramingError,
    Reply,
    datagrams,
    pack_request,
    recv_frame,
    request_id_of,
    send_frame,
    unpack_request,
)
from spaces.codecs import Encoded
from spaces.errors import UserError
from spaces.registry import registrar

PROBE_BIT = 0x8000_0000  # UDP request ids of throughput probes
REPLY_TIMEOUT_S = 30.0

# handle(request id, the payload as received, elements lost) -> the reply
Handler = Callable[[int, Encoded, int], Reply]


class TransportError(UserError, ConnectionError):
    """A transport that does not exist, or a peer that cannot be reached or does not answer."""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` as a (host, port) pair, or TransportError saying what an address is."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TransportError(f"invalid address {address!r}: give HOST:PORT, for example 127.0.0.1:9000")
    return host, int(port)


class Transport:
    """A way of carrying payloads: the client side and the server loop."""

    name: ClassVar[str]

    def __init__(self, address: tuple[str, int], *, loss: float = 0.0, seed: int | None = None) -> None:
        self.address = address
        self.loss = loss
        self.rng = np.random.default_rng(seed)

    def request(self, request_id: int, encoded: Encoded) -> Reply:
        raise NotImplementedError

    def probe(self, nbytes: int) -> float:
        """Seconds to carry ``nbytes`` to the server and hear back (its measured throughput is 8 * n / that)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @classmethod
    def serve(cls, sock: socket.socket, codec: str, shape: tuple[int, ...], handle: Handler,
              stop: Callable[[], bool]) -> None:
        """Answer requests on the bound socket ``sock`` (``listen_socket``) until ``stop()``."""
        raise NotImplementedError

    @classmethod
    def listen_socket(cls, host: str, port: int) -> socket.socket:
        raise NotImplementedError


TRANSPORTS: dict[str, type[Transport]] = {}
register_transport = registrar(TRANSPORTS, "transport", attribute="name")


def get_transport(name: str) -> type[Transport]:
    if name not in TRANSPORTS:
        raise TransportError(f"unknown transport {name!r}; choose one of {', '.join(sorted(TRANSPORTS))}")
    return TRANSPORTS[name]


@register_transport("tcp")
class TCP(Transport):
    """Length-prefixed frames over one TCP connection; ``loss`` has no effect (TCP retransmits)."""

    def __init__(self, address: tuple[str, int], *, loss: float = 0.0, seed: int | None = None) -> None:
        super().__init__(address, loss=loss, seed=seed)
        try:
            self.sock = socket.create_connection(address, timeout=REPLY_TIMEOUT_S)
        except OSError as exc:
            raise TransportError(f"cannot connect to {address[0]}:{address[1]} over tcp: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, request_id: int, encoded: Encoded) -> Reply:
        send_frame(self.sock, pack_request("I", request_id, encoded.to_bytes()))
        return Reply.from_bytes(recv_frame(self.sock))

    def probe(self, nbytes: int) -> float:
        start = time.perf_counter()
        send_frame(self.sock, pack_request("P", 0, bytes(nbytes)))
        recv_frame(self.sock)
        return time.perf_counter() - start

    def close(self) -> None:
        self.sock.close()

    @classmethod
    def listen_socket(cls, host: str, port: int) -> socket.socket:
        sock = socket.create_server((host, port), reuse_port=False)
        sock.settimeout(0.2)
        return sock

    @classmethod
    def serve(cls, sock: socket.socket, codec: str, shape: tuple[int, ...], handle: Handler,
              stop: Callable[[], bool]) -> None:
        """Each connected client is answered on its own thread, so several devices share one server."""
        while not stop():
            try:
                connection, _ = sock.accept()
            except TimeoutError:
                continue
            connection.settimeout(None)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=cls._answer, args=(connection, codec, shape, handle), daemon=True).start()

    @staticmethod
    def _answer(connection: socket.socket, codec: str, shape: tuple[int, ...], handle: Handler) -> None:
        with connection:
            while True:
                try:
                    kind, request_id, payload = unpack_request(recv_frame(connection))
                except FramingError:
                    return  # the client is done (or sent garbage): its thread ends
                if kind == "P":
                    send_frame(connection, Reply(request_id).to_bytes())
                    continue
                try:
                    encoded = Encoded.from_bytes(codec, payload, shape)
                except ValueError as exc:
                    send_frame(connection, Reply(request_id, error=str(exc)).to_bytes())
                    continue
                send_frame(connection, handle(request_id, encoded, 0).to_bytes())


@register_transport("udp")
class UDP(Transport):
    """Numbered datagrams; each is dropped by the sender with probability ``loss``; the reply comes back whole."""

    def __init__(self, address: tuple[str, int], *, loss: float = 0.0, seed: int | None = None) -> None:
        super().__init__(address, loss=loss, seed=seed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)

    def _send(self, messages: list[bytes], *, lossy: bool) -> None:
        *data, end = messages
        for message in data:
            if not (lossy and self.rng.random() < self.loss):
                self.sock.sendto(message, self.address)
        self.sock.sendto(end, self.address)  # the end marker is never dropped: it says the request is complete

    def _reply(self, request_id: int) -> Reply:
        while True:
            try:
                message, _ = self.sock.recvfrom(1 << 16)
            except TimeoutError:
                raise TransportError(f"no reply from {self.address[0]}:{self.address[1]} over udp within "
                                     f"{REPLY_TIMEOUT_S:.0f} s (is splitnas-edge serve --transport udp running?)") \
                    from None
            reply = Reply.from_bytes(message)
            if reply.request_id == request_id:
                return reply

    def request(self, request_id: int, encoded: Encoded) -> Reply:
        self._send(datagrams(request_id, encoded), lossy=True)
        return self._reply(request_id)

    def probe(self, nbytes: int) -> float:
        filler = Encoded("float32", np.zeros(max(1, nbytes // 4), np.float32))
        request_id = PROBE_BIT | int(self.rng.integers(1 << 30))
        start = time.perf_counter()
        self._send(datagrams(request_id, filler), lossy=False)
        self._reply(request_id)
        return time.perf_counter() - start

    def close(self) -> None:
        self.sock.close()

    @classmethod
    def listen_socket(cls, host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((host, port))
        sock.settimeout(0.2)
        return sock

    @classmethod
    def serve(cls, sock: socket.socket, codec: str, shape: tuple[int, ...], handle: Handler,
              stop: Callable[[], bool]) -> None:
        pending: dict[int, Assembly] = {}
        while not stop():
            try:
                message, peer = sock.recvfrom(DATAGRAM_BYTES + DATAGRAM.size)
            except TimeoutError:
                continue
            try:
                request_id = request_id_of(message)
                _, seq, count, *_ = DATAGRAM.unpack_from(message)
                if request_id & PROBE_BIT:  # a throughput probe: answer its end marker
                    if seq == count:
                        sock.sendto(Reply(request_id).to_bytes(), peer)
                    continue
                assembly = pending.setdefault(request_id, Assembly.start(codec, shape))
                assembly.add(message)
            except FramingError as exc:
                sock.sendto(Reply(0, error=str(exc)).to_bytes(), peer)
                continue
            if not assembly.done:
                continue
            del pending[request_id]
            lost = int((~assembly.received).sum())
            sock.sendto(handle(request_id, assembly.encoded(), lost).to_bytes(), peer)

"""``splitnas-edge serve``: one part of an exported network behind a transport, answering or forwarding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.framing import Reply
from edge.parts import LoadedPart, PartError, load_part
from edge.transports import Transport, get_transport
from spaces.codecs import Encoded


@dataclass
class PartServer:
    """Part ``part.spec.index`` of an export: decodes what its incoming link carried, runs, then answers with
    the class scores (the tail) or sends its own output on to the next part's server (``forward``)."""

    part: LoadedPart
    transport: type[Transport]
    forward: tuple[str, int] | None = None
    _next: Transport | None = field(default=None, repr=False)
    _forwarding: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one connection downstream

    def __post_init__(self) -> None:
        if self.part.incoming is None:
            raise PartError("part 0 is the head: it runs on the device (splitnas-edge run), not behind a server")
        if self.part.outgoing is not None and self.forward is None:
            raise PartError(f"part {self.part.spec.index} is not the tail: give --forward HOST:PORT of part "
                            f"{self.part.spec.index + 1}'s server")

    def handle(self, request_id: int, encoded: Encoded, lost: int) -> Reply:
        start = time.perf_counter()
        x = np.asarray(self.part.codec_in().decode(encoded), np.float32)
        decode_ms = (time.perf_counter() - start) * 1e3
        y, compute_ms = self.part.run(x)
        timing = {"index": self.part.spec.index, "device": self.part.spec.device, "decode_ms": decode_ms,
                  "compute_ms": compute_ms, "lost_elements": lost, "elements": int(x.size),
                  "input_zeros": int((x == 0).sum())}
        if self.forward is None:
            return Reply(request_id, [timing], y)
        start = time.perf_counter()
        out = self.part.codec_out().encode(y)
        timing["encode_ms"] = (time.perf_counter() - start) * 1e3
        with self._forwarding:
            if self._next is None:
                self._next = self.transport(self.forward)
            start = time.perf_counter()
            downstream = self._next.request(request_id, out)
            timing["send_ms"] = (time.perf_counter() - start) * 1e3
        return Reply(request_id, [timing, *downstream.parts], downstream.output, downstream.error)


def serve(directory: Path | str, part: int, *, host: str, port: int, transport: str = "tcp",
          forward: tuple[str, int] | None = None, ready: Callable[[str, int], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve part ``part`` of the export in ``directory`` until ``stop`` is set (or forever)."""
    kind = get_transport(transport)
    server = PartServer(load_part(directory, part), kind, forward)
    incoming = server.part.incoming
    assert incoming is not None
    sock = kind.listen_socket(host, port)
    with sock:
        bound_host, bound_port = sock.getsockname()[:2]
        if ready is not None:
            ready(bound_host, bound_port)
        done = stop or threading.Event()
        kind.serve(sock, incoming.codec.name, tuple(incoming.payload_shape), server.handle, done.is_set)

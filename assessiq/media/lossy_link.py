"""A lossy link between two peer connections on 127.0.0.1, for tests and benchmarks.

    relay = LossyRelay(loss_ab=0.2)                 # drop 20 % of a's media packets to b
    relay = LossyRelay(rate_ab=400_000)              # or: a 400 kbit/s bottleneck a→b
    relay.delay_ab = 0.35                            # and/or: 350 ms more on the way a→b
    offer_for_b = await relay.rewrite(offer_sdp)     # a's candidates → relay ports
    answer_for_a = await relay.rewrite(answer_sdp)
    relay.loss_ab = 0.0                              # heal the link mid-call
    relay.close()

Every host candidate in an SDP passed through `rewrite` is replaced by a UDP socket of the
relay on 127.0.0.1; a packet arriving there is sent on to the real port, from the relay
socket that stands for its sender, so each side only ever sees the relay. Only RTP and
RTCP (first byte 128..191, RFC 7983) are dropped — STUN and DTLS pass, so ICE, the
handshake and the data channels are not the thing under test. With `rate_ab`, a→b goes
through a bottleneck of that many bits/s with a drop-tail queue of `queue_ms`: what does
not fit is delayed, and dropped (any packet) once the queue is full, as on a slow uplink.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import cast

__all__ = ["LossyRelay"]

HOST = "127.0.0.1"
_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 )(\d+)( typ host.*)$",
                        re.IGNORECASE | re.MULTILINE)


class _Port(asyncio.DatagramProtocol):
    """The relay's stand-in for one real port (`real`) of side `side`."""

    def __init__(self, relay: LossyRelay, real: int, side: str) -> None:
        self.relay, self.real, self.side = relay, real, side
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.relay._forward(data, int(addr[1]), self)


class LossyRelay:
    """Relays UDP between side "a" (the offer's candidates) and side "b" (the answer's),
    dropping `loss_ab` of a→b and `loss_ba` of b→a media packets (seeded, repeatable)."""

    def __init__(self, loss_ab: float = 0.0, loss_ba: float = 0.0, seed: int = 1, *,
                 rate_ab: float | None = None, queue_ms: float = 150.0) -> None:
        for loss in (loss_ab, loss_ba):
            if not 0 <= loss <= 1:
                raise ValueError("loss must be a fraction 0..1")
        if rate_ab is not None and rate_ab <= 0:
            raise ValueError("rate_ab must be > 0 bits/s")
        self.loss_ab, self.loss_ba = loss_ab, loss_ba
        self.rate_ab = rate_ab  # bits/s a→b: a bottleneck with a drop-tail queue
        self.delay_ab = 0.0  # extra seconds on every a→b packet (a slow, far link)
        self.queue_s = queue_ms / 1000
        self._free_at = 0.0  # when the a→b bottleneck has sent what it holds
        self._rng = random.Random(seed)
        self._ports: dict[int, _Port] = {}  # real port → its stand-in
        self._opening: dict[int, asyncio.Future[_Port]] = {}
        self._sides: list[str] = []
        self.forwarded = {"ab": 0, "ba": 0}
        self.dropped = {"ab": 0, "ba": 0}

    async def rewrite(self, sdp: str) -> str:
        """`sdp` with each 127.0.0.1 host candidate's port replaced by a relay port. The first
        SDP rewritten is side "a", the second side "b"."""
        side = "ab"[min(len(self._sides), 1)]
        self._sides.append(side)
        replacements: dict[int, int] = {}
        for m in _CANDIDATE.finditer(sdp):
            real = int(m.group(2))
            if real in self._opening:
                await self._opening[real]
            port = self._ports.get(real) or await self._open(real, side)
            port.side = side
            replacements[real] = self._local_port(port)

        def swap(m: re.Match[str]) -> str:
            return f"{m.group(1)}{replacements[int(m.group(2))]}{m.group(3)}"

        return _CANDIDATE.sub(swap, sdp)

    async def _open(self, real: int, side: str) -> _Port:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: _Port(self, real, side), local_addr=(HOST, 0))
        self._ports[real] = protocol
        return protocol

    @staticmethod
    def _local_port(port: _Port) -> int:
        assert port.transport is not None
        return int(port.transport.get_extra_info("sockname")[1])

    def _forward(self, data: bytes, source: int, to: _Port) -> None:
        """`data` came from real port `source` to the stand-in `to`: send it on to `to.real`
        from the stand-in of `source`."""
        via = self._ports.get(source)
        if via is None:  # a port that has not been in an SDP yet (checks start early)
            asyncio.get_running_loop().create_task(self._forward_later(data, source, to))
            return
        way = "ab" if to.side == "b" else "ba"
        if 128 <= data[0] <= 191 and self._rng.random() < (
                self.loss_ab if way == "ab" else self.loss_ba):
            self.dropped[way] += 1
            return
        transport = via.transport
        if transport is None:
            return
        if way == "ab" and self.rate_ab is not None:
            loop = asyncio.get_running_loop()
            now = loop.time()
            start = max(now, self._free_at)
            if start - now > self.queue_s:  # the queue is full: drop, as a router would
                self.dropped[way] += 1
                return
            self._free_at = start + len(data) * 8 / self.rate_ab
            self.forwarded[way] += 1
            loop.call_at(self._free_at, _send, transport, data, to.real)
            return
        self.forwarded[way] += 1
        if way == "ab" and self.delay_ab > 0:
            asyncio.get_running_loop().call_later(self.delay_ab, _send, transport, data,
                                                  to.real)
            return
        transport.sendto(data, (HOST, to.real))

    async def _forward_later(self, data: bytes, source: int, to: _Port) -> None:
        opening = self._opening.get(source)
        if opening is None:  # one stand-in per port, however many packets race to it
            opening = asyncio.ensure_future(self._open(source, "b" if to.side == "a" else "a"))
            self._opening[source] = opening
        await opening
        self._forward(data, source, to)

    def close(self) -> None:
        for port in self._ports.values():
            if port.transport is not None:
                port.transport.close()
        self._ports.clear()


def _send(transport: asyncio.DatagramTransport, data: bytes, port: int) -> None:
    if not transport.is_closing():  # the relay may have closed while this was queued
        transport.sendto(data, (HOST, port))

"""Call statistics as a plain dict: frames sent/received, frame rates, bitrates, loss, RTT.

aiortc's `pc.getStats()` gives packets and bytes per RTP stream; frame counts and rates come
from the tracks' own counters; bitrates are deltas between two samples. Received bytes
come from the other side's RTCP sender reports (about once a second), so the received
bitrate lags by up to a report interval.
"""

from __future__ import annotations

import time
from typing import Any

from aiortc import RTCPeerConnection

__all__ = ["StatsSampler"]


class StatsSampler:
    """Turns successive `pc.getStats()` reports into rates. One per peer connection."""

    def __init__(self) -> None:
        self._prev: dict[str, tuple[float, int]] = {}

    async def sample(self, pc: RTCPeerConnection) -> dict[str, dict[str, Any]]:
        """{"video": {...}, "audio": {...}} with packets, bytes, kbps, loss and RTT."""
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {
            kind: {"packets_sent": 0, "bytes_sent": 0, "packets_received": 0,
                   "bytes_received": 0, "packets_lost": 0, "jitter": 0, "rtt_ms": None,
                   "kbps_sent": 0.0, "kbps_received": 0.0}
            for kind in ("video", "audio")
        }
        report = await pc.getStats()
        for s in report.values():
            kind = getattr(s, "kind", None)
            if kind not in out:
                continue
            row = out[kind]
            if s.type == "outbound-rtp":
                row["packets_sent"] += s.packetsSent
                row["bytes_sent"] += s.bytesSent
            elif s.type == "inbound-rtp":
                row["packets_received"] += s.packetsReceived
                row["packets_lost"] += s.packetsLost
                row["jitter"] = max(row["jitter"], s.jitter)
            elif s.type == "remote-outbound-rtp":
                # aiortc counts no received bytes; the sender's own reports (RTCP SR) do
                row["bytes_received"] += s.bytesSent
            elif s.type == "remote-inbound-rtp" and s.roundTripTime is not None:
                row["rtt_ms"] = round(s.roundTripTime * 1000, 1)
        for kind, row in out.items():
            for way in ("sent", "received"):
                key = f"{kind}.{way}"
                total = row[f"bytes_{way}"]
                if key in self._prev:
                    t0, b0 = self._prev[key]
                    if now > t0:
                        row[f"kbps_{way}"] = round((total - b0) * 8 / 1000 / (now - t0), 1)
                self._prev[key] = (now, total)
        return out

"""Connect time through simulated NATs: how long a candidate takes to get in, per NAT combination.

The lab is `tests/natlab.py` (network namespaces and iptables, root only): a public network
with the signaling server and coturn started from the shipped deploy/ files; a host and a
candidate each with no NAT, behind MASQUERADE (port-restricted cone) or behind MASQUERADE
--random-fully (symmetric), and a candidate on the host's LAN (hairpin). Both sides run with
an empty `PeerConfig()`: their STUN/TURN servers come from the signaling server (short-lived
credentials) and, for the candidate, the host's encrypted offer.

Each row: `Candidate.join(invite)` → returned (signaling join, signed handshake, ICE, DTLS,
SCTP, all three channels open, first document sync), median over rounds; the combinations are
interleaved round by round so load on the machine spreads over all of them. Baseline, same
run, alternating with each measurement: the same combination with aioice's own checks
(`assessiq.peer.connection.RELAY_GRACE_S = 0`, `RETRIGGER = False`: relayed pairs checked at
once, the first pair to answer wins, and a pair whose check is in progress waits for its
retransmission even when the peer's check has arrived). The note says which path ICE chose
each time, ours then the baseline's.

Then relay-only on loopback (no lab, no root: coturn on 127.0.0.1 with the shipped
configuration, `relay_only=True` on both sides), ours against aioice's own checks, alternating.

Last row: what a relayed interview costs the relay. Host and candidate behind symmetric NATs
hold the call (synthetic 640×480 camera at the app's default 30 fps, 1 Mbit/s video cap, and
audio, both ways) for a while; the bytes in and out of the public namespace's services
interface (coturn and the signaling server) over that time, per second.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter

from bench.common import Row, median

AREA = "nat"
COMBOS = (
    ("none", "none"), ("none", "masquerade"), ("none", "symmetric"),
    ("masquerade", "none"), ("masquerade", "masquerade"), ("masquerade", "symmetric"),
    ("symmetric", "none"), ("symmetric", "masquerade"), ("symmetric", "symmetric"),
    ("masquerade", "hairpin"),
)
RELAY_EXPECTED = {("masquerade", "symmetric"), ("symmetric", "masquerade"),
                  ("symmetric", "symmetric")}


async def _loopback_relay_only(runs: int) -> dict[bool, list[float]]:
    """Join → connected, relay-only through coturn on 127.0.0.1, with and without our
    changes to aioice's checks (alternating)."""
    import asyncio
    from pathlib import Path

    from assessiq.core.identity import Identity
    from assessiq.peer import Candidate, Host, IceServer, PeerConfig, connection
    from signaling import ServerConfig, SignalingServer
    from signaling.turn import turn_credentials
    from tests.nat_helpers import TEST_SECRET, loopback_coturn

    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        async with loopback_coturn(tmp, loopback_peers=True) as port, \
                SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as server:
            creds = turn_credentials(TEST_SECRET, "bench", 3600)
            cfg = PeerConfig(relay_only=True, ice_servers=(
                IceServer(f"turn:127.0.0.1:{port}", creds.username, creds.credential),))
            url = f"ws://127.0.0.1:{server.port}"
            for i in range(2 * runs):
                ours = i % 2 == (i // 2) % 2  # ours first in every other pair
                grace = connection.RELAY_GRACE_S
                connection.RETRIGGER, connection.RELAY_GRACE_S = ours, grace if ours else 0.0
                try:
                    host = await Host.start(identity=Identity.generate(), signaling=url,
                                            config=cfg, session_path=tmp / f"h{i}.aiq",
                                            runs=False)
                    t0 = time.perf_counter()
                    cand = await Candidate.join(host.invite.encode(), config=cfg,
                                                session_path=tmp / f"c{i}.aiq")
                    times[ours].append((time.perf_counter() - t0) * 1000)
                    await cand.close()
                    await host.close()
                finally:
                    connection.RETRIGGER, connection.RELAY_GRACE_S = True, grace
                await asyncio.sleep(0)
    return times


def run(quick: bool) -> list[Row]:
    import asyncio

    from tests import natlab
    from tests.nat_helpers import TEST_SECRET

    loop_runs = 3 if quick else 7
    loopback = asyncio.run(_loopback_relay_only(loop_runs))
    loop_row = Row(AREA, "relay-only on loopback (coturn 127.0.0.1): join → channels open, median",
                   median(loopback[True]), "ms", baseline=median(loopback[False]),
                   baseline_name="aioice's own checks", goal="≤ 700 ms",
                   note=f"{loop_runs} runs each, alternating; max {max(loopback[True]):.0f} ms")
    reason = natlab.missing_prerequisite()
    if reason is not None:
        return [loop_row, Row(AREA, "connect through simulated NATs", float("nan"), "ms",
                              note=f"skipped: {reason}")]
    logging.getLogger("aioice").setLevel(logging.ERROR)
    from assessiq.peer import connection

    grace = connection.RELAY_GRACE_S
    rounds = 2 if quick else 7
    times: dict[tuple[str, str, float], list[float]] = {}
    paths: dict[tuple[str, str, float], Counter[str]] = {}
    lab = natlab.build_lab()
    try:
        with tempfile.TemporaryDirectory() as tmp, natlab.peer_addresses(), \
                natlab.public_services(lab, tmp, TEST_SECRET):
            natlab.run_session(lab, "none", "none", tmp)  # warm-up: imports, first allocation
            for r in range(rounds):
                order = COMBOS[r % len(COMBOS):] + COMBOS[:r % len(COMBOS)]
                for host_kind, cand_kind in order:
                    for g in ((grace, 0.0) if r % 2 else (0.0, grace)):
                        connection.RELAY_GRACE_S = g
                        connection.RETRIGGER = g > 0
                        try:
                            outcome = natlab.run_session(lab, host_kind, cand_kind, tmp)
                        finally:
                            connection.RELAY_GRACE_S = grace
                            connection.RETRIGGER = True
                        key = (host_kind, cand_kind, g)
                        times.setdefault(key, []).append(outcome.connect_ms)
                        paths.setdefault(key, Counter())[
                            f"{outcome.path} {outcome.local}/{outcome.remote}"] += 1
            hold = 4.0 if quick else 15.0
            sample: dict[str, float] = {}

            def measure() -> None:
                before, t0 = natlab.interface_bytes(lab.pub, "br0"), time.monotonic()
                time.sleep(hold)
                sample["bytes"] = natlab.interface_bytes(lab.pub, "br0") - before
                sample["seconds"] = time.monotonic() - t0

            natlab.run_session(lab, "symmetric", "symmetric", tmp, full=True, fps=30,
                               during_call=measure, timeout=hold + 30)
    finally:
        lab.destroy()
    rows = []
    for combo in COMBOS:
        host_kind, cand_kind = combo
        ours, theirs = (host_kind, cand_kind, grace), (host_kind, cand_kind, 0.0)
        seen = [", ".join(f"{k} ×{n}" for k, n in paths[key].most_common())
                for key in (ours, theirs)]
        rows.append(Row(
            AREA, f"host {host_kind} × candidate {cand_kind}: join → channels open, median",
            median(times[ours]), "ms", baseline=median(times[theirs]),
            baseline_name="aioice's own order",
            goal="≤ 700 ms (relay)" if combo in RELAY_EXPECTED else "≤ 150 ms (direct)",
            note=f"{rounds} runs, max {max(times[ours]):.0f} ms; {seen[0]} | baseline: "
                 f"{seen[1]}"))
    rows.append(loop_row)
    mbit = sample["bytes"] * 8 / sample["seconds"] / 1e6
    rows.append(Row(
        AREA, "relayed call (both behind symmetric NATs): traffic through coturn, in + out",
        mbit, "Mbit/s",
        note=f"{sample['seconds']:.0f} s of the call, 640×480@30 synthetic video (1 Mbit/s cap) "
             f"+ audio both ways; {mbit * 3600 / 8 / 1000:.2f} GB per hour of interview"))
    return rows

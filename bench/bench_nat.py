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


def run(quick: bool) -> list[Row]:
    from tests import natlab
    from tests.nat_helpers import TEST_SECRET

    reason = natlab.missing_prerequisite()
    if reason is not None:
        return [Row(AREA, "connect through simulated NATs", float("nan"), "ms",
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
    mbit = sample["bytes"] * 8 / sample["seconds"] / 1e6
    rows.append(Row(
        AREA, "relayed call (both behind symmetric NATs): traffic through coturn, in + out",
        mbit, "Mbit/s",
        note=f"{sample['seconds']:.0f} s of the call, 640×480@30 synthetic video (1 Mbit/s cap) "
             f"+ audio both ways; {mbit * 3600 / 8 / 1000:.2f} GB per hour of interview"))
    return rows

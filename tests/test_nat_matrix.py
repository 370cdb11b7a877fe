"""Interviewers and candidates behind simulated NATs (network namespaces, iptables; root only).

One lab for the module (`tests/natlab.py`): a public network with the signaling server and
coturn, each started from the shipped `deploy/signaling.toml` and `deploy/turnserver.conf`
(rendered with a test secret); a host and a candidate each with no NAT, behind MASQUERADE
(port-restricted cone) or behind MASQUERADE --random-fully (symmetric), and a candidate on
the host's own LAN (hairpin). Host and candidate run with an empty `PeerConfig()`: every
STUN/TURN server comes from the signaling server's short-lived credentials and the host's
encrypted offer. Each combination prints its outcome and its time to channels open.
"""

from __future__ import annotations

import pytest

from tests import natlab
from tests.nat_helpers import TEST_SECRET

# Which path each combination must take. A symmetric NAT facing a filtering NAT leaves no
# direct path (the symmetric side's port toward the peer is not the one STUN saw), so the
# relay is the only way; a peer on the public network, or on the same LAN, is reached
# directly. Two port-restricted cones meet directly (their mappings do not depend on the
# destination) after each has punched its hole, which costs one retransmission (aioice:
# 500 ms). aioice nominates the first pair that answers, so without the host holding its
# relayed checks back (`RELAY_GRACE_S`) the relay won that race 2 times in 7 (bench_nat).
EXPECTED: dict[tuple[str, str], str] = {
    ("none", "none"): "direct",
    ("none", "masquerade"): "direct",
    ("none", "symmetric"): "direct",
    ("masquerade", "none"): "direct",
    ("masquerade", "masquerade"): "direct",
    ("masquerade", "symmetric"): "relay",
    ("symmetric", "none"): "direct",
    ("symmetric", "masquerade"): "relay",
    ("symmetric", "symmetric"): "relay",
    ("masquerade", "hairpin"): "direct",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = natlab.missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("natlab")
    try:
        built = natlab.build_lab()
    except RuntimeError as exc:
        pytest.skip(f"cannot build network namespaces here: {exc}")
    try:
        with natlab.peer_addresses(), natlab.public_services(built, work, TEST_SECRET):
            yield built, work
    finally:
        built.destroy()


def test_every_nat_combination_connects_direct_where_it_can(lab, capsys):
    built, work = lab
    outcomes = []
    for host_kind, cand_kind in EXPECTED:
        if (host_kind, cand_kind) == ("symmetric", "symmetric"):
            continue  # its own test below, with the whole session
        outcome = natlab.run_session(built, host_kind, cand_kind, work)
        outcomes.append(outcome)
        with capsys.disabled():
            print("\n  NAT " + outcome.line(), end="")
    with capsys.disabled():
        print()
    wrong = [o.line() for o in outcomes if EXPECTED[(o.host, o.candidate)] != o.path]
    assert not wrong, "unexpected paths:\n" + "\n".join(wrong)
    for o in outcomes:
        if o.path == "direct":  # a direct pair is between addresses, never through coturn
            assert {o.local, o.remote} <= {"host", "srflx", "prflx"}, o.line()


def test_symmetric_to_symmetric_with_empty_config_carries_document_events_and_call(lab, capsys):
    built, work = lab
    outcome = natlab.run_session(built, "symmetric", "symmetric", work, full=True)
    with capsys.disabled():
        print("\n  NAT " + outcome.line())
    assert outcome.path == "relay"
    assert outcome.checks == ("document both ways", "signed event verified", "call both ways")


@pytest.mark.parametrize("relay_only", [(True, False), (False, True)], ids=["host", "candidate"])
def test_relay_only_with_an_empty_config_uses_the_issued_relay(lab, capsys, relay_only):
    # Both on the public network, where a direct path is certain: relay_only on one side,
    # with no server of its own, still connects, through the relay the session handed it.
    built, work = lab
    outcome = natlab.run_session(built, "none", "none", work, relay_only=relay_only)
    with capsys.disabled():
        print(f"\n  NAT relay-only ({'host' if relay_only[0] else 'candidate'}): "
              + outcome.line())
    relayed_end = outcome.remote if relay_only[0] else outcome.local
    assert relayed_end == "relay", outcome.line()

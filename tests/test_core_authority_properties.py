"""Property: whatever a modified candidate sends, interleaved with honest edits on both sides and
with messages dropped, duplicated and reordered, the host's state is exactly what the host
wrote, every forbidden message is refused, no honest one is, and the code converges.

This drives the sans-IO `SyncProtocol` ends the peer session runs (host: `owner`, candidate:
`reader`), so every interleaving is deterministic and fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.document import SharedDoc
from assessiq.core.sync import STATE, SyncProtocol
from tests.core_factories import capture_update

honest = st.one_of(
    st.tuples(st.just("cand-insert"), st.floats(0, 1), st.sampled_from(["a", "😀", "\n", "世界"])),
    st.tuples(st.just("cand-delete"), st.floats(0, 1), st.integers(1, 3)),
    st.tuples(st.just("host-insert"), st.floats(0, 1), st.sampled_from(["h", "é", "#"])),
    st.tuples(st.just("host-problem"), st.sampled_from(["p1", "p2", "p3"])),
    st.tuples(st.just("host-phase"), st.sampled_from(["lobby", "interview", "wrap-up"])),
    st.tuples(st.just("host-run"), st.booleans()),
)
forbidden = st.tuples(
    st.just("forge"),
    st.sampled_from(["problem", "phase", "language", "public_tests", "timer", "run", "result",
                     "remove-run", "host-keystroke", "state-client-code"]),
    st.booleans(),  # sent as a state message (True) or smuggled in as code (False)
)
network = st.one_of(
    st.tuples(st.just("deliver"), st.booleans(), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("drop"), st.booleans(), st.integers(0, 30)),
)
scenarios = st.lists(st.one_of(honest, forbidden, network, network), max_size=50)


@dataclass
class Net:
    host: SharedDoc = field(default_factory=SharedDoc)
    cand: SharedDoc = field(default_factory=SharedDoc)
    refusals: list[str] = field(default_factory=list)
    to_host: list[tuple[bytes, bool]] = field(default_factory=list)  # (message, forbidden)
    to_cand: list[bytes] = field(default_factory=list)
    expected: dict[str, Any] = field(default_factory=dict)
    forbidden_delivered: int = 0
    harmless: int = 0
    runs: int = 0

    def __post_init__(self) -> None:
        self.h = SyncProtocol(self.host, role="owner", peer_role="candidate", name="host",
                              on_refused=lambda reason, _m: self.refusals.append(reason))
        self.c = SyncProtocol(self.cand, role="reader", peer_role="host", name="cand")
        self.host.set_problem("p0", origin="host")
        self.host.set_phase("lobby", origin="host")
        self.expected = {"problem": "p0", "phase": "lobby", "language": "python", "runs": [],
                         "results": {}}
        self.h.open()
        self.c.open()
        self.collect()

    def collect(self) -> None:
        self.to_host += [(m, False) for m in self.c.take()]
        self.to_cand += self.h.take()

    def act(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        code_c, code_h = self.cand.code_text, self.host.code_text
        if kind == "cand-insert":
            self.cand.insert_code(round(action[1] * len(code_c)), action[2])
        elif kind == "cand-delete" and code_c:
            start = round(action[1] * (len(code_c) - 1))
            self.cand.delete_code(start, min(action[2], len(code_c) - start))
        elif kind == "host-insert":
            self.host.insert_code(round(action[1] * len(code_h)), action[2], origin="host")
        elif kind == "host-problem":
            self.host.set_problem(action[1], origin="host")
            self.expected["problem"] = action[1]
        elif kind == "host-phase":
            self.host.set_phase(action[1], origin="host")
            self.expected["phase"] = action[1]
        elif kind == "host-run":
            self.runs += 1
            run_id = f"r{self.runs}"
            self.host.request_run(run_id, by="candidate", at=float(self.runs),
                                  language="python", source=code_h, origin="host")
            self.expected["runs"].append(run_id)
            if action[1]:
                self.host.set_run_result(run_id, {"run": {"code": 1}}, origin="host")
                self.expected["results"][run_id] = {"run": {"code": 1}}
        elif kind == "forge":
            self.to_host.append((self.forge(action[1], action[2]), True))
        elif kind in ("deliver", "drop"):
            self.network(action)
        self.collect()

    def forge(self, what: str, as_state: bool) -> bytes:
        """A message only a modified app sends. It is built on copies, so the candidate's own
        code history stays honest (an app that mixes forgeries into it stops only its own
        edits from arriving)."""
        if what in ("host-keystroke", "state-client-code"):
            client = self.host.client_id if what == "host-keystroke" else \
                self.host.part_doc("state").client_id
            twin: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client)
            twin.apply_update(self.cand.get_part_update("code"))
            update = capture_update(twin, lambda: twin.get("code", type=pycrdt.Text).insert(0, "X"))
            return _message(update, state=False)
        copy: pycrdt.Doc[Any] = pycrdt.Doc()
        copy.apply_update(self.cand.get_part_update("state"))
        meta = copy.get("meta", type=pycrdt.Map)
        ids = copy.get("runs", type=pycrdt.Array)
        results = copy.get("run_results", type=pycrdt.Map)
        requests = copy.get("run_requests", type=pycrdt.Map)

        def write() -> None:
            if what == "run":
                requests["f"] = json.dumps({"run_id": "f", "by": "host", "at": 1.0,
                                            "language": "python", "source": ""})
                ids.append("f")
            elif what == "result":
                results["r1"] = json.dumps({"tests": {"passed": 9, "total": 9}})
            elif what == "remove-run":
                if len(ids):
                    del ids[0]
                else:
                    meta["phase"] = "ended"
            else:
                meta[what] = "forged"

        return _message(capture_update(copy, write), state=as_state)

    def network(self, action: tuple[Any, ...]) -> None:
        to_host = action[1]
        flight: list[Any] = self.to_host if to_host else self.to_cand
        if not flight:
            return
        index = action[2] % len(flight)
        if action[0] == "drop":
            del flight[index]
            return
        item = flight[index] if action[3] else flight.pop(index)
        if to_host:
            message, bad = item
            before, state = len(self.refusals), self.host.get_state()
            self.h.receive(message)
            if bad:  # refused, or harmless: an echo of the host's own edit id changes nothing
                self.forbidden_delivered += 1
                if len(self.refusals) == before:
                    self.harmless += 1
                    assert self.host.get_state() == state, "a forbidden message was accepted"
                else:
                    assert len(self.refusals) == before + 1
            else:
                assert len(self.refusals) == before, self.refusals[before:]
        else:
            self.c.receive(item)

    def final_sync_round(self) -> None:
        self.to_host.clear()
        self.to_cand.clear()
        for message in self.c.step1s():
            self.h.receive(message)
        for message in self.h.take():
            self.c.receive(message)
        for message in self.h.step1s():
            self.c.receive(message)
        for message in self.c.take():
            self.h.receive(message)
        self.h.take()


def _message(update: bytes, *, state: bool) -> bytes:
    message = pycrdt.create_update_message(update)
    return bytes((STATE,)) + message[1:] if state else message


def _host_state(doc: SharedDoc) -> dict[str, Any]:
    return {"problem": doc.problem, "phase": doc.phase, "language": doc.language,
            "runs": [r["run_id"] for r in doc.runs()],
            "results": {r["run_id"]: r["result"] for r in doc.runs() if r["result"]}}


@settings(max_examples=120, deadline=None)
@given(scenarios)
def test_forbidden_writes_never_reach_the_host_state_and_the_code_converges(
        actions: list[tuple[Any, ...]]) -> None:
    net = Net()
    for action in actions:
        net.act(action)
        assert _host_state(net.host) == net.expected  # at every step, not only at the end
    net.final_sync_round()
    assert _host_state(net.host) == net.expected
    assert net.host.code_text == net.cand.code_text
    snap_h, snap_c = net.host.snapshot(), net.cand.snapshot()
    assert snap_h == snap_c  # the candidate sees exactly the host's state
    assert len(net.refusals) + net.harmless == net.forbidden_delivered


def test_every_kind_of_forgery_by_hand() -> None:
    net = Net()
    net.act(("host-run", True))
    net.act(("cand-insert", 0.0, "def f(): pass\n"))
    for what in ("problem", "phase", "language", "public_tests", "timer", "run", "result",
                 "remove-run", "host-keystroke", "state-client-code"):
        for as_state in (True, False):
            net.act(("forge", what, as_state))
    while net.to_host or net.to_cand:
        net.act(("deliver", bool(net.to_host), 0, False))
    net.final_sync_round()
    assert net.forbidden_delivered == 20 and len(net.refusals) == 20
    assert _host_state(net.host) == net.expected
    assert net.host.code_text == net.cand.code_text == "def f(): pass\n"

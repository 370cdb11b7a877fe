"""Our changes to aioice's checks reach into its internals: these fail first if an aioice upgrade
moves them (the NAT matrix shows what they are for)."""

from __future__ import annotations

import asyncio

import aioice.ice
from aioice import stun

from assessiq.peer import connection


class Recorder:
    """Stands in for aioice's StunProtocol: records what a transaction sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.transactions: dict[bytes, stun.Transaction] = {}

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        self.sent.append(addr)


async def test_an_in_progress_check_is_sent_again_at_once_and_keeps_its_transaction():
    protocol = Recorder()
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    transaction = stun.Transaction(request, ("192.0.2.1", 3478), protocol)  # type: ignore[arg-type]
    protocol.transactions[request.transaction_id] = transaction
    running = asyncio.create_task(transaction.run())
    await asyncio.sleep(0)
    assert protocol.sent == [("192.0.2.1", 3478)]  # the first send
    assert connection._retransmit_now(protocol, ("192.0.2.1", 3478))
    assert protocol.sent == [("192.0.2.1", 3478)] * 2  # again now, not 500 ms later
    assert not connection._retransmit_now(protocol, ("192.0.2.9", 3478))  # no such check
    # The same transaction still completes with the answer to either send.
    response = stun.Message(message_method=stun.Method.BINDING,
                            message_class=stun.Class.RESPONSE,
                            transaction_id=request.transaction_id)
    transaction.response_received(response, ("192.0.2.1", 3478))
    assert (await asyncio.wait_for(running, 1))[0] is response


def test_the_wrappers_are_installed_once():
    start = aioice.ice.Connection.check_start
    assert getattr(start, "_prefers_direct", False)
    connection._prefer_direct_paths()
    assert aioice.ice.Connection.check_start is start
    assert 0 < connection.RELAY_PROBE_S < connection.RELAY_GRACE_S

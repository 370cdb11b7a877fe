"""Keep a `SharedDoc` in sync with one peer over a `Channel`, with presence (awareness).

The wire is the y-protocol, built only from pycrdt's own messages: SYNC step 1 / step 2 /
update (`create_sync_message`, `handle_sync_message`, `create_update_message`) and
AWARENESS (`create_awareness_message` around `Awareness.encode_awareness_update`), both on
the same channel, told apart by their first byte (as y-websocket does). pycrdt's `Provider`
is not used because it ignores awareness and stops on the first malformed message.

Two layers:

- `SyncProtocol` is sans-IO: feed it received messages, take the messages it wants sent.
  It is deterministic and needs no event loop (the property tests drive it directly).
- `DocSync` runs a `SyncProtocol` over a `Channel` with asyncio: `async with DocSync(...)`
  or `start()`/`stop()`, and a `synced` event set when the peer's step 2 has arrived. Over a
  `DirectChannel` (the WebRTC data channel) a local change is sent from inside the edit and a
  received message is applied inside the transport's handler, with no task switch on the
  keystroke's path; a full send buffer falls back to the send loop, in order.

Authority (docs/architecture.md): the document is two pycrdt documents, the code (both write)
and the state (the host writes). Code travels as plain y-sync messages; the state as the same
messages behind a first byte of `STATE` (100). Each end has a `role`: the host is the state's
`owner` (it sends the state and refuses every state write from the peer), the candidate its
`reader` (it asks for the state and never sends any); `peer` (both write both) is for tests
and tools. `browser` is this person's own editor page, a y-sync peer of its local process over
a local websocket (`ui/editor.py`): it takes and sends the code only, may add edits with
its one `writer` client id alone (it may echo any other's), and may speak only for that
client's presence. Every update from the peer is read (`updateparse`) before it is applied:
an update that names a root outside its part, nests a type, carries content a plain text or
JSON value never has, refers to this side's other-part client, or forges this side's own
edits, is refused whole, and `on_refused` hears why (the session records it).

A message that cannot be parsed or applied, or is refused, is dropped and reported; it never
stops the sync. A reconnect is a new `DocSync` on the new channel: step 1/2 exchanges just the
difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Literal, TypeAlias

import pycrdt
from pycrdt import (
    Awareness,
    Decoder,
    Encoder,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
)

from .channel import Channel, DirectChannel
from .document import PARTS, ROOTS, Part, SharedDoc, pycrdt_failure
from .errors import ChannelClosed
from .jsonlimits import loads_bounded
from .updateparse import (
    ANY,
    DELETED,
    JSON,
    STRING,
    keystroke,
    parse_update,
    state_vector_clocks,
    varint_bytes,
)
from .varints import read_varint, write_varint

__all__ = ["DEFAULT_MAX_MESSAGE", "MAX_DOC_BYTES", "MAX_PRESENCE_BYTES", "MAX_PRESENCE_CLIENTS",
           "STATE", "DocSync", "Refused", "Role", "SyncProtocol"]

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE: Final = 64 * 1024 * 1024
"""Larger messages are dropped: a whole interview document is far smaller."""
MAX_DOC_BYTES: Final = 64 * 1024 * 1024
"""Update bytes a document takes from its peers in a session (a 10 MB paste is ~10 MB)."""
MAX_PRESENCE_CLIENTS: Final = 4
"""Presence entries the peer may hold at once (an honest app has one, and one per open
editor page: two pages open is ordinary)."""
MAX_PRESENCE_BYTES: Final = 4096
"""Size of one presence state (an honest one is a role, a name and two offsets)."""
MAX_PRESENCE_DEPTH: Final = 8
"""How deeply a presence state's JSON may nest (checked before it is parsed)."""
STATE: Final = 100
"""First byte of a sync message for the state document (the code's is y-sync's 0)."""

Role: TypeAlias = Literal["peer", "owner", "reader", "browser"]
RefusedCallback: TypeAlias = Callable[[str, bytes], None]

# What each part's items may hold: plain text for the code; JSON values for the state.
_CONTENTS: Final[dict[Part, frozenset[int]]] = {
    "code": frozenset({DELETED, STRING}),
    "state": frozenset({DELETED, STRING, ANY, JSON}),
}


_CODE_UPDATE: Final = bytes((YMessageType.SYNC, YSyncMessageType.SYNC_UPDATE))
_EMPTY_UPDATE_MESSAGE: Final = _CODE_UPDATE + b"\x02\x00\x00"


class _Malformed(ValueError):
    """A message from the peer that is dropped."""


class Refused(_Malformed):
    """A well-formed message from the peer that writes what it may not."""


def _parse_awareness(payload: bytes, max_entries: int | None = None
                     ) -> list[tuple[int, int, str]]:
    """Decode an awareness update into (client id, clock, state JSON) and check it; more
    than `max_entries` entries are refused before any is read."""
    decoder = Decoder(payload)
    entries: list[tuple[int, int, str]] = []
    try:
        count = decoder.read_var_uint()
        if max_entries is not None and count > max_entries:
            raise Refused(f"the peer's presence names {count} clients (at most "
                          f"{MAX_PRESENCE_CLIENTS})")
        for _ in range(count):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            state_json = decoder.read_var_string()
            # the size is refused with its own reason by the caller; the depth, here
            state = loads_bounded(state_json, max_bytes=len(payload),
                                  max_depth=MAX_PRESENCE_DEPTH) if state_json else None
            if state is not None and not isinstance(state, dict):
                raise _Malformed(f"awareness state of client {client_id} is not an object")
            entries.append((client_id, clock, state_json))
    except Refused:
        raise
    except (RuntimeError, IndexError, ValueError) as exc:
        raise _Malformed(f"bad awareness update: {exc}") from None
    if decoder.length != 0:
        raise _Malformed("awareness update has trailing bytes")
    return entries


def _payload(message: bytes, offset: int) -> bytes:
    """The length-prefixed payload at `offset`; it must fill the rest of the message."""
    try:
        length, start = read_varint(message, offset)
    except ValueError:
        raise _Malformed("truncated length prefix") from None
    if length != len(message) - start:
        raise _Malformed(
            f"payload length {length} does not match the {len(message) - start} bytes sent")
    return message[start:]


def _step2_message(update: bytes) -> bytes:
    """The SYNC_STEP2 reply carrying `update` (what pycrdt's `handle_sync_message` sends)."""
    out = bytearray((YMessageType.SYNC, YSyncMessageType.SYNC_STEP2))
    write_varint(len(update), out)
    out += update
    return bytes(out)


def _check_state_vector(state: bytes) -> None:
    """Refuse a malformed state vector before Yrs sees it (a huge entry count makes Yrs
    spend seconds failing)."""
    decoder = Decoder(state)
    try:
        count = decoder.read_var_uint()
        if 2 * count > decoder.length:
            raise _Malformed(f"state vector claims {count} entries in {decoder.length} bytes")
        for _ in range(2 * count):
            decoder.read_var_uint()
    except (RuntimeError, IndexError):
        raise _Malformed("truncated state vector") from None
    if decoder.length != 0:
        raise _Malformed("state vector has trailing bytes")


def _check_update_header(update: bytes) -> None:
    """Refuse an update whose leading counts cannot fit in it: Yrs would reserve memory
    for them first and spend up to a second failing (measured with random bytes)."""
    try:
        clients, pos = read_varint(update, 0)
        if 3 * clients > len(update) - pos:
            raise _Malformed(f"update claims {clients} clients in {len(update) - pos} bytes")
        if clients:
            structs, pos = read_varint(update, pos)
            if structs > len(update) - pos:
                raise _Malformed(f"update claims {structs} blocks in {len(update) - pos} bytes")
    except _Malformed:
        raise
    except ValueError:
        raise _Malformed("truncated update") from None


def _encode_awareness(entries: list[tuple[int, int, str]]) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(len(entries))
    for client_id, clock, state_json in entries:
        encoder.write_var_uint(client_id)
        encoder.write_var_uint(clock)
        encoder.write_var_string(state_json)
    return encoder.to_bytes()


class SyncProtocol:
    """The y-sync + awareness endpoint for one peer connection, without any I/O.

    `open()` queues step 1 and our presence; `receive(message)` handles one message from the
    peer; local changes queue update messages; `take()` returns everything queued, in order.
    `on_outgoing` (if given) is called whenever something was queued; `on_refused(reason,
    message)` for every message from the peer that was dropped (malformed or forbidden).
    `role` says who writes the state (see the module's docstring); `peer_role`, if given, is
    the only `role` the peer's presence may claim.
    """

    def __init__(
        self,
        doc: SharedDoc,
        awareness: Awareness | None = None,
        *,
        origin: str = "remote",
        name: str = "peer",
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        on_outgoing: Callable[[], None] | None = None,
        role: Role = "peer",
        peer_role: str | None = None,
        on_refused: RefusedCallback | None = None,
        max_doc_bytes: int = MAX_DOC_BYTES,
        writer: int | None = None,
    ) -> None:
        if role != "peer" and not doc.split:
            raise ValueError("authority needs a SharedDoc whose code and state are split")
        if (role == "browser") != (writer is not None):
            raise ValueError("a browser end needs its writer's client id, and only it")
        self.doc = doc
        self.awareness = awareness if awareness is not None else Awareness(doc.doc)
        self.origin = origin
        self.name = name
        self.max_message_size = max_message_size
        self.role: Role = role
        self.peer_role = peer_role
        self.max_doc_bytes = max_doc_bytes
        self.synced = False
        self.dropped = 0
        """How many messages from the peer were malformed or refused, and dropped."""
        self.received_bytes = 0
        """Update bytes accepted from the peer over this link (`doc.remote_bytes` counts
        them for the whole session, across links, and is what the cap is held to)."""
        self._on_outgoing = on_outgoing
        self._on_refused = on_refused
        self._outbox: list[bytes] = []
        self._applying = False
        self._open = False
        self._unsubscribe_doc: Callable[[], None] | None = None
        self._awareness_subscription: str | None = None
        self._remote_clients: set[int] = set()
        self._synced_callbacks: list[Callable[[], None]] = []
        # what this end sends, what it takes from the peer, and whose step 2 completes a sync
        self._sends: frozenset[Part] = frozenset({"code"}) if role in ("reader", "browser") \
            else frozenset(PARTS)
        self._takes: frozenset[Part] = frozenset({"code"}) if role in ("owner", "browser") \
            else frozenset(PARTS)
        self._waiting: set[Part] = set(self._takes) if doc.split else {"code"}
        self.writer = writer
        # this side's client ids as encoded on the wire (for the keystroke fast path; live:
        # they grow as this side opens editors)
        self._own_code = doc.own_wire("code")
        self._own_state = doc.own_wire("state")
        self._writer_wire = None if writer is None else varint_bytes(writer)
        self._fast = doc.split and "code" in self._takes and max_message_size >= 130

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Start: queue sync step 1 and our presence; follow local changes."""
        if self._open:
            return
        self._open = True
        self._unsubscribe_doc = self.doc.observe_part_updates(self._on_doc_update)
        self._awareness_subscription = self.awareness.observe(self._on_awareness)
        for message in self.step1s():
            self._queue(message)
        if self.writer is not None:  # our page: everyone's presence as it is now
            others = [c for c in self.awareness.states if c != self.awareness.client_id]
            if others:
                self._queue(self._awareness_message(others))
        state = self.awareness.get_local_state()
        if state is not None:
            # Re-setting bumps our clock, so a peer that saw us leave accepts us again;
            # the change reaches `_on_awareness`, which queues it.
            self.awareness.set_local_state(state)

    def close(self) -> None:
        """Stop following changes; forget the presence of clients learned from this peer."""
        if not self._open:
            return
        self._open = False
        if self._unsubscribe_doc is not None:
            self._unsubscribe_doc()
            self._unsubscribe_doc = None
        if self._awareness_subscription is not None:
            self.awareness.unobserve(self._awareness_subscription)
            self._awareness_subscription = None
        gone = sorted(self._remote_clients - {self.awareness.client_id})
        if gone:
            self.awareness.remove_awareness_states(gone, self)
        self._remote_clients.clear()

    def step1s(self) -> list[bytes]:
        """Fresh sync step 1 messages (our state vectors) for every part this end takes from
        the peer, e.g. for a resync round."""
        if not self.doc.split:
            return [create_sync_message(self.doc.doc)]
        out = [create_sync_message(self.doc.doc)]
        if "state" in self._takes:
            out.append(bytes((STATE,)) + create_sync_message(self.doc.part_doc("state"))[1:])
        return out

    def ping(self) -> None:
        """Queue a message that changes nothing (an empty update): it tells a y-websocket
        client, which reconnects after 30 s of silence, that this end is alive."""
        self._queue(_EMPTY_UPDATE_MESSAGE)

    def on_synced(self, callback: Callable[[], None]) -> None:
        """Call `callback()` when the peer's step 2 has been applied (for every part this end
        takes from the peer)."""
        self._synced_callbacks.append(callback)

    # ------------------------------------------------------------------ outgoing
    def take(self) -> list[bytes]:
        """Everything queued for the peer, oldest first; the queue is emptied."""
        out, self._outbox = self._outbox, []
        return out

    def _queue(self, message: bytes) -> None:
        self._outbox.append(message)
        if self._on_outgoing is not None:
            self._on_outgoing()

    def _on_doc_update(self, part: Part, update: bytes, origin: str | None) -> None:
        if self._applying:  # never echo the peer's own update back to it
            return
        if part not in self._sends:
            if self.writer is not None:  # our page shows the code only
                return
            log.warning("%s: a local change to the %s is not sent: the host owns it",
                        self.name, part)
            return
        message = create_update_message(update)
        if part == "state" and self.doc.split:
            message = bytes((STATE,)) + message[1:]
        self._queue(message)

    def _awareness_message(self, client_ids: list[int]) -> bytes:
        return create_awareness_message(self.awareness.encode_awareness_update(client_ids))

    def _on_awareness(self, topic: str, event: tuple[dict[str, Any], Any]) -> None:
        changes, origin = event
        if topic != "update" or origin is self:
            return
        client_ids = changes["added"] + changes["updated"] + changes["removed"]
        if client_ids:
            self._queue(self._awareness_message(client_ids))

    # ------------------------------------------------------------------ incoming
    def receive(self, message: bytes) -> None:
        """Handle one message from the peer. Malformed or forbidden ones are dropped and
        reported to `on_refused`."""
        if self._fast and type(message) is bytes and message[:2] == _CODE_UPDATE \
                and len(message) - 3 == message[2] and self._apply_keystroke(message):
            return
        try:
            self._receive(message)
        except BaseException as exc:  # pycrdt may panic on bad update bytes (BaseException)
            if not pycrdt_failure(exc):
                raise
            self.dropped += 1
            reason = str(exc) if isinstance(exc, Exception) else type(exc).__name__
            if not isinstance(exc, Refused):
                reason = f"malformed sync message: {reason}"
            raw = bytes(message) if isinstance(message, bytes | bytearray | memoryview) else b""
            if self._on_refused is not None:
                self._on_refused(reason, raw)
            else:
                log.warning("dropped a message from %s: %s", self.name, reason)

    def _receive(self, message: bytes) -> None:
        if not isinstance(message, bytes | bytearray | memoryview):
            raise _Malformed(f"not bytes but {type(message).__name__}")
        message = bytes(message)
        if len(message) > self.max_message_size:
            raise _Malformed(f"{len(message)} bytes is over the {self.max_message_size} limit")
        if len(message) < 2:
            raise _Malformed(f"too short ({len(message)} bytes)")
        if message[0] == YMessageType.SYNC:
            self._receive_sync(message, "code")
        elif message[0] == STATE and self.doc.split:
            self._receive_sync(message, "state")
        elif message[0] == YMessageType.AWARENESS:
            self._receive_awareness(_payload(message, 1))
        else:
            raise _Malformed(f"unknown message type {message[0]}")

    def _receive_sync(self, message: bytes, part: Part) -> None:
        kind = message[1]
        if kind not in (YSyncMessageType.SYNC_STEP1, YSyncMessageType.SYNC_STEP2,
                        YSyncMessageType.SYNC_UPDATE):  # fmt: skip
            raise _Malformed(f"unknown sync message type {kind}")
        payload = _payload(message, 2)
        if kind == YSyncMessageType.SYNC_STEP1:
            _check_state_vector(payload)
            log.debug("received SYNC_STEP1 (%s) from %s", part, self.name)
            if part in self._sends:
                reply = _step2_message(self.doc.get_part_update(part, payload))
                self._queue(reply if part == "code" or not self.doc.split
                            else bytes((STATE,)) + reply[1:])
            return
        if part not in self._takes:
            if payload == b"\x00\x00":  # nothing: what an honest end could say
                return
            raise Refused(f"the peer wrote to the {part} (the problem, tests, language, "
                          f"phase, timer, policy or runs), which only this side writes")
        try:
            self._apply_update(part, payload)
        finally:
            # A step 2 completes the exchange even when its content is refused: the sync is
            # running (and the refusal is recorded); the page must not say otherwise.
            if kind == YSyncMessageType.SYNC_STEP2 and part in self._waiting:
                log.debug("received SYNC_STEP2 (%s) from %s", part, self.name)
                self._waiting.discard(part)
                if not self._waiting and not self.synced:
                    self.synced = True
                    for callback in list(self._synced_callbacks):
                        callback()

    def _apply_update(self, part: Part, payload: bytes) -> None:
        # An update (or step 2) is applied as is: this is every keystroke's path, so the
        # payload is not parsed again by `handle_sync_message`.
        if not self.doc.split:
            _check_update_header(payload)
        elif not self._keystroke_allowed(part, payload):
            _check_update_header(payload)
            self._check_authority(part, payload)
        if self._writer_wire is None and \
                self.doc.remote_bytes + len(payload) > self.max_doc_bytes:
            raise Refused(f"the document would take more than {self.max_doc_bytes} bytes "
                          f"from the peer in this session")
        self._applying = True
        try:
            self.doc.apply_part_update(part, payload, origin=self.origin)
        finally:
            self._applying = False
        self.received_bytes += len(payload)
        if self._writer_wire is None:  # (what this person's own page typed is no peer's)
            self.doc.remote_bytes += len(payload)

    def _apply_keystroke(self, message: bytes) -> bool:
        """The remote keystroke's path: a code update of under 128 bytes (its length is one
        byte) in a keystroke's shape, by another client, referring to nothing of this side's
        state, is applied here; False sends it down the general path (which also refuses)."""
        update = message[3:]
        key = keystroke(update)
        if key is None or not self._own_state.isdisjoint(key) \
                or (self.doc.remote_bytes + len(update) > self.max_doc_bytes
                    and self._writer_wire is None):
            return False
        if self._writer_wire is None:
            if key[0] in self._own_code:
                return False
        elif len(key) > 1 and key[0] != self._writer_wire:  # an insert by another client
            return False
        self._applying = True
        try:
            self.doc.apply_part_update("code", update, origin=self.origin)
        except ValueError:
            return False  # (not applied: the general path reports why)
        finally:
            self._applying = False
        self.received_bytes += len(update)
        if self._writer_wire is None:
            self.doc.remote_bytes += len(update)
        return True

    def _keystroke_allowed(self, part: Part, update: bytes) -> bool:
        """True when `update` is one keystroke of the code by another client that refers
        to nothing of this side's state (the fast path); False: check it in full."""
        if part != "code":
            return False
        key = keystroke(update)
        if key is None:
            return False
        if self._writer_wire is None:
            if key[0] in self._own_code:
                return False
        elif len(key) > 1 and key[0] != self._writer_wire:
            return False
        if not self._own_state.isdisjoint(key):
            raise Refused("an update of the code writes or refers to this side's state")
        return True

    def _check_authority(self, part: Part, update: bytes) -> None:
        """Refuse (`Refused`) an update of `part` from the peer that writes anything else."""
        if update == b"\x00\x00":
            return
        try:
            parsed = parse_update(update)
        except ValueError as exc:
            raise _Malformed(f"unreadable update: {exc}") from None
        other: Part = "state" if part == "code" else "code"
        mine = self.doc.own_clients(other)
        own = self.doc.own_clients(part)
        writer = self.writer
        for block in parsed.blocks:
            if block.client in mine or block.refs & mine:
                raise Refused(f"an update of the {part} writes or refers to this side's "
                              f"{other}")
            if not block.roots <= ROOTS[part]:
                raise Refused(f"an update of the {part} writes to "
                              f"{', '.join(sorted(block.roots - ROOTS[part])[:4])}")
            if block.nested:
                raise Refused(f"an update of the {part} nests a type inside it")
            extra = block.contents - _CONTENTS[part]
            if extra:
                raise Refused(f"an update of the {part} carries content of kind "
                              f"{sorted(extra)} (plain values only)")
            # the peer may echo our own edits, never add to them; our browser editor may
            # add to its own client's alone
            if block.client in own if writer is None else block.client != writer:
                have = state_vector_clocks(self.doc.part_doc(part).get_state())
                if block.clock + block.length > have.get(block.client, 0):
                    raise Refused(f"an update of the {part} forges edits of "
                                  + ("this side" if writer is None else
                                     f"client {block.client} (the page writes as {writer})"))
        for client, _, _ in parsed.deletes:
            if client in mine:
                raise Refused(f"an update of the {part} deletes from this side's {other}")
        self.doc.learn_clients(part, (block.client for block in parsed.blocks))

    def _receive_awareness(self, payload: bytes) -> None:
        # (our own entry may come back with the peer's: one more than the peer may hold)
        entries = _parse_awareness(payload, MAX_PRESENCE_CLIENTS + 1)
        own = self.awareness.client_id
        # A peer may not speak for us: our own entry (e.g. echoed back) is ignored.
        entries = [entry for entry in entries if entry[0] != own]
        if self.writer is not None:
            # our page speaks for its own client alone; others' states it echoes are ignored
            entries = [entry for entry in entries if entry[0] == self.writer]
        if not entries:
            return
        # clients present once these entries are applied (a removal's state is empty/null)
        clients = set(self._remote_clients)
        for client_id, _, state_json in entries:
            if state_json in ("", "null"):
                clients.discard(client_id)
            else:
                clients.add(client_id)
        if len(clients) > MAX_PRESENCE_CLIENTS:
            raise Refused(f"the peer's presence names {len(clients)} clients (at most "
                          f"{MAX_PRESENCE_CLIENTS})")
        for _, _, state_json in entries:
            if len(state_json) > MAX_PRESENCE_BYTES:
                raise Refused(f"a presence state of {len(state_json)} bytes (at most "
                              f"{MAX_PRESENCE_BYTES})")
            if self.peer_role is not None and state_json:
                state = json.loads(state_json)
                role = state.get("role") if isinstance(state, dict) else None
                if role is not None and role != self.peer_role:
                    raise Refused(f"the peer's presence calls itself {str(role)[:20]!r}, "
                                  f"not {self.peer_role!r}")
        self._remote_clients = clients
        self.awareness.apply_awareness_update(_encode_awareness(entries), self)


class DocSync:
    """Keep `doc` in sync with the peer at the other end of `channel` (asyncio).

    ```py
    async with DocSync(doc, channel, origin="candidate") as sync:
        await sync.synced.wait()
        sync.awareness.set_local_state({"user": "host", "cursor": 12})
    ```

    `origin` tags the peer's changes in the document (the store records it); `role`,
    `peer_role`, `on_refused` and `writer` are `SyncProtocol`'s (who writes the state). The
    `awareness` (presence and cursors) is created for the doc unless one is passed; when this
    object creates it, it also runs its renewal/expiry loop and clears our presence on
    `stop()`. Across reconnects pass the same `Awareness` each time: its clock must only
    grow, or the peer ignores our presence.
    """

    def __init__(
        self,
        doc: SharedDoc,
        channel: Channel,
        *,
        awareness: Awareness | None = None,
        origin: str = "remote",
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        role: Role = "peer",
        peer_role: str | None = None,
        on_refused: RefusedCallback | None = None,
        max_doc_bytes: int = MAX_DOC_BYTES,
        writer: int | None = None,
    ) -> None:
        self.doc = doc
        self.channel = channel
        self._direct = channel if isinstance(channel, DirectChannel) else None
        self._own_awareness = awareness is None
        self._wake = asyncio.Event()
        self._held: deque[bytes] = deque()
        """Taken from the protocol, not yet sent: the send loop owns these."""
        self.protocol = SyncProtocol(
            doc,
            awareness,
            origin=origin,
            name=channel.path,
            max_message_size=max_message_size,
            on_outgoing=self._outgoing,
            role=role,
            peer_role=peer_role,
            on_refused=on_refused,
            max_doc_bytes=max_doc_bytes,
            writer=writer,
        )
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        """Set when the sync has stopped (by `stop()` or because the channel closed)."""
        self.protocol.on_synced(self.synced.set)
        self._tasks: list[asyncio.Task[None]] = []
        self._closer: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def awareness(self) -> pycrdt.Awareness:
        return self.protocol.awareness

    @property
    def dropped(self) -> int:
        """How many malformed messages from the peer were dropped."""
        return self.protocol.dropped

    async def start(self) -> None:
        """Send step 1 and our presence, then keep syncing in background tasks."""
        if self._tasks:
            raise RuntimeError("this DocSync is already started")
        self.protocol.open()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"docsync-send {self.channel.path}"),
            asyncio.create_task(self._recv_loop(), name=f"docsync-recv {self.channel.path}"),
        ]
        if self._own_awareness:
            self._tasks.append(
                asyncio.create_task(self._awareness_loop(), name="docsync-awareness")
            )

    async def stop(self) -> None:
        """Flush what is queued (and, if this object owns the awareness, our departure),
        then stop. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._own_awareness:
            if self.awareness.get_local_state() is not None:
                self.awareness.set_local_state(None)
            with contextlib.suppress(RuntimeError):  # not started
                await self.awareness.stop()
        if self._direct is not None:
            self._direct.listen(None)
        if not self.closed.is_set():
            try:
                await self._send_all()
            except (ChannelClosed, ConnectionError, OSError) as exc:
                log.debug("could not flush to %s: %s", self.channel.path, exc)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.protocol.close()
        self.closed.set()

    async def __aenter__(self) -> DocSync:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _outgoing(self) -> None:
        """Something was queued: send it now over a direct channel, else wake the loop."""
        direct = self._direct
        if direct is None or self._held or not self._tasks or self._stopping:
            self._wake.set()
            return
        messages = self.protocol.take()
        for i, message in enumerate(messages):
            try:
                sent = direct.send_nowait(message)
            except (ChannelClosed, ConnectionError, OSError) as exc:
                self._channel_gone("closed while sending", exc)
                return
            if not sent:  # the buffer is full: the loop waits for room, keeping the order
                self._held.extend(messages[i:])
                self._wake.set()
                return

    async def _send_all(self) -> None:
        """Send what is held back, then everything queued, in order (waiting for room)."""
        self._held.extend(self.protocol.take())
        while self._held:
            await self.channel.send(self._held[0])
            self._held.popleft()

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._send_all()
        except (ChannelClosed, ConnectionError, OSError) as exc:
            self._channel_gone("closed while sending", exc)

    async def _recv_loop(self) -> None:
        try:
            if self._direct is not None:
                self._direct.listen(self.protocol.receive)
                await self._direct.wait_closed()
                raise ChannelClosed(f"{self.channel.path} was closed")
            while True:
                message = await self.channel.recv()
                self.protocol.receive(message)
        except (ChannelClosed, ConnectionError, OSError) as exc:
            self._channel_gone("closed", exc)

    async def _awareness_loop(self) -> None:
        await self.awareness.start()

    def _channel_gone(self, what: str, exc: BaseException) -> None:
        """The channel failed (`what` happened, `exc` says how): log it and stop, once."""
        log.info("sync channel %s %s: %s", self.channel.path, what, exc)
        if not self.closed.is_set():
            self.closed.set()
            self._closer = asyncio.get_running_loop().create_task(self.stop())

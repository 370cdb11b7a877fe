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

A message that cannot be parsed or applied is dropped and logged; it never stops the sync.
A reconnect is a new `DocSync` on the new channel: step 1/2 exchanges just the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

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
from .document import SharedDoc, pycrdt_failure
from .errors import ChannelClosed
from .varints import read_varint, write_varint

__all__ = ["DEFAULT_MAX_MESSAGE", "DocSync", "SyncProtocol"]

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE: Final = 64 * 1024 * 1024
"""Larger messages are dropped: a whole interview document is far smaller."""


class _Malformed(ValueError):
    """A message from the peer that is dropped."""


def _parse_awareness(payload: bytes) -> list[tuple[int, int, str]]:
    """Decode an awareness update into (client id, clock, state JSON) and check it."""
    decoder = Decoder(payload)
    entries: list[tuple[int, int, str]] = []
    try:
        count = decoder.read_var_uint()
        for _ in range(count):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            state_json = decoder.read_var_string()
            state = json.loads(state_json) if state_json else None
            if state is not None and not isinstance(state, dict):
                raise _Malformed(f"awareness state of client {client_id} is not an object")
            entries.append((client_id, clock, state_json))
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
    `on_outgoing` (if given) is called whenever something was queued.
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
    ) -> None:
        self.doc = doc
        self.awareness = awareness if awareness is not None else Awareness(doc.doc)
        self.origin = origin
        self.name = name
        self.max_message_size = max_message_size
        self.synced = False
        self.dropped = 0
        """How many messages from the peer were malformed and dropped."""
        self._on_outgoing = on_outgoing
        self._outbox: list[bytes] = []
        self._applying = False
        self._open = False
        self._unsubscribe_doc: Callable[[], None] | None = None
        self._awareness_subscription: str | None = None
        self._remote_clients: set[int] = set()
        self._synced_callbacks: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Start: queue sync step 1 and our awareness state; follow local changes."""
        if self._open:
            return
        self._open = True
        self._unsubscribe_doc = self.doc.observe_updates(self._on_doc_update)
        self._awareness_subscription = self.awareness.observe(self._on_awareness)
        self._queue(create_sync_message(self.doc.doc))
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

    def step1(self) -> bytes:
        """A fresh sync step 1 (our state vector), e.g. for a resync round."""
        return create_sync_message(self.doc.doc)

    def on_synced(self, callback: Callable[[], None]) -> None:
        """Call `callback()` when the peer's step 2 has been applied."""
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

    def _on_doc_update(self, update: bytes, origin: str | None) -> None:
        if not self._applying:  # never echo the peer's own update back to it
            self._queue(create_update_message(update))

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
        """Handle one message from the peer. Malformed ones are logged and dropped."""
        try:
            self._receive(message)
        except BaseException as exc:  # pycrdt may panic on bad update bytes (BaseException)
            if not pycrdt_failure(exc):
                raise
            self.dropped += 1
            log.warning("dropped a malformed message from %s: %s", self.name,
                        exc if isinstance(exc, Exception) else type(exc).__name__)

    def _receive(self, message: bytes) -> None:
        if not isinstance(message, bytes | bytearray | memoryview):
            raise _Malformed(f"not bytes but {type(message).__name__}")
        message = bytes(message)
        if len(message) > self.max_message_size:
            raise _Malformed(f"{len(message)} bytes is over the {self.max_message_size} limit")
        if len(message) < 2:
            raise _Malformed(f"too short ({len(message)} bytes)")
        if message[0] == YMessageType.SYNC:
            self._receive_sync(message)
        elif message[0] == YMessageType.AWARENESS:
            self._receive_awareness(_payload(message, 1))
        else:
            raise _Malformed(f"unknown message type {message[0]}")

    def _receive_sync(self, message: bytes) -> None:
        kind = message[1]
        if kind not in (YSyncMessageType.SYNC_STEP1, YSyncMessageType.SYNC_STEP2,
                        YSyncMessageType.SYNC_UPDATE):  # fmt: skip
            raise _Malformed(f"unknown sync message type {kind}")
        payload = _payload(message, 2)
        if kind == YSyncMessageType.SYNC_STEP1:
            _check_state_vector(payload)
            log.debug("received SYNC_STEP1 from %s", self.name)
            self._queue(_step2_message(self.doc.get_update(payload)))
            return
        # An update (or step 2) is applied as is: this is every keystroke's path, so the
        # payload is not parsed again by `handle_sync_message`.
        _check_update_header(payload)
        self._applying = True
        try:
            self.doc.apply_update(payload, origin=self.origin)
        finally:
            self._applying = False
        if kind == YSyncMessageType.SYNC_STEP2 and not self.synced:
            log.debug("received SYNC_STEP2 from %s", self.name)
            self.synced = True
            for callback in list(self._synced_callbacks):
                callback()

    def _receive_awareness(self, payload: bytes) -> None:
        entries = _parse_awareness(payload)
        own = self.awareness.client_id
        # A peer may not speak for us: our own entry (e.g. echoed back) is ignored.
        entries = [entry for entry in entries if entry[0] != own]
        if not entries:
            return
        self._remote_clients.update(client_id for client_id, _, _ in entries)
        self.awareness.apply_awareness_update(_encode_awareness(entries), self)


class DocSync:
    """Keep `doc` in sync with the peer at the other end of `channel` (asyncio).

    ```py
    async with DocSync(doc, channel, origin="candidate") as sync:
        await sync.synced.wait()
        sync.awareness.set_local_state({"user": "host", "cursor": 12})
    ```

    `origin` tags the peer's changes in the document (the store records it). The
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

"""One connected client: its socket, address, buckets and (once joined) its room and role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from signaling.buckets import TokenBucket
from signaling.frames import Role

if TYPE_CHECKING:
    from signaling.rooms import Room


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    ip: str
    messages: TokenBucket
    errors: TokenBucket
    room: Room | None = None
    role: Role | None = None
    closing: bool = field(default=False)

"""Rooms: one host and one candidate each, with resume tokens and per-address accounting."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from signaling.client import Client
from signaling.frames import Role


def room_tag(room_id: str) -> str:
    """What logs show instead of a room id: a short hash prefix."""
    return hashlib.sha256(room_id.encode()).hexdigest()[:8]


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(eq=False)
class Room:
    id: str
    owner_ip: str
    """The address whose host created the room; it counts against that address's room limit."""
    members: dict[Role, Client] = field(default_factory=dict)
    tokens: dict[Role, str] = field(default_factory=dict)
    last_activity: float = field(default_factory=time.monotonic)

    @property
    def tag(self) -> str:
        return room_tag(self.id)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def token_matches(self, role: Role, presented: str | None) -> bool:
        expected = self.tokens.get(role)
        if presented is None or expected is None:
            return False
        return secrets.compare_digest(expected.encode(), presented.encode())


class RoomTable:
    """All rooms, and how many each address owns."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.per_ip: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.rooms)

    def get(self, room_id: str) -> Room | None:
        return self.rooms.get(room_id)

    def create(self, room_id: str, owner_ip: str) -> Room:
        room = Room(room_id, owner_ip)
        self.rooms[room_id] = room
        self.per_ip[owner_ip] += 1
        return room

    def remove(self, room: Room) -> None:
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            self.per_ip[room.owner_ip] -= 1
            if self.per_ip[room.owner_ip] <= 0:
                del self.per_ip[room.owner_ip]

    def idle(self, older_than: float) -> list[Room]:
        """Rooms whose last activity is before the monotonic time `older_than`."""
        return [r for r in self.rooms.values() if r.last_activity < older_than]

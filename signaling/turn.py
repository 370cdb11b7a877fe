"""Short-lived TURN credentials for the members of a room (coturn's TURN REST API scheme).

coturn, run with `use-auth-secret` and `static-auth-secret=S`, accepts any username of the form
`<expiry unix time>:<anything>` whose password is base64(HMAC-SHA1(S, username)), until the
expiry passes. The signaling server holds the same secret and hands such a pair to the two
members of a room only once both are in it, at a bounded rate per IP address
(`Limits.turn_credentials_per_ip_per_hour`). Each pair stops working on its own: there is no
user database and nothing to revoke, and nobody holds a password that works for ever.

What this does not do: the signaling server cannot tell an interview from anything else, so
whoever can reach it can open a room as host and join it as candidate and get a pair. The
relay is therefore open to anyone who can reach the signaling server, within the rate limit,
the pairs' lifetime, coturn's quotas and its denied-peer-ip list (deploy/turnserver.conf) —
not only to real interviews. Put the signaling server where only your candidates and
interviewers reach it if that matters. The username's second part is the room's log tag (a
hash prefix), never the room id.

Standard library only, like the rest of the signaling server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

__all__ = ["PLACEHOLDER", "TurnConfig", "TurnCredentials", "turn_credentials"]

PLACEHOLDER = "CHANGE_ME"
"""The secret in the shipped example files; the server refuses to start with it."""
MIN_SECRET_CHARS = 16
DEFAULT_TTL_SECONDS = 4 * 3600.0
MAX_URLS = 8


@dataclass(frozen=True)
class TurnConfig:
    """The relay the server issues credentials for: its URLs (`stun:`/`turn:`/`turns:`),
    the secret shared with coturn, and how long each issued pair stays valid."""

    secret: str
    urls: tuple[str, ...]
    ttl_seconds: float = DEFAULT_TTL_SECONDS

    def __post_init__(self) -> None:
        from signaling.errors import ConfigError

        if not isinstance(self.secret, str) or PLACEHOLDER in self.secret:
            raise ConfigError("the TURN secret is still the placeholder CHANGE_ME: put the same "
                              "random secret in turnserver.conf (static-auth-secret) and here")
        if len(self.secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"the TURN secret must be at least {MIN_SECRET_CHARS} characters")
        if not self.urls or len(self.urls) > MAX_URLS:
            raise ConfigError(f"give 1 to {MAX_URLS} TURN/STUN URLs for the TURN secret")
        for url in self.urls:
            if not isinstance(url, str) or not url.startswith(("stun:", "turn:", "turns:")) \
                    or len(url) > 256 or any(c.isspace() for c in url):
                raise ConfigError(f"a TURN/STUN URL starts with stun:, turn: or turns:: {url!r}")
        if isinstance(self.ttl_seconds, bool) or not isinstance(self.ttl_seconds, int | float) \
                or not 60 <= self.ttl_seconds <= 7 * 86400:
            raise ConfigError("the TURN credentials' ttl_seconds must be 60 s to 7 days, "
                              f"got {self.ttl_seconds!r}")


@dataclass(frozen=True)
class TurnCredentials:
    urls: tuple[str, ...]
    username: str
    credential: str
    expires: int


def turn_credentials(secret: str, user: str, ttl_seconds: float, urls: tuple[str, ...] = (),
                     now: float | None = None) -> TurnCredentials:
    """A username/password pair coturn accepts until `now + ttl_seconds` (a negative ttl
    makes one that has already expired, for tests)."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expires}:{user}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredentials(urls, username, base64.b64encode(digest).decode("ascii"), expires)

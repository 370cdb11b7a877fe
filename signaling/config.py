"""Server configuration: where to listen and every limit, with documented defaults.

Values come from the defaults below, then an optional TOML file, then command-line flags.
The TOML file holds `host`, `port`, `log_level` at the top level, the limits in a
`[limits]` table, with the same names as the `Limits` fields, and optionally a `[turn]` table
(`urls`, `ttl_seconds`, and `secret` or `secret_file`) for issuing short-lived TURN
credentials (`signaling/turn.py`); the environment variable `ASSESSIQ_TURN_SECRET`, when set,
is the secret instead of the file's.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from signaling.errors import ConfigError
from signaling.turn import DEFAULT_TTL_SECONDS, TurnConfig

TURN_SECRET_ENV = "ASSESSIQ_TURN_SECRET"


def _limit(default: float, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Limits:
    """Every limit the server enforces. Times are seconds, sizes are bytes."""

    max_message_bytes: int = _limit(
        64 * 1024, 'a frame larger than this gets a "too-large" error and is dropped')
    hard_max_message_bytes: int = _limit(
        256 * 1024, "a frame larger than this closes the connection (code 1009) unread")
    messages_per_second: float = _limit(
        20.0, "sustained frames per second per connection (token bucket refill)")
    message_burst: int = _limit(
        60, 'frames a connection may send at once before "rate-limited" (bucket size)')
    error_burst: int = _limit(
        20, "protocol errors a connection may cause before it is closed (code 4004)")
    errors_per_second: float = _limit(0.5, "how fast that error allowance refills")
    max_connections: int = _limit(16384, "connections open at once, all addresses together")
    max_connections_per_ip: int = _limit(32, "connections open at once from one IP address")
    max_rooms: int = _limit(8192, "rooms open at once, all addresses together")
    max_rooms_per_ip: int = _limit(16, "rooms open at once created by hosts from one IP address")
    idle_room_seconds: float = _limit(
        900.0, "a room with no frame from either member this long is closed (code 4002)")
    join_timeout_seconds: float = _limit(
        10.0, "a connection not in a room this long after connecting is closed (code 4003)")
    handshake_timeout_seconds: float = _limit(
        10.0, "a TCP connection must finish the WebSocket handshake within this")
    ping_interval_seconds: float = _limit(20.0, "WebSocket keepalive ping interval")
    ping_timeout_seconds: float = _limit(
        20.0, "a connection not answering a keepalive ping within this is closed")
    close_timeout_seconds: float = _limit(
        5.0, "how long to wait for a client's closing handshake before dropping its TCP link")
    turn_credentials_per_ip_per_hour: int = _limit(
        120, "TURN credential pairs issued to one IP address per hour (a burst of as many, "
             "refilled evenly); past it, joins succeed without credentials")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"limit {f.name} must be a number, got {value!r}")
            if value <= 0:
                raise ConfigError(f"limit {f.name} must be positive, got {value!r}")
        for name in ("max_message_bytes", "hard_max_message_bytes", "message_burst",
                     "error_burst", "max_connections", "max_connections_per_ip",
                     "max_rooms", "max_rooms_per_ip", "turn_credentials_per_ip_per_hour"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"limit {name} must be a whole number")
        if self.hard_max_message_bytes < self.max_message_bytes:
            raise ConfigError("limit hard_max_message_bytes must be >= max_message_bytes")


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen, how much to log, and the limits."""

    host: str = "127.0.0.1"
    port: int = 8765
    log_level: str = "INFO"
    limits: Limits = field(default_factory=Limits)
    turn: TurnConfig | None = None
    """With it, the two members of a room, once both are in, are given TURN credentials."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host must be a non-empty string, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not (
            0 <= self.port <= 65535
        ):
            raise ConfigError(f"port must be a whole number 0..65535, got {self.port!r}")
        if not isinstance(self.log_level, str) or self.log_level.upper() not in (
            "DEBUG", "INFO", "WARNING", "ERROR"
        ):
            raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, "
                              f"got {self.log_level!r}")


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


def _limits_from(table: Any, base: Limits, where: str) -> Limits:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [limits] must be a table")
    unknown = sorted(set(table) - set(LIMIT_NAMES))
    if unknown:
        raise ConfigError(f"{where}: unknown limit(s) {', '.join(unknown)}; "
                          f"known: {', '.join(LIMIT_NAMES)}")
    return replace(base, **table)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> ServerConfig:
    """Defaults, then the TOML file at `path` (if any), then `overrides` (None values skipped).

    `overrides` may hold `host`, `port`, `log_level`, any `Limits` field name, `turn_urls` and
    `turn_ttl_seconds`.
    Raises ConfigError with a one-line message for anything wrong.
    """
    config = ServerConfig()
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - {"host", "port", "log_level", "limits", "turn"})
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; "
                              "known: host, port, log_level, [limits], [turn]")
        limits = _limits_from(data.get("limits", {}), config.limits, str(path))
        top: dict[str, Any] = {k: data[k] for k in ("host", "port", "log_level") if k in data}
        turn_table = data.get("turn", {})
        if not isinstance(turn_table, dict):
            raise ConfigError(f"{path}: [turn] must be a table")
        config = replace(config, limits=limits, **top)
    else:
        turn_table = {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    turn_flags: dict[str, Any] = {
        k: given.pop(k) for k in ("turn_urls", "turn_ttl_seconds") if k in given}
    if given:
        limit_part = {k: v for k, v in given.items() if k in LIMIT_NAMES}
        top = {k: v for k, v in given.items() if k not in LIMIT_NAMES}
        config = replace(config, limits=_limits_from(limit_part, config.limits, "flags"), **top)
    turn = _turn_from(turn_table, turn_flags, path)
    return replace(config, turn=turn) if turn is not None else config


def _turn_from(table: dict[str, Any], flags: dict[str, Any],
               path: Path | None) -> TurnConfig | None:
    """The `[turn]` table, then the flags (`turn_urls`, `turn_ttl_seconds`) and the secret
    from the environment. None when no URL is configured anywhere."""
    where = str(path) if path is not None else "flags"
    unknown = sorted(set(table) - {"urls", "ttl_seconds", "secret", "secret_file"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in [turn]: {', '.join(unknown)}; "
                          "known: urls, ttl_seconds, secret, secret_file")
    urls = flags.get("turn_urls") or table.get("urls")
    if not urls:
        return None
    if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{where}: [turn] urls must be a list of strings")
    secret = os.environ.get(TURN_SECRET_ENV) or table.get("secret")
    if not secret and table.get("secret_file"):
        secret_path = Path(str(table["secret_file"]))
        if path is not None and not secret_path.is_absolute():
            secret_path = path.parent / secret_path
        try:
            secret = secret_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the TURN secret file {secret_path}: "
                              f"{exc.strerror}") from exc
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"TURN URLs are configured but no secret: set {TURN_SECRET_ENV}, "
                          "or secret / secret_file in [turn]")
    ttl = flags.get("turn_ttl_seconds", table.get("ttl_seconds", DEFAULT_TTL_SECONDS))
    return TurnConfig(secret=secret, urls=tuple(urls), ttl_seconds=ttl)
